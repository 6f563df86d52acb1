"""Per-minute rollups of the exporter's tables, computed inside ClickHouse into MergeTree tables.

The same rollups as the DuckDB backend (``analysis.rollup``: same keys, same log-bucket
index ``ceil(ln(d) / ln(gamma))``, same precomputed quantiles, the same explicit zero
minutes and deploy markers), filled incrementally by ``INSERT ... SELECT`` over
``otel_traces`` and ``otel_logs``: one scan per run, nothing moves to Python. The metric tables
roll up the same way (``store.rollups_metrics_clickhouse``).

Watermark and late-data rules are the DuckDB backend's: a run recomputes the minutes from
``watermark - lateness`` to the newest data (it deletes them and inserts them again, so
late rows within the lateness are folded in and re-running changes nothing), counts rows
that landed in closed minutes in ``rollup_late``, and only then advances the watermark.
ClickHouse has no multi-statement transactions, so the watermark lives in driftscope's
local state store (``rollup_state``, source ``clickhouse:<table>``) and is written after the
last INSERT of the run succeeded: a run that fails half-way (ClickHouse down, a timeout)
leaves the watermark where it was, and the next tick recomputes the same minutes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import duckdb
import pyarrow as pa

from store import dialect_clickhouse as ch_sql
from store import rollups_metrics_clickhouse as metrics
from store.clickhouse import ClickHouse
from store.rollups_metrics_clickhouse import create_metric_rollup_tables
from store.timeconv import NS_PER_MIN, NS_PER_S, naive_from_ns, ns_from_datetime

ROLLUP_DDL: dict[str, str] = {
    "rollup_spans": """
        minute DateTime('UTC'), service_name LowCardinality(String), operation LowCardinality(String),
        span_kind LowCardinality(String),
        status_class LowCardinality(String), count Int64, error_count Int64, duration_sum_ns Float64,
        duration_min_ns Nullable(Int64), duration_max_ns Nullable(Int64), zero_count Int64,
        hist_index Array(Int32), hist_counts Array(Int64), p50_ns Nullable(Float64), p90_ns Nullable(Float64),
        p95_ns Nullable(Float64), p99_ns Nullable(Float64)
    """,
    "rollup_logs": """
        minute DateTime('UTC'), service_name LowCardinality(String), severity_number Int32,
        severity_text LowCardinality(String),
        template Nullable(String), count Int64
    """,
    "deploy_markers": "service_name String, service_version String, first_seen DateTime64(9, 'UTC')",
}
_ORDER = {
    "rollup_spans": "PARTITION BY toYYYYMM(minute) ORDER BY (minute, service_name, operation, span_kind, status_class)",
    "rollup_logs": "PARTITION BY toYYYYMM(minute) ORDER BY (minute, service_name, severity_text)",
    "deploy_markers": "ORDER BY (service_name, service_version, first_seen)",
}

QUANTILES = {"p50_ns": 0.5, "p90_ns": 0.9, "p95_ns": 0.95, "p99_ns": 0.99}


@dataclass(frozen=True)
class ClickHouseRollupConfig:
    """The DuckDB rollup's settings (``analysis.rollup.RollupConfig``) and its histogram constants."""

    gamma: float
    ln_gamma: float
    lateness_s: float = 300.0
    late_horizon_s: float = 86_400.0
    zero_fill_s: float = 3_600.0
    metric_lookback_s: float = 3_600.0


@dataclass(frozen=True)
class ClickHouseRollupRun:
    """What one run did for one exporter table (times in ns; None when the table is empty)."""

    source: str
    start_ns: int | None
    end_ns: int | None
    rows_written: int
    late_rows: int
    seconds: float


def create_rollup_tables(ch: ClickHouse) -> None:
    """Create driftscope's derived tables in the plane's database (the only tables it writes there)."""
    ch.ensure_database()
    for table, columns in ROLLUP_DDL.items():
        ch.command(f"CREATE TABLE IF NOT EXISTS `{ch.database}`.{table} ({columns}) ENGINE = MergeTree {_ORDER[table]}")


