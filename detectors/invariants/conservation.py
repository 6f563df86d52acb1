"""Flow conservation: every minute, a caller's CLIENT spans are answered by the callee's SERVER spans.

For each client/server operation pair seen in the baseline (a CLIENT span whose child is a
SERVER span), the per-minute counts obey s_t ~= r x c_t with r learned as the total
ratio (1.0 when nothing is lost or duplicated). A minute breaks the law when its
imbalance is both large (beyond the tolerance learned from the baseline's worst minute,
at least ``MIN_TOLERANCE``) and significant (a Poisson test on the server count, p <
``MINUTE_ALPHA``); the law is broken when ``PERSISTENCE`` consecutive minutes do, so a
single noisy or half-filled boundary minute never raises anything.
"""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl
from scipy import stats

from detectors.invariants.model import Invariant, Violation
from detectors.invariants.sqltext import lit, window_sql
from detectors.invariants.stats import MIN_SUPPORT, confidence
from store.connection import fetch_arrow

MIN_TOLERANCE = 0.05
"""Relative imbalance always tolerated (clock skew, spans crossing a minute boundary)."""
MINUTE_ALPHA = 1e-4
PERSISTENCE = 3
"""Consecutive broken minutes before the law counts as broken."""
MIN_MINUTES = 30
MIN_CLIENTS_PER_MINUTE = 20.0
"""Minutes with fewer client spans are too thin to judge and are skipped."""

_MINUTES_SQL = """
SELECT time_bucket(INTERVAL 1 MINUTE, start_time) AS minute, service_name || ':' || span_name AS op, span_kind,
       count(*) AS n
FROM spans WHERE {window} AND span_kind IN ('CLIENT', 'SERVER') GROUP BY ALL
"""


def minute_counts(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> pl.DataFrame:
    """Spans per (minute, operation, kind) in [start, end)."""
    frame = pl.from_arrow(fetch_arrow(con, _MINUTES_SQL.format(window=window_sql("start_time", start_ns, end_ns))))
    assert isinstance(frame, pl.DataFrame)
    return frame


def _pair(counts: pl.DataFrame, client: str, server: str) -> pl.DataFrame:
    c = counts.filter((pl.col("op") == client) & (pl.col("span_kind") == "CLIENT")).select("minute", c="n")
    s = counts.filter((pl.col("op") == server) & (pl.col("span_kind") == "SERVER")).select("minute", s="n")
    return c.join(s, on="minute", how="full", coalesce=True).fill_null(0).sort("minute")


def learn_conservation(counts: pl.DataFrame, edges: pl.DataFrame) -> list[Invariant]:
    """One law per client->server operation pair with enough minutes and spans."""
    pairs = edges.filter((pl.col("span_kind") == "CLIENT") & (pl.col("child_kind") == "SERVER"))
    out: list[Invariant] = []
    for row in pairs.iter_rows(named=True):
        client = f"{row['service']}:{row['operation']}"
        frame = _pair(counts, client, row["child"])
        c = frame["c"].to_numpy().astype(np.float64)
        s = frame["s"].to_numpy().astype(np.float64)
        if c.sum() < MIN_SUPPORT:
            continue
        busy = c >= MIN_CLIENTS_PER_MINUTE
        if busy.sum() < MIN_MINUTES:
            continue
        ratio = float(s.sum() / c.sum())
        worst = float(np.max(np.abs(s[busy] / (ratio * c[busy]) - 1.0)))
        params = {"ratio": ratio, "tolerance": max(MIN_TOLERANCE, 1.5 * worst), "minutes": int(busy.sum())}
        out.append(
            Invariant(
                "conservation", row["service"], row["operation"], "CLIENT", row["child"], params,
                support=int(c.sum()), confidence=float(confidence(int(c.sum()))),
            )
        )  # fmt: skip
    return out


def broken_minutes(c: np.ndarray, s: np.ndarray, ratio: float, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Per minute: broken flag and the Poisson p-value of the server count given the client count."""
    expected = ratio * c
    p = np.minimum(1.0, 2 * np.minimum(stats.poisson.cdf(s, expected), stats.poisson.sf(s - 1, expected)))
    large = np.abs(s - expected) > tolerance * expected
    return (c >= MIN_CLIENTS_PER_MINUTE) & large & (p < MINUTE_ALPHA), p


def _runs(flags: np.ndarray) -> int:
    """Length of the longest run of True."""
    padded = np.concatenate([[0], flags.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[::2]).max()) if len(edges) else 0


def check_conservation(
    con: duckdb.DuckDBPyConnection, invariants: list[Invariant], start_ns: int, end_ns: int
) -> list[Violation]:
    """Conservation laws broken for ``PERSISTENCE`` minutes in a row in [start, end)."""
    laws = [i for i in invariants if i.kind == "conservation"]
    if not laws:
        return []
    counts = minute_counts(con, start_ns, end_ns)
    out: list[Violation] = []
    for inv in laws:
        frame = _pair(counts, inv.entity, inv.subject or "")
        if frame.is_empty():
            continue
        c = frame["c"].to_numpy().astype(np.float64)
        s = frame["s"].to_numpy().astype(np.float64)
        broken, p = broken_minutes(c, s, float(inv.params["ratio"]), float(inv.params["tolerance"]))
        if _runs(broken) < PERSISTENCE:
            continue
        minutes = frame["minute"].to_list()
        idx = np.flatnonzero(broken)
        first = minutes[int(idx[0])]
        change = int(np.datetime64(first, "ns").astype(np.int64))
        server_service, _, server_op = (inv.subject or "").partition(":")
        sql = (
            "SELECT time_bucket(INTERVAL 1 MINUTE, start_time) AS minute, "
            f"count(*) FILTER (service_name = {lit(inv.service)} AND span_name = {lit(inv.operation)} "
            "AND span_kind = 'CLIENT') AS client_spans, "
            f"count(*) FILTER (service_name = {lit(server_service)} AND span_name = {lit(server_op)} "
            "AND span_kind = 'SERVER') AS server_spans "
            f"FROM spans WHERE {window_sql('start_time', start_ns, end_ns)} GROUP BY ALL ORDER BY minute"
        )
        evidence = {
            "law": inv.params,
            "minutes": [
                {"minute": str(minutes[i]), "client_spans": int(c[i]), "server_spans": int(s[i])} for i in idx[:10]
            ],
            "first_broken_minute": str(first),
            "sql": sql,
        }
        imbalance = float(s[idx].sum() / max(inv.params["ratio"] * c[idx].sum(), 1.0) - 1.0)
        text = f"{len(idx)} minutes out of balance with {inv.subject} (server/client {imbalance * 100:+.0f} %)"
        pv = float(np.min(p[idx]))
        out.append(Violation(inv, "invariant_conservation", len(idx), len(minutes), pv, change, text, evidence))
    return out
