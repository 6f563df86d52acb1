"""The OpenTelemetry Collector ClickHouse exporter's tables, as driftscope reads them.

In ClickHouse mode driftscope does not own the raw telemetry: the Collector's
``clickhouseexporter`` (opentelemetry-collector-contrib, ``exporter/clickhouseexporter``,
``internal/sqltemplates/*_table.sql``) creates and fills ``otel_traces``, ``otel_logs`` and
``otel_metrics_{gauge,sum,histogram,exponential_histogram,summary}``. This module states the
columns of its current schema (names and ClickHouse types, ``DateTime64(9)`` times,
``Map(LowCardinality(String), String)`` attributes, ``Nested`` events/links/exemplars) so that

- :func:`check_exporter_schema` can refuse a database that is not the exporter's with an
  error naming the missing table or column (before any job reads a wrong column), and
- :func:`exporter_ddl` can create the same tables where no Collector did (tests on chdb,
  driftscope's own receivers writing into ClickHouse, the benchmark). Engine, partitioning and
  sort keys follow the exporter's; its skip indexes and codecs are left out (they change
  speed, never results).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

_MAP = "Map(LowCardinality(String), String)"
_EXEMPLARS = (
    "Nested(FilteredAttributes Map(LowCardinality(String), String), TimeUnix DateTime64(9), Value Float64, "
    "SpanId String, TraceId String)"
)

TRACES: dict[str, str] = {
    "Timestamp": "DateTime64(9)",
    "TraceId": "String",
    "SpanId": "String",
    "ParentSpanId": "String",
    "TraceState": "String",
    "SpanName": "LowCardinality(String)",
    "SpanKind": "LowCardinality(String)",
    "ServiceName": "LowCardinality(String)",
    "ResourceAttributes": _MAP,
    "ScopeName": "String",
    "ScopeVersion": "String",
    "SpanAttributes": _MAP,
    "Duration": "UInt64",
    "StatusCode": "LowCardinality(String)",
    "StatusMessage": "String",
    "Events": f"Nested(Timestamp DateTime64(9), Name LowCardinality(String), Attributes {_MAP})",
    "Links": f"Nested(TraceId String, SpanId String, TraceState String, Attributes {_MAP})",
}

LOGS: dict[str, str] = {
    "Timestamp": "DateTime64(9)",
    "TimestampTime": "DateTime DEFAULT toDateTime(Timestamp)",
    "TraceId": "String",
    "SpanId": "String",
    "TraceFlags": "UInt8",
    "SeverityText": "LowCardinality(String)",
    "SeverityNumber": "UInt8",
    "ServiceName": "LowCardinality(String)",
    "Body": "String",
    "ResourceSchemaUrl": "LowCardinality(String)",
    "ResourceAttributes": _MAP,
    "ScopeSchemaUrl": "LowCardinality(String)",
    "ScopeName": "String",
    "ScopeVersion": "LowCardinality(String)",
    "ScopeAttributes": _MAP,
    "LogAttributes": _MAP,
}

_METRIC_HEAD: dict[str, str] = {
    "ResourceAttributes": _MAP,
    "ResourceSchemaUrl": "String",
    "ScopeName": "String",
    "ScopeVersion": "String",
    "ScopeAttributes": _MAP,
    "ScopeDroppedAttrCount": "UInt32",
    "ScopeSchemaUrl": "String",
    "ServiceName": "LowCardinality(String)",
    "MetricName": "String",
    "MetricDescription": "String",
    "MetricUnit": "String",
    "Attributes": _MAP,
    "StartTimeUnix": "DateTime64(9)",
    "TimeUnix": "DateTime64(9)",
}

GAUGE = {**_METRIC_HEAD, "Value": "Float64", "Flags": "UInt32", "Exemplars": _EXEMPLARS}
SUM = {**GAUGE, "AggregationTemporality": "Int32", "IsMonotonic": "Boolean"}
HISTOGRAM = {
    **_METRIC_HEAD, "Count": "UInt64", "Sum": "Float64", "BucketCounts": "Array(UInt64)",
    "ExplicitBounds": "Array(Float64)", "Exemplars": _EXEMPLARS, "Flags": "UInt32", "Min": "Float64",
    "Max": "Float64", "AggregationTemporality": "Int32",
}  # fmt: skip
EXP_HISTOGRAM = {
    **_METRIC_HEAD, "Count": "UInt64", "Sum": "Float64", "Scale": "Int32", "ZeroCount": "UInt64",
    "PositiveOffset": "Int32", "PositiveBucketCounts": "Array(UInt64)", "NegativeOffset": "Int32",
    "NegativeBucketCounts": "Array(UInt64)", "Exemplars": _EXEMPLARS, "Flags": "UInt32", "Min": "Float64",
    "Max": "Float64", "AggregationTemporality": "Int32",
}  # fmt: skip
SUMMARY = {
    **_METRIC_HEAD, "Count": "UInt64", "Sum": "Float64",
    "ValueAtQuantiles": "Nested(Quantile Float64, Value Float64)", "Flags": "UInt32",
}  # fmt: skip


@dataclass(frozen=True)
class OtelTables:
    """The exporter's table names (its ``*_table_name`` settings; these are its defaults)."""

    traces: str = "otel_traces"
    logs: str = "otel_logs"
    gauge: str = "otel_metrics_gauge"
    sum: str = "otel_metrics_sum"
    histogram: str = "otel_metrics_histogram"
    exponential_histogram: str = "otel_metrics_exponential_histogram"
    summary: str = "otel_metrics_summary"

    @classmethod
    def from_mapping(cls, names: Mapping[str, str]) -> OtelTables:
        """Names from configuration (``traces = "my_traces"``, ...); unknown keys are a ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(names) - known)
        if unknown:
            raise ValueError(f"unknown exporter table keys {unknown}; known: {sorted(known)}")
        return cls(**dict(names))


COLUMNS: dict[str, dict[str, str]] = {
    "traces": TRACES, "logs": LOGS, "gauge": GAUGE, "sum": SUM, "histogram": HISTOGRAM,
    "exponential_histogram": EXP_HISTOGRAM, "summary": SUMMARY,
}  # fmt: skip
"""Exporter table (by ``OtelTables`` field) -> column -> ClickHouse type."""

_LAYOUT: dict[str, str] = {
    "traces": "PARTITION BY toDate(Timestamp) ORDER BY (ServiceName, SpanName, toDateTime(Timestamp), Timestamp)",
    "logs": "PARTITION BY toDate(TimestampTime) ORDER BY (ServiceName, TimestampTime, Timestamp)",
}
_METRIC_LAYOUT = (
    "PARTITION BY toDate(TimeUnix) ORDER BY (ServiceName, MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix))"
)

REQUIRED: dict[str, tuple[str, ...]] = {
    "traces": (
        "Timestamp", "TraceId", "SpanId", "ParentSpanId", "SpanName", "SpanKind", "ServiceName", "ResourceAttributes",
        "SpanAttributes", "Duration", "StatusCode", "StatusMessage",
    ),
    "logs": ("Timestamp", "ServiceName", "SeverityText", "SeverityNumber", "Body", "ResourceAttributes"),
    "gauge": ("ServiceName", "MetricName", "Attributes", "ResourceAttributes", "TimeUnix", "Value"),
    "sum": (
        "ServiceName", "MetricName", "Attributes", "ResourceAttributes", "ScopeName", "StartTimeUnix", "TimeUnix",
        "Value", "AggregationTemporality", "IsMonotonic",
    ),
    "histogram": (
        "ServiceName", "MetricName", "Attributes", "ResourceAttributes", "ScopeName", "StartTimeUnix", "TimeUnix",
        "Count", "Sum", "BucketCounts", "ExplicitBounds", "AggregationTemporality",
    ),
    "exponential_histogram": (
        "ServiceName", "MetricName", "Attributes", "ResourceAttributes", "ScopeName", "StartTimeUnix", "TimeUnix",
        "Count", "Sum", "Scale", "ZeroCount", "PositiveOffset", "PositiveBucketCounts", "NegativeOffset",
        "NegativeBucketCounts", "AggregationTemporality",
    ),
}  # fmt: skip
"""The columns driftscope reads, per exporter table it reads (the check names any that is missing)."""

OPTIONAL = frozenset({"gauge", "sum", "histogram", "exponential_histogram"})
"""Tables a Collector without a metrics pipeline never creates: absent, they roll up nothing; present, their
columns are checked like the others."""


def exporter_ddl(database: str, tables: OtelTables, which: tuple[str, ...] = tuple(COLUMNS)) -> list[str]:
    """CREATE TABLE IF NOT EXISTS statements for the exporter's tables ``which`` in ``database``."""
    out = []
    for key in which:
        cols = ",\n    ".join(f"`{name}` {kind}" for name, kind in COLUMNS[key].items())
        layout = _LAYOUT.get(key, _METRIC_LAYOUT)
        name = getattr(tables, key)
        out.append(
            f"CREATE TABLE IF NOT EXISTS `{database}`.`{name}` (\n    {cols}\n) ENGINE = MergeTree {layout} "
            "SETTINGS index_granularity = 8192"
        )
    return out


def schema_problems(present: Mapping[str, set[str]], tables: OtelTables) -> list[str]:
    """What is missing for driftscope to read: ``present`` maps each existing table to its columns
    (``Events.Name`` style for Nested). Empty when the exporter's schema is there."""
    problems = []
    for key, required in REQUIRED.items():
        name = getattr(tables, key)
        if name not in present:
            if key in OPTIONAL:
                continue
            problems.append(f"table {name} (the exporter's {key} table) does not exist")
            continue
        missing = [c for c in required if c not in present[name]]
        if missing:
            problems.append(f"table {name} lacks column(s) {', '.join(missing)} of the exporter's {key} schema")
    return problems