def _quantile(q: float, cfg: ClickHouseRollupConfig) -> str:
    # The rank ceil(q * (n - 1)) on the exact decimal q, as DuckDB computes it on a DECIMAL literal
    # (ClickHouse would read 0.9 as a double: 0.9 * 10 = 9.000000000000002 ranks one higher).
    exact = Fraction(repr(float(q)))
    num, den = exact.numerator, exact.denominator
    rank = f"intDiv({num} * (count - 1) + {den - 1}, {den})"
    pos = f"arrayFirstIndex(c -> c > {rank}, arrayMap(c -> c + zero_count, arrayCumSum(hist_counts)))"
    value = f"2 * exp(hist_index[{pos}] * {cfg.ln_gamma!r}) / {cfg.gamma + 1!r}"
    return f"if(zero_count > {rank}, 0.0, {value})"


def spans_select(ch: ClickHouse, cfg: ClickHouseRollupConfig) -> str:
    """SELECT of rollup_spans rows for [{lo:Int64}, {hi:Int64}) ns from the exporter's traces table."""
    traces = f"`{ch.database}`.`{ch.tables.traces}`"
    pairs = "arraySort(groupArrayIf((assumeNotNull(bucket), n), bucket IS NOT NULL))"
    return f"""
    SELECT minute, service_name, operation, span_kind, status_class, sum(n) AS count,
           if(status_class = 'error', sum(n), 0) AS error_count, toFloat64(sum(s)) AS duration_sum_ns,
           toInt64(min(lo)) AS duration_min_ns, toInt64(max(hi)) AS duration_max_ns,
           toInt64(sumIf(n, bucket IS NULL)) AS zero_count,
           arrayMap(p -> p.1, {pairs}) AS hist_index, arrayMap(p -> p.2, {pairs}) AS hist_counts,
           {", ".join(f"{_quantile(q, cfg)} AS {name}" for name, q in QUANTILES.items())}
    FROM (
        SELECT {ch_sql.minute_of("Timestamp")} AS minute, ServiceName AS service_name, SpanName AS operation,
               {ch_sql.span_kind("SpanKind")} AS span_kind,
               if({ch_sql.status_code("StatusCode")} = 'ERROR', 'error', 'ok') AS status_class,
               if(Duration > 0, toInt32(ceil(log(toFloat64(Duration)) / {cfg.ln_gamma!r})), NULL) AS bucket,
               toInt64(count()) AS n, sum(Duration) AS s, min(Duration) AS lo, max(Duration) AS hi
        FROM {traces}
        WHERE Timestamp >= {ch_sql.from_ns("lo")} AND Timestamp < {ch_sql.from_ns("hi")}
        GROUP BY minute, service_name, operation, span_kind, status_class, bucket
    )
    GROUP BY minute, service_name, operation, span_kind, status_class
    """


def _zeros_sql(ch: ClickHouse) -> str:
    """Explicit zero minutes in [lo, hi) of operations seen within {h:Int64} s before (``zero_fill_s``)."""
    db = ch.database
    return f"""
    INSERT INTO `{db}`.rollup_spans (minute, service_name, operation, span_kind, status_class, count, error_count,
        duration_sum_ns, zero_count, hist_index, hist_counts)
    SELECT toDateTime(z, 'UTC'), service_name, operation, span_kind, 'ok', 0, 0, 0.0, 0, [], []
    FROM (
        SELECT service_name, operation, span_kind, arraySort(groupUniqArray(toInt64(toUnixTimestamp(minute)))) AS ms
        FROM `{db}`.rollup_spans
        WHERE minute >= {ch_sql.minute_param("lo")} - toIntervalSecond({{h:Int64}})
          AND minute < {ch_sql.minute_param("hi")} AND count > 0
        GROUP BY service_name, operation, span_kind
    )
    ARRAY JOIN arrayFlatten(arrayMap(
        (m, i) -> range(m + 60, least(if(i < length(ms), ms[i + 1], {{hi_s:Int64}}), m + {{h:Int64}} + 60), 60),
        ms, arrayEnumerate(ms))) AS z
    WHERE z >= {{lo_s:Int64}} AND z < {{hi_s:Int64}}
    """


