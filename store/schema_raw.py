"""The raw-table schema (owned by ``collector``, the only writer) and its forward migrations.

Every change to the raw tables is a new entry appended to ``MIGRATIONS``; entries are
never edited once released. ``SCHEMA_VERSION`` is the number of migrations, recorded in
table ``schema_version`` so that a store written by a newer driftscope is refused instead
of being misread.

Conventions: time columns are ``TIMESTAMP_NS`` (nanoseconds since the Unix epoch, UTC);
trace and span ids are lower-case hex; attribute maps are JSON objects whose values keep
their OTLP type (string, bool, int, double, array, kvlist; bytes become base64 strings).
"""

from __future__ import annotations

_RESOURCE_SCOPE = """
    attributes JSON,
    resource_attributes JSON,
    resource_schema_url VARCHAR,
    scope_name VARCHAR,
    scope_version VARCHAR,
    scope_attributes JSON
"""

_METRIC_HEAD = """
    metric_name VARCHAR NOT NULL,
    metric_description VARCHAR,
    metric_unit VARCHAR,
    service_name VARCHAR,
    service_version VARCHAR,
    time TIMESTAMP_NS NOT NULL,
    start_time TIMESTAMP_NS,
"""

_V1 = f"""
CREATE TABLE spans (
    trace_id VARCHAR NOT NULL,
    span_id VARCHAR NOT NULL,
    parent_span_id VARCHAR,
    trace_state VARCHAR,
    flags UINTEGER,
    service_name VARCHAR,
    service_version VARCHAR,
    span_name VARCHAR NOT NULL,
    span_kind VARCHAR NOT NULL,
    start_time TIMESTAMP_NS NOT NULL,
    end_time TIMESTAMP_NS NOT NULL,
    duration_ns BIGINT NOT NULL,
    status_code VARCHAR NOT NULL,
    status_message VARCHAR,
    http_route VARCHAR,
    http_status_code INTEGER,
    events JSON,
    links JSON,
    dropped_attributes_count UINTEGER,
    dropped_events_count UINTEGER,
    dropped_links_count UINTEGER,
    {_RESOURCE_SCOPE}
);
CREATE TABLE logs (
    time TIMESTAMP_NS,
    observed_time TIMESTAMP_NS,
    service_name VARCHAR,
    service_version VARCHAR,
    severity_number INTEGER,
    severity_text VARCHAR,
    body VARCHAR,
    body_type VARCHAR,
    event_name VARCHAR,
    trace_id VARCHAR,
    span_id VARCHAR,
    flags UINTEGER,
    dropped_attributes_count UINTEGER,
    {_RESOURCE_SCOPE}
);
CREATE TABLE metric_points (
    {_METRIC_HEAD}
    value DOUBLE,
    value_int BIGINT,
    kind VARCHAR NOT NULL,
    temporality VARCHAR,
    is_monotonic BOOLEAN,
    flags UINTEGER,
    exemplars JSON,
    {_RESOURCE_SCOPE}
);
CREATE TABLE histogram_points (
    {_METRIC_HEAD}
    count UBIGINT NOT NULL,
    sum DOUBLE,
    min DOUBLE,
    max DOUBLE,
    bounds DOUBLE[] NOT NULL,
    bucket_counts UBIGINT[] NOT NULL,
    temporality VARCHAR NOT NULL,
    flags UINTEGER,
    exemplars JSON,
    {_RESOURCE_SCOPE}
);
CREATE TABLE exp_histogram_points (
    {_METRIC_HEAD}
    count UBIGINT NOT NULL,
    sum DOUBLE,
    min DOUBLE,
    max DOUBLE,
    scale INTEGER NOT NULL,
    zero_count UBIGINT NOT NULL,
    zero_threshold DOUBLE,
    positive_offset INTEGER,
    positive_counts UBIGINT[] NOT NULL,
    negative_offset INTEGER,
    negative_counts UBIGINT[] NOT NULL,
    temporality VARCHAR NOT NULL,
    flags UINTEGER,
    exemplars JSON,
    {_RESOURCE_SCOPE}
);
CREATE TABLE summary_points (
    {_METRIC_HEAD}
    count UBIGINT NOT NULL,
    sum DOUBLE,
    quantiles DOUBLE[] NOT NULL,
    quantile_values DOUBLE[] NOT NULL,
    flags UINTEGER,
    {_RESOURCE_SCOPE}
);
"""

MIGRATIONS: tuple[str, ...] = (_V1,)
"""Forward migrations, oldest first. Migration ``i`` moves the store to version ``i + 1``."""

SCHEMA_VERSION = len(MIGRATIONS)

RAW_TABLES: dict[str, str] = {
    "spans": "start_time",
    "logs": "observed_time",
    "metric_points": "time",
    "histogram_points": "time",
    "exp_histogram_points": "time",
    "summary_points": "time",
}
"""Raw table name -> the time column that retention is enforced on."""
