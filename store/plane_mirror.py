"""A window of the ClickHouse plane copied into a local DuckDB store, through Arrow.

Everything above the store reads DuckDB connections: signals, detectors, invariants, the
contract, the gate, reports and the investigation snapshot. In ClickHouse mode the heavy
work (scanning raw spans into per-minute rollups) stays in ClickHouse; what a run reads
is small and is copied here first: the span, log and metric rollup rows of the window (one
row per operation or metric series and minute), the deploy markers, and optionally the raw
spans, logs and metric points of the window (invariants, the gate's samples and the snapshot's
tool belt read raw rows), mapped from the exporter's
columns onto driftscope's raw schema. The copy replaces the window's rows, so re-running
it is idempotent; the local store is driftscope's state store, whose ``rollup_*`` and raw
tables act as this cache.

Attribute values arrive as the exporter keeps them: strings (``"200"``, not ``200``).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa

from store import dialect_clickhouse as ch_sql
from store.clickhouse import ClickHouse


@dataclass(frozen=True)
class MirrorReport:
    """Rows copied per local table, and the seconds the copy took."""

    rows: dict[str, int]
    seconds: float


_ROLLUP_SPANS = f"""
SELECT {ch_sql.minute_ns("minute")} AS minute_ns, nullIf(service_name, '') AS service_name, operation, span_kind,
       status_class, count, error_count, duration_sum_ns, duration_min_ns, duration_max_ns, zero_count, hist_index,
       hist_counts, p50_ns, p90_ns, p95_ns, p99_ns
FROM `{{db}}`.rollup_spans
WHERE minute >= {ch_sql.minute_param("lo")} AND minute < {ch_sql.minute_param("hi")}
"""

_ROLLUP_LOGS = f"""
SELECT {ch_sql.minute_ns("minute")} AS minute_ns, nullIf(service_name, '') AS service_name, severity_number,
       severity_text, template, count