def _logs_select(ch: ClickHouse) -> str:
    logs = f"`{ch.database}`.`{ch.tables.logs}`"
    return f"""
    SELECT {ch_sql.minute_of("Timestamp")} AS minute, ServiceName AS service_name,
           toInt32(SeverityNumber) AS severity_number, SeverityText AS severity_text, NULL AS template,
           toInt64(count()) AS count
    FROM {logs} WHERE Timestamp >= {ch_sql.from_ns("lo")} AND Timestamp < {ch_sql.from_ns("hi")}
    GROUP BY minute, service_name, severity_number, severity_text
    """


def _deploys_sql(ch: ClickHouse) -> str:
    version = ch_sql.attribute("ResourceAttributes", "service.version")
    return f"""
    INSERT INTO `{ch.database}`.deploy_markers
    SELECT ServiceName, assumeNotNull({version}) AS v, min(toDateTime64(Timestamp, 9, 'UTC'))
    FROM `{ch.database}`.`{ch.tables.traces}`
    WHERE Timestamp >= {ch_sql.from_ns("lo")} AND Timestamp < {ch_sql.from_ns("hi")}
      AND ServiceName != '' AND {version} IS NOT NULL
    GROUP BY ServiceName, v
    """


def _watermark_ns(state: duckdb.DuckDBPyConnection, source: str) -> int | None:
    row = state.execute("SELECT watermark FROM rollup_state WHERE source = ?", [source]).fetchone()
    return ns_from_datetime(row[0]) if row and row[0] is not None else None


def _range(  # noqa: PLR0917  one call site per source kind, every argument a different thing
    ch: ClickHouse,
    table: str,
    state: duckdb.DuckDBPyConnection,
    source: str,
    cfg: ClickHouseRollupConfig,
    time_column: str = "Timestamp",
) -> tuple[int, int] | None:
    lo_sql, hi_sql = ch_sql.epoch_ns(f"min({time_column})"), ch_sql.epoch_ns(f"max({time_column})")
    row = ch.query_arrow(
        f"SELECT count() AS n, {lo_sql} AS lo, {hi_sql} AS hi FROM `{ch.database}`.`{table}`"
    ).to_pylist()[0]
    if not row["n"]:
        return None
    first = int(row["lo"]) - int(row["lo"]) % NS_PER_MIN
    end = int(row["hi"]) - int(row["hi"]) % NS_PER_MIN + NS_PER_MIN
    watermark = _watermark_ns(state, source)
    if watermark is None:
        return first, end
    start = watermark - int(cfg.lateness_s * NS_PER_S)
    start -= start % NS_PER_MIN
    return max(first, min(start, end)), end


def _late_rows(  # noqa: PLR0917  one call site, every argument a different thing
    ch: ClickHouse, table: str, rollup: str, state: duckdb.DuckDBPyConnection, source: str, start_ns: int, h_s: float
) -> int:
    """Count and record (in the local ``rollup_late``) rows that landed in closed minutes after their rollup."""
    lo_ns = start_ns - int(h_s * NS_PER_S)
    lo_ns -= lo_ns % NS_PER_MIN
    params = {"lo": lo_ns, "hi": start_ns}
    raw = ch.query_arrow(
        f"SELECT {ch_sql.minute_ns(ch_sql.minute_of('Timestamp'))} AS m, toInt64(count()) AS n "
        f"FROM `{ch.database}`.`{table}` "
        f"WHERE Timestamp >= {ch_sql.from_ns('lo')} AND Timestamp < {ch_sql.from_ns('hi')} GROUP BY m",
        params,
    ).to_pylist()
    if not raw:
        return 0
    done = ch.query_arrow(
        f"SELECT {ch_sql.minute_ns('minute')} AS m, toInt64(sum(count)) AS n FROM `{ch.database}`.{rollup} "
        f"WHERE minute >= {ch_sql.minute_param('lo')} AND minute < {ch_sql.minute_param('hi')} GROUP BY m",
        params,
    ).to_pylist()
    rolled = {int(r["m"]): int(r["n"]) for r in done}
    recorded = {
        ns_from_datetime(m): int(n)
        for m, n in state.execute("SELECT minute, rows FROM rollup_late WHERE source = ?", [source]).fetchall()
    }
    late_total = 0
    for r in raw:
        minute = int(r["m"])
        if minute not in rolled:
            continue
        late = int(r["n"]) - rolled[minute] - recorded.get(minute, 0)
        if late > 0:
            state.execute(
                "INSERT INTO rollup_late VALUES (?, ?, ?) "
                "ON CONFLICT DO UPDATE SET rows = rollup_late.rows + excluded.rows",
                [source, naive_from_ns(minute), late],
            )
            late_total += late
    return late_total


