"""Physics of the system: stable ratios between counters, and Little's law.

- Counter ratios: business counters that move together ("one payment per checkout") obey
  a_t ~= r x b_t per minute; r is learned as the total ratio and proposed only when it is
  stable (every busy baseline minute within ``MAX_RATIO_SPREAD`` of it).
- Little's law (Little 1961, L = lambda x W): the mean in-flight gauge of an operation
  (``server.active_requests``) equals its throughput times its mean latency, i.e. the busy
  time of its SERVER spans per second. The constant k (1 when the gauge and the spans
  agree) and the tolerance are learned; a break means lost spans, a stuck gauge or work
  the traces do not see.

Both read the per-minute rollups (``analysis.signals``: counter deltas with reset
detection, gauge means); without rollups no such law is learned. A break must persist
``conservation.PERSISTENCE`` minutes, each beyond the learned tolerance (and, for counts,
significant under a Poisson test), exactly like flow conservation.
"""

from __future__ import annotations

import datetime as dt
from itertools import permutations

import duckdb
import numpy as np
import polars as pl

from analysis import Window, signals
from detectors.invariants.conservation import MIN_CLIENTS_PER_MINUTE, MIN_MINUTES, PERSISTENCE, broken_minutes
from detectors.invariants.model import Invariant, Violation
from detectors.invariants.sqltext import lit, window_sql
from detectors.invariants.stats import MIN_SUPPORT, confidence
from store.connection import fetch_arrow
from store.timeconv import naive_from_ns, ns_from_datetime

MAX_RATIO_SPREAD = 0.5
"""A ratio (counters, or gauge to busy time) is proposed only if no busy baseline minute strays further (relative)."""
IN_FLIGHT_GAUGE = "server.active_requests"
MIN_BUSY = 0.5
"""Minutes with less predicted in-flight work (requests in flight on average) are too thin to judge."""

_BUSY_SQL = """
SELECT time_bucket(INTERVAL 1 MINUTE, start_time) AS time, service_name AS service, span_name AS operation,
       sum(duration_ns) / 60e9 AS busy, count(*) AS spans
FROM spans WHERE {win} AND span_kind = 'SERVER' GROUP BY ALL
"""


def _signal(con: duckdb.DuckDBPyConnection, kind: str, start_ns: int, end_ns: int, metric: str | None) -> pl.DataFrame:
    """A rollup signal, or an empty frame when the store has no rollups yet."""
    try:
        return signals(con, kind, Window(naive_from_ns(start_ns), naive_from_ns(end_ns), 60), metric=metric)  # type: ignore[arg-type]
    except duckdb.CatalogException:
        return pl.DataFrame()


