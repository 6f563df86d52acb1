"""SLOs of entry operations: proposed from a baseline, checked over a window.

Entry operations are SERVER operations with root spans. The proposal leaves headroom
(error ratio max(1 %, 3 x baseline), p99 2 x baseline) because an SLO is a promise a team
edits, not a detector; the check reports an operation over its objective only with enough
requests (``MIN_REQUESTS``) and, for the error ratio, a binomial test at ``stats.ALPHA``.
"""

from __future__ import annotations

import duckdb
import polars as pl
from scipy import stats as sps

from detectors.invariants.model import Invariant, Violation
from detectors.invariants.spec import SloSpec
from detectors.invariants.sqltext import lit, window_sql
from detectors.invariants.stats import ALPHA
from store.connection import fetch_arrow

MIN_REQUESTS = 1000

_SQL = """
WITH s AS (SELECT service_name, span_name, span_kind, parent_span_id, status_code, duration_ns FROM spans WHERE {win}),
entry AS (SELECT DISTINCT service_name, span_name FROM s WHERE parent_span_id IS NULL AND span_kind = 'SERVER')
SELECT service_name AS service, span_name AS operation, count(*) AS requests,
       count(*) FILTER (status_code = 'ERROR') AS errors, quantile_cont(duration_ns, 0.99) / 1e6 AS p99_ms
FROM s JOIN entry USING (service_name, span_name) WHERE span_kind = 'SERVER' GROUP BY ALL ORDER BY ALL
"""


def entry_stats(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> pl.DataFrame:
    """Requests, errors and p99 (ms) per entry operation in [start, end)."""
    frame = pl.from_arrow(fetch_arrow(con, _SQL.format(win=window_sql("start_time", start_ns, end_ns))))
    assert isinstance(frame, pl.DataFrame)
    return frame


def propose_slos(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> list[SloSpec]:
    """Objectives with headroom for every entry operation with ``MIN_REQUESTS`` requests."""
    out = []
    for r in entry_stats(con, start_ns, end_ns).filter(pl.col("requests") >= MIN_REQUESTS).iter_rows(named=True):
        ratio = r["errors"] / r["requests"]
        out.append(
            SloSpec(
                service=r["service"], operation=r["operation"], error_ratio_max=round(max(0.01, 3 * ratio), 4),
                latency_p99_ms_max=round(2 * float(r["p99_ms"]), 1),
            )
        )  # fmt: skip
    return out


def check_slos(con: duckdb.DuckDBPyConnection, slos: list[SloSpec], start_ns: int, end_ns: int) -> list[Violation]:
    """Entry operations over their objectives in [start, end)."""
    if not slos:
        return []
    seen = {(r["service"], r["operation"]): r for r in entry_stats(con, start_ns, end_ns).iter_rows(named=True)}
    out: list[Violation] = []
    for slo in slos:
        r = seen.get((slo.service, slo.operation))
        if r is None or r["requests"] < MIN_REQUESTS:
            continue
        n, x = int(r["requests"]), int(r["errors"])
        sql = (
            _SQL.format(win=window_sql("start_time", start_ns, end_ns))
            .strip()
            .replace("ORDER BY ALL", f"HAVING service_name = {lit(slo.service)} AND span_name = {lit(slo.operation)}")
        )
        inv = Invariant("slo", slo.service, slo.operation, "SERVER", params=slo.model_dump(), source="spec")
        if slo.error_ratio_max is not None:
            p = float(sps.binom.sf(x - 1, n, slo.error_ratio_max))
            if x / n > slo.error_ratio_max and p < ALPHA:
                text = f"error ratio {x / n * 100:.2f} % over the objective {slo.error_ratio_max * 100:.2f} %"
                out.append(Violation(inv, "invariant_slo", x, n, p, None, text, {"sql": sql}))
        if slo.latency_p99_ms_max is not None and float(r["p99_ms"]) > slo.latency_p99_ms_max:
            text = f"p99 {float(r['p99_ms']):.1f} ms over the objective {slo.latency_p99_ms_max:.1f} ms"
            out.append(Violation(inv, "invariant_slo", n // 100, n, 0.0, None, text, {"sql": sql}))
    return out