def _count(ch: ClickHouse, rollup: str, lo_ns: int, hi_ns: int) -> int:
    return int(
        ch.scalar(
            f"SELECT count() FROM `{ch.database}`.{rollup} "
            f"WHERE minute >= {ch_sql.minute_param('lo')} AND minute < {ch_sql.minute_param('hi')}",
            {"lo": lo_ns, "hi": hi_ns},
        )
        or 0
    )


ExpMerge = Callable[[list[dict[str, Any]], int], list[dict[str, Any]]]
"""Merges exponential histogram points (``exp_histogram_points`` rows) from a minute (ns) on into rollup rows."""


def _advance(state: duckdb.DuckDBPyConnection, source: str, hi: int, late: int) -> None:
    state.execute(
        "INSERT INTO rollup_state VALUES ($s, $w, $late, 1) ON CONFLICT DO UPDATE SET "
        "watermark = excluded.watermark, late_rows = rollup_state.late_rows + excluded.late_rows, "
        "runs = rollup_state.runs + 1",
        {"s": source, "w": naive_from_ns(hi - NS_PER_MIN), "late": late},
    )


def _rollup_metrics(
    ch: ClickHouse, state: duckdb.DuckDBPyConnection, cfg: ClickHouseRollupConfig, merge_exp: ExpMerge | None
) -> list[ClickHouseRollupRun]:
    """The metric rollups, one exporter table at a time (tables a Collector without metrics never made: none)."""
    create_metric_rollup_tables(ch)
    fill = {"sum": metrics.sums_sql, "gauge": metrics.gauges_sql, "histogram": metrics.histograms_sql}
    runs = []
    for key, rollups in metrics.METRIC_SOURCES.items():
        table = getattr(ch.tables, key)
        if not ch_sql.table_exists(ch, table) or (key == "exponential_histogram" and merge_exp is None):
            continue
        started = time.perf_counter()
        source = f"clickhouse:{table}"
        window = _range(ch, table, state, source, cfg, "TimeUnix")
        if window is None:
            runs.append(ClickHouseRollupRun(table, None, None, 0, 0, time.perf_counter() - started))
            continue
        lo, hi = window
        params = {"lo": lo, "hi": hi, "lookback": int(cfg.metric_lookback_s)}
        for rollup in rollups:
            ch.command(
                f"DELETE FROM `{ch.database}`.{rollup} "
                f"WHERE minute >= {ch_sql.minute_param('lo')} AND minute < {ch_sql.minute_param('hi')}",
                params,
            )
        if key in fill:
            ch.command(fill[key](ch), params)
        elif merge_exp is not None:
            metrics.insert_exp_rollup(
                ch, merge_exp(metrics.exp_histogram_points(ch, lo, hi, cfg.metric_lookback_s), lo)
            )
        written = sum(_count(ch, rollup, lo, hi) for rollup in rollups)
        _advance(state, source, hi, 0)  # metric points are re-derived from the lookback: no late rows of their own
        runs.append(ClickHouseRollupRun(table, lo, hi, written, 0, time.perf_counter() - started))
    return runs