def counter_minutes(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> pl.DataFrame:
    """Per (minute, service:metric): the counter's increase."""
    frame = _signal(con, "counter_rate", start_ns, end_ns, None)
    if frame.is_empty():
        return frame
    return (
        frame.with_columns((pl.col("service") + ":" + pl.col("metric")).alias("counter"), (pl.col("value") * 60))
        .group_by("time", "counter")
        .agg(pl.col("value").sum().alias("n"))
    )


def in_flight_minutes(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> pl.DataFrame:
    """Per (minute, service, operation): the mean in-flight gauge and the busy time of SERVER spans (requests)."""
    gauge = _signal(con, "gauge", start_ns, end_ns, IN_FLIGHT_GAUGE)
    if gauge.is_empty():
        return gauge
    gauge = gauge.with_columns(pl.col("attributes").str.json_path_match("$.operation").alias("operation")).select(
        "time", "service", "operation", gauge="value"
    )
    busy_frame = pl.from_arrow(fetch_arrow(con, _BUSY_SQL.format(win=window_sql("start_time", start_ns, end_ns))))
    assert isinstance(busy_frame, pl.DataFrame)
    busy = busy_frame.with_columns(pl.col("time").cast(gauge.schema["time"]))
    return gauge.join(busy, on=["time", "service", "operation"], how="inner").sort("time")


def _pair(counters: pl.DataFrame, a: str, b: str) -> tuple[np.ndarray, np.ndarray, list[object]]:
    wide = (
        counters.filter(pl.col("counter").is_in([a, b]))
        .pivot(on="counter", index="time", values="n")
        .fill_null(0.0)
        .sort("time")
    )
    if a not in wide.columns or b not in wide.columns:
        return np.zeros(0), np.zeros(0), []
    return wide[a].to_numpy().astype(float), wide[b].to_numpy().astype(float), wide["time"].to_list()


def learn_physics(counters: pl.DataFrame, in_flight: pl.DataFrame) -> list[Invariant]:
    """Stable counter ratios and Little's-law constants supported by a baseline."""
    out: list[Invariant] = []
    names = sorted(counters["counter"].unique().to_list()) if not counters.is_empty() else []
    for a, b in permutations(names, 2):
        if a > b:
            continue
        x, y, _ = _pair(counters, a, b)
        busy = y >= MIN_CLIENTS_PER_MINUTE
        if x.sum() < MIN_SUPPORT or y.sum() < MIN_SUPPORT or busy.sum() < MIN_MINUTES:
            continue
        ratio = float(x.sum() / y.sum())
        spread = float(np.max(np.abs(x[busy] / (ratio * y[busy]) - 1.0)))
        if spread > MAX_RATIO_SPREAD:
            continue
        service, _, metric = a.partition(":")
        params = {"ratio": ratio, "tolerance": max(0.05, 1.5 * spread), "minutes": int(busy.sum())}
        support = int(y.sum())
        out.append(Invariant("counter_ratio", service, metric, None, b, params, support, float(confidence(support))))
    if in_flight.is_empty():
        return out
    for (service, operation), g in in_flight.group_by(["service", "operation"]):
        gauge, busy = g["gauge"].to_numpy().astype(float), g["busy"].to_numpy().astype(float)
        ok = busy >= MIN_BUSY
        if ok.sum() < MIN_MINUTES or int(g["spans"].sum()) < MIN_SUPPORT:
            continue
        k = float(gauge[ok].sum() / busy[ok].sum())
        spread = float(np.max(np.abs(gauge[ok] / (k * busy[ok]) - 1.0)))
        if spread > MAX_RATIO_SPREAD:  # the gauge does not follow the spans here: no law to hold it to
            continue
        params = {"k": k, "tolerance": max(0.2, 1.5 * spread), "minutes": int(ok.sum())}
        support = int(g["spans"].sum())
        out.append(
            Invariant("littles_law", str(service), str(operation), "SERVER", IN_FLIGHT_GAUGE, params, support,
                      float(confidence(support)))
        )  # fmt: skip
    return out


def _runs(flags: np.ndarray) -> int:
    padded = np.concatenate([[0], flags.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[::2]).max()) if len(edges) else 0


def check_physics(
    con: duckdb.DuckDBPyConnection, invariants: list[Invariant], start_ns: int, end_ns: int
) -> list[Violation]:
    """Counter ratios and Little's law broken for ``PERSISTENCE`` minutes in a row in [start, end)."""
    ratios = [i for i in invariants if i.kind == "counter_ratio"]
    littles = [i for i in invariants if i.kind == "littles_law"]
    out: list[Violation] = []
    if ratios:
        counters = counter_minutes(con, start_ns, end_ns)
        for inv in ratios if not counters.is_empty() else []:
            x, y, times = _pair(counters, inv.entity, inv.subject or "")
            if not times:
                continue
            broken, p = broken_minutes(y, x, float(inv.params["ratio"]), float(inv.params["tolerance"]))
            if _runs(broken) >= PERSISTENCE:
                idx = np.flatnonzero(broken)
                sql = (
                    "SELECT minute, metric_name, service_name, sum(delta) AS increase FROM rollup_sums WHERE "
                    f"metric_name IN ({lit(inv.operation)}, {lit((inv.subject or '').partition(':')[2])}) AND "
                    f"{window_sql('minute', start_ns, end_ns)} GROUP BY ALL ORDER BY minute"
                )
                minutes = [{"minute": str(times[i]), inv.entity: x[i], inv.subject: y[i]} for i in idx[:10]]
                text = f"{inv.entity} / {inv.subject} left its ratio {inv.params['ratio']:.3g} for {len(idx)} minutes"
                out.append(_violation(inv, idx, p, times, text=text, evidence={"minutes": minutes, "sql": sql}))
    if littles:
        frame = in_flight_minutes(con, start_ns, end_ns)
        for inv in littles if not frame.is_empty() else []:
            g = frame.filter((pl.col("service") == inv.service) & (pl.col("operation") == inv.operation))
            if g.is_empty():
                continue
            gauge, busy = g["gauge"].to_numpy().astype(float), g["busy"].to_numpy().astype(float)
            k, tol = float(inv.params["k"]), float(inv.params["tolerance"])
            broken = (busy >= MIN_BUSY) & (np.abs(gauge - k * busy) > tol * k * busy)
            if _runs(broken) >= PERSISTENCE:
                idx = np.flatnonzero(broken)
                times = g["time"].to_list()
                sql = _BUSY_SQL.format(win=window_sql("start_time", start_ns, end_ns)).strip().replace(
                    "GROUP BY ALL", f"AND service_name = {lit(inv.service)} AND span_name = {lit(inv.operation)} "
                    "GROUP BY ALL ORDER BY time"
                )  # fmt: skip
                minutes = [{"minute": str(times[i]), "in_flight_gauge": gauge[i], "busy": busy[i]} for i in idx[:10]]
                text = f"in-flight gauge off Little's law (k={k:.2f}) for {len(idx)} minutes"
                zeros = np.zeros(len(gauge))
                out.append(_violation(inv, idx, zeros, times, text=text, evidence={"minutes": minutes, "sql": sql}))
    return out


def _violation(
    inv: Invariant, idx: np.ndarray, p: np.ndarray, times: list[object], *, text: str, evidence: dict[str, object]
) -> Violation:
    first = times[int(idx[0])]
    assert isinstance(first, dt.datetime)
    change = ns_from_datetime(first)  # a minute's start: whole seconds, exact either way
    evidence = {"law": inv.params, "first_broken_minute": str(first), **evidence}
    return Violation(inv, "invariant_conservation", len(idx), len(times), float(np.min(p[idx])), change, text, evidence)