FROM `{{db}}`.rollup_logs
WHERE minute >= {ch_sql.minute_param("lo")} AND minute < {ch_sql.minute_param("hi")}
"""

_DEPLOYS = f"""
SELECT service_name, service_version, {ch_sql.epoch_ns("min(first_seen)")} AS first_seen_ns
FROM `{{db}}`.deploy_markers GROUP BY service_name, service_version
"""


def _spans_sql(ch: ClickHouse) -> str:
    route = ch_sql.attribute("SpanAttributes", "http.route")
    status = f"coalesce({ch_sql.attribute('SpanAttributes', 'http.response.status_code')}, "
    status += f"{ch_sql.attribute('SpanAttributes', 'http.status_code')})"
    return f"""
    SELECT TraceId AS trace_id, SpanId AS span_id, nullIf(ParentSpanId, '') AS parent_span_id,
           nullIf(TraceState, '') AS trace_state, nullIf(ServiceName, '') AS service_name,
           {ch_sql.attribute("ResourceAttributes", "service.version")} AS service_version, SpanName AS span_name,
           {ch_sql.span_kind("SpanKind")} AS span_kind, {ch_sql.epoch_ns("Timestamp")} AS start_ns,
           toInt64(Duration) AS duration_ns, {ch_sql.status_code("StatusCode")} AS status_code,
           nullIf(StatusMessage, '') AS status_message, {route} AS http_route,
           toInt32OrNull({status}) AS http_status_code, {ch_sql.attributes_text("SpanAttributes")} AS attributes,
           {ch_sql.attributes_text("ResourceAttributes")} AS resource_attributes, nullIf(ScopeName, '') AS scope_name,
           nullIf(ScopeVersion, '') AS scope_version
    FROM `{ch.database}`.`{ch.tables.traces}`
    WHERE Timestamp >= {ch_sql.from_ns("lo")} AND Timestamp < {ch_sql.from_ns("hi")}
    """


def _logs_sql(ch: ClickHouse) -> str:
    return f"""
    SELECT {ch_sql.epoch_ns("Timestamp")} AS time_ns, nullIf(ServiceName, '') AS service_name,
           {ch_sql.attribute("ResourceAttributes", "service.version")} AS service_version,
           toInt32(SeverityNumber) AS severity_number, nullIf(SeverityText, '') AS severity_text, Body AS body,
           nullIf(TraceId, '') AS trace_id, nullIf(SpanId, '') AS span_id,
           {ch_sql.attributes_text("LogAttributes")} AS attributes,
           {ch_sql.attributes_text("ResourceAttributes")} AS resource_attributes, nullIf(ScopeName, '') AS scope_name
    FROM `{ch.database}`.`{ch.tables.logs}`
    WHERE Timestamp >= {ch_sql.from_ns("lo")} AND Timestamp < {ch_sql.from_ns("hi")}
    """


_METRIC_ROLLUPS = {
    "rollup_sums": "delta, resets, points",
    "rollup_gauges": "value_mean, value_last, value_min, value_max, samples",
    "rollup_histograms": "bounds, counts, count, sum, resets",
    "rollup_exp_histograms": (
        "scale, zero_count, positive_offset, positive_counts, negative_offset, negative_counts, count, sum"
    ),
}


def _metric_rollup_sql(ch: ClickHouse, table: str) -> str:
    return f"""
    SELECT {ch_sql.minute_ns("minute")} AS minute_ns, metric_name, service_name, attributes, {_METRIC_ROLLUPS[table]}
    FROM `{ch.database}`.{table}
    WHERE minute >= {ch_sql.minute_param("lo")} AND minute < {ch_sql.minute_param("hi")}
    """


def _metric_points(ch: ClickHouse, key: str, extra: str) -> str:
    """SELECT of the exporter's metric table ``key`` as the local raw metric tables' columns (times in ns),
    the columns of its kind ``extra`` first."""
    start = ch_sql.known_start("StartTimeUnix")
    return f"""
    SELECT {extra}, MetricName AS metric_name, nullIf(MetricDescription, '') AS metric_description,
           nullIf(MetricUnit, '') AS metric_unit, nullIf(ServiceName, '') AS service_name,
           {ch_sql.attribute("ResourceAttributes", "service.version")} AS service_version,
           {ch_sql.epoch_ns("TimeUnix")} AS time_ns, if({start} IS NULL, NULL, {ch_sql.epoch_ns("StartTimeUnix")})
           AS start_ns, Flags AS flags, {ch_sql.attributes_text("Attributes")} AS attributes,
           {ch_sql.attributes_text("ResourceAttributes")} AS resource_attributes,
           nullIf(ResourceSchemaUrl, '') AS resource_schema_url, nullIf(ScopeName, '') AS scope_name,
           nullIf(ScopeVersion, '') AS scope_version, {ch_sql.attributes_text("ScopeAttributes")} AS scope_attributes
    FROM `{ch.database}`.`{getattr(ch.tables, key)}`
    WHERE TimeUnix >= {ch_sql.from_ns("lo")} AND TimeUnix < {ch_sql.from_ns("hi")}
    """


def _raw_metrics_sql(ch: ClickHouse, key: str) -> str:
    """The exporter's points of metric table ``key`` in [{lo}, {hi}), as the local raw table's columns."""
    temporality = "transform(AggregationTemporality, [1, 2], ['delta', 'cumulative'], 'unspecified')"
    extra = {
        "gauge": "Value AS value, 'gauge' AS kind",
        "sum": f"Value AS value, 'sum' AS kind, {temporality} AS temporality, IsMonotonic AS is_monotonic",
        "histogram": f"Count AS count, Sum AS sum, Min AS min, Max AS max, ExplicitBounds AS bounds, "
        f"BucketCounts AS bucket_counts, {temporality} AS temporality",
        "exponential_histogram": f"Count AS count, Sum AS sum, Min AS min, Max AS max, Scale AS scale, "
        "ZeroCount AS zero_count, PositiveOffset AS positive_offset, PositiveBucketCounts AS positive_counts, "
        f"NegativeOffset AS negative_offset, NegativeBucketCounts AS negative_counts, {temporality} AS temporality",
        "summary": "Count AS count, Sum AS sum, ValueAtQuantiles.Quantile AS quantiles, "
        "ValueAtQuantiles.Value AS quantile_values",
    }[key]
    return _metric_points(ch, key, extra)


RAW_METRICS = {
    "gauge": "metric_points", "sum": "metric_points", "histogram": "histogram_points",
    "exponential_histogram": "exp_histogram_points", "summary": "summary_points",
}  # fmt: skip
"""Exporter metric table (``OtelTables`` field) -> the local raw table its points are mirrored into."""

_LOCAL_INSERT = {
    "rollup_spans": """
        INSERT INTO rollup_spans SELECT make_timestamp_ns(minute_ns)::TIMESTAMP, service_name, operation, span_kind,
            status_class, count, error_count, duration_sum_ns, duration_min_ns, duration_max_ns, zero_count,
            hist_index, hist_counts, p50_ns, p90_ns, p95_ns, p99_ns FROM _mirror""",
    "rollup_logs": """
        INSERT INTO rollup_logs SELECT make_timestamp_ns(minute_ns)::TIMESTAMP, service_name, severity_number,
            severity_text, template, count FROM _mirror""",
    "spans": """
        INSERT INTO spans (trace_id, span_id, parent_span_id, trace_state, service_name, service_version, span_name,
            span_kind, start_time, end_time, duration_ns, status_code, status_message, http_route, http_status_code,
            attributes, resource_attributes, scope_name, scope_version)
        SELECT trace_id, span_id, parent_span_id, trace_state, service_name, service_version, span_name, span_kind,
            make_timestamp_ns(start_ns), make_timestamp_ns(start_ns + duration_ns), duration_ns, status_code,
            status_message, http_route, http_status_code, attributes, resource_attributes, scope_name, scope_version
        FROM _mirror""",
    "logs": """
        INSERT INTO logs (time, observed_time, service_name, service_version, severity_number, severity_text, body,
            trace_id, span_id, attributes, resource_attributes, scope_name)
        SELECT make_timestamp_ns(time_ns), make_timestamp_ns(time_ns), service_name, service_version, severity_number,
            severity_text, body, trace_id, span_id, attributes, resource_attributes, scope_name
        FROM _mirror""",
    "deploy_markers": """
        INSERT INTO deploy_markers
        SELECT service_name, service_version, make_timestamp_ns(first_seen_ns) FROM _mirror""",
}

_LOCAL_DELETE = {
    "rollup_spans": "DELETE FROM rollup_spans WHERE minute >= make_timestamp_ns($lo)::TIMESTAMP "
    "AND minute < make_timestamp_ns($hi)::TIMESTAMP",
    "rollup_logs": "DELETE FROM rollup_logs WHERE minute >= make_timestamp_ns($lo)::TIMESTAMP "
    "AND minute < make_timestamp_ns($hi)::TIMESTAMP",
    "spans": "DELETE FROM spans WHERE start_time >= make_timestamp_ns($lo) AND start_time < make_timestamp_ns($hi)",
    "logs": "DELETE FROM logs WHERE coalesce(time, observed_time) >= make_timestamp_ns($lo) "
    "AND coalesce(time, observed_time) < make_timestamp_ns($hi)",
    "deploy_markers": "DELETE FROM deploy_markers",
    **{
        t: f"DELETE FROM {t} WHERE minute >= make_timestamp_ns($lo)::TIMESTAMP "
        "AND minute < make_timestamp_ns($hi)::TIMESTAMP"
        for t in _METRIC_ROLLUPS
    },
    **{
        t: f"DELETE FROM {t} WHERE time >= make_timestamp_ns($lo) AND time < make_timestamp_ns($hi)"
        for t in RAW_METRICS.values()
    },
}
_LOCAL_INSERT.update(
    {
        t: f"INSERT INTO {t} BY NAME SELECT * EXCLUDE (minute_ns), make_timestamp_ns(minute_ns)::TIMESTAMP AS minute "
        "FROM _mirror"
        for t in _METRIC_ROLLUPS
    }
)
_LOCAL_INSERT.update(
    {
        t: f"INSERT INTO {t} BY NAME SELECT * EXCLUDE (time_ns, start_ns), make_timestamp_ns(time_ns) AS time, "
        "make_timestamp_ns(start_ns) AS start_time FROM _mirror"
        for t in RAW_METRICS.values()
    }
)


MIRROR_SOURCE = "mirror:clickhouse"
"""The ``rollup_state`` row recording the end of the window last mirrored (its watermark)."""


def mirrored_end_ns(con: duckdb.DuckDBPyConnection) -> int | None:
    """End (exclusive, ns) of the window last mirrored into this store; None before the first mirror."""
    row = con.execute("SELECT epoch_ns(watermark) FROM rollup_state WHERE source = ?", [MIRROR_SOURCE]).fetchone()
    return int(row[0]) if row and row[0] is not None else None


def fetch_window(ch: ClickHouse, start_ns: int, end_ns: int, *, raw_start_ns: int | None = None) -> dict[str, pa.Table]:
    """The plane's rows of [start_ns, end_ns) as Arrow, per local table; raw spans and logs only from
    ``raw_start_ns`` (None: no raw rows)."""
    params = {"lo": start_ns, "hi": end_ns}
    db = ch.database
    out = {
        "rollup_spans": ch.query_arrow(_ROLLUP_SPANS.replace("{db}", db), params),
        "rollup_logs": ch.query_arrow(_ROLLUP_LOGS.replace("{db}", db), params),
        "deploy_markers": ch.query_arrow(_DEPLOYS.replace("{db}", db)),
    }
    for table in _METRIC_ROLLUPS:
        if ch_sql.table_exists(ch, table):
            out[table] = ch.query_arrow(_metric_rollup_sql(ch, table), params)
    if raw_start_ns is not None:
        raw = {"lo": max(raw_start_ns, start_ns), "hi": end_ns}
        out["spans"] = ch.query_arrow(_spans_sql(ch), raw)
        out["logs"] = ch.query_arrow(_logs_sql(ch), raw)
        for key, local in RAW_METRICS.items():
            if ch_sql.table_exists(ch, getattr(ch.tables, key)):
                rows = ch.query_arrow(_raw_metrics_sql(ch, key), raw)
                out[local] = (
                    pa.concat_tables([out[local], rows], promote_options="permissive") if local in out else rows
                )
    return out


def mirror_window(
    ch: ClickHouse, con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int, *, raw_start_ns: int | None = None
) -> dict[str, int]:
    """Replace the local store's rows of [start_ns, end_ns) with the plane's, in one local transaction;
    return rows copied per table. Raw spans and logs are copied from ``raw_start_ns`` on (None: none)."""
    tables = fetch_window(ch, start_ns, end_ns, raw_start_ns=raw_start_ns)
    copied: dict[str, int] = {}
    con.execute("BEGIN")
    try:
        for name, rows in tables.items():
            lo = start_ns if name.startswith("rollup_") or raw_start_ns is None else max(raw_start_ns, start_ns)
            con.execute(_LOCAL_DELETE[name], {"lo": lo, "hi": end_ns} if "$lo" in _LOCAL_DELETE[name] else {})
            con.register("_mirror", rows)
            try:
                con.execute(_LOCAL_INSERT[name])
            finally:
                con.unregister("_mirror")
            copied[name] = int(rows.num_rows)
        con.execute(
            "INSERT INTO rollup_state VALUES ($s, make_timestamp_ns($w)::TIMESTAMP, 0, 1) ON CONFLICT DO UPDATE "
            "SET watermark = excluded.watermark, runs = rollup_state.runs + 1",
            {"s": MIRROR_SOURCE, "w": end_ns},
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return copied