def rollup_plane(
    ch: ClickHouse, state: duckdb.DuckDBPyConnection, cfg: ClickHouseRollupConfig, merge_exp: ExpMerge | None = None
) -> list[ClickHouseRollupRun]:
    """Bring the plane's span, log and metric rollups up to the newest data; the watermark of each source
    advances in ``state`` only after its INSERTs succeeded (ClickHouseError propagates otherwise).
    Exponential histograms roll up when ``merge_exp`` is given (the merge is ``analysis``' code)."""
    create_rollup_tables(ch)
    runs = []
    for table, rollup in ((ch.tables.traces, "rollup_spans"), (ch.tables.logs, "rollup_logs")):
        started = time.perf_counter()
        source = f"clickhouse:{table}"
        window = _range(ch, table, state, source, cfg)
        if window is None:
            runs.append(ClickHouseRollupRun(table, None, None, 0, 0, time.perf_counter() - started))
            continue
        lo, hi = window
        params = {"lo": lo, "hi": hi}
        state.execute("BEGIN")
        try:
            late = _late_rows(ch, table, rollup, state, source, lo, cfg.late_horizon_s)
            ch.command(
                f"DELETE FROM `{ch.database}`.{rollup} "
                f"WHERE minute >= {ch_sql.minute_param('lo')} AND minute < {ch_sql.minute_param('hi')}",
                params,
            )
            if rollup == "rollup_spans":
                ch.command(f"INSERT INTO `{ch.database}`.rollup_spans {spans_select(ch, cfg)}", params)
                h_s = int(cfg.zero_fill_s)
                ch.command(_zeros_sql(ch), {**params, "h": h_s, "lo_s": lo // NS_PER_S, "hi_s": hi // NS_PER_S})
                ch.command(_deploys_sql(ch), params)
            else:
                ch.command(f"INSERT INTO `{ch.database}`.rollup_logs {_logs_select(ch)}", params)
            written = _count(ch, rollup, lo, hi)
            _advance(state, source, hi, late)
            state.execute("COMMIT")
        except Exception:
            state.execute("ROLLBACK")
            raise
        runs.append(ClickHouseRollupRun(table, lo, hi, written, late, time.perf_counter() - started))
    return runs + _rollup_metrics(ch, state, cfg, merge_exp)


def rollup_end_ns(ch: ClickHouse) -> int | None:
    """End (exclusive, ns) of the newest rolled-up minute of spans in the plane; None before the first rollup."""
    if not ch_sql.table_exists(ch, "rollup_spans"):
        return None
    row = ch.query_arrow(
        f"SELECT count() AS n, {ch_sql.minute_ns('max(minute)')} AS m FROM `{ch.database}`.rollup_spans"
    ).to_pylist()[0]
    return int(row["m"]) + NS_PER_MIN if row["n"] else None


_PRECOMPUTED = {0.5: "p50_ns", 0.9: "p90_ns", 0.95: "p95_ns", 0.99: "p99_ns"}


def minute_quantiles(ch: ClickHouse, start_ns: int, end_ns: int, quantiles: tuple[float, ...]) -> pa.Table:
    """Per minute and SERVER operation of [start_ns, end_ns), the precomputed latency quantiles of
    successful requests (ns): columns time_s (the minute, s since the epoch), service, operation, p50/p95/... , samples.

    The plane's counterpart of ``analysis.latency_quantiles`` at 1-minute resolution (the same
    rollup rows, so the same values). Service and operation come dictionary-encoded (ClickHouse's
    LowCardinality as Arrow dictionaries): 10 M rows carry a few thousand distinct strings."""
    unknown = [q for q in quantiles if q not in _PRECOMPUTED]
    if unknown:
        raise ValueError(f"quantiles {unknown} are not precomputed per minute; known: {sorted(_PRECOMPUTED)}")
    cols = ", ".join(f"{_PRECOMPUTED[q]} AS p{round(q * 100):02d}" for q in quantiles)
    return ch.query_arrow(
        f"SELECT toUInt32(minute) AS time_s, service_name AS service, operation, {cols}, count AS samples "
        f"FROM `{ch.database}`.rollup_spans WHERE minute >= {ch_sql.minute_param('lo')} "
        f"AND minute < {ch_sql.minute_param('hi')} AND span_kind = 'SERVER' AND status_class = 'ok' "
        "SETTINGS output_format_arrow_low_cardinality_as_dictionary = 1",
        {"lo": start_ns, "hi": end_ns},
    )
