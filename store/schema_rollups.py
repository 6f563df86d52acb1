"""The rollup tables (computed by ``analysis.rollup``): per-minute rollups, deploy markers, rollup state.

Versioned like the raw tables (``store.migrations``) in ``analysis_schema_version``.
Rollup rows are keyed by ``minute`` (TIMESTAMP, the minute's start, UTC) plus the
entity; a re-run replaces the minutes it recomputes, so rollups are idempotent.

- ``rollup_spans``: per (minute, service, operation, span kind, status class 'ok' |
  'error'): count, error count, duration sum/min/max (ns) and the duration distribution
  as a log-bucket histogram (``analysis.histogram``: bucket indices + counts, relative
  error <= 1 %), with p50/p90/p95/p99 precomputed from it.
- ``rollup_logs``: per (minute, service, severity, template) log record counts; template
  is NULL until the template miner lands.
- ``rollup_sums``: counter increase per (minute, metric, service, attributes), from
  cumulative points with reset detection or from delta points.
- ``rollup_gauges``: gauges per (minute, metric, service, attributes): mean, last, min,
  max and sample count (the declared aggregation is chosen when reading).
- ``rollup_histograms``: explicit-bucket histogram deltas per (minute, metric, service,
  attributes, bounds).
- ``rollup_exp_histograms``: exponential histogram deltas per (minute, metric, service,
  attributes), merged to a common scale.
- ``deploy_markers``: the first time each (service, version) was seen in spans.
- ``rollup_state``: per source table, the watermark and the late rows counted.
- ``rollup_late``: minutes that received rows after they were closed, and how many.
"""

from __future__ import annotations

_KEY = "minute TIMESTAMP NOT NULL, metric_name VARCHAR NOT NULL, service_name VARCHAR, attributes VARCHAR"

_V1 = f"""
CREATE TABLE rollup_spans (
    minute TIMESTAMP NOT NULL,
    service_name VARCHAR,
    operation VARCHAR NOT NULL,
    span_kind VARCHAR NOT NULL,
    status_class VARCHAR NOT NULL,
    count BIGINT NOT NULL,
    error_count BIGINT NOT NULL,
    duration_sum_ns DOUBLE NOT NULL,
    duration_min_ns BIGINT,
    duration_max_ns BIGINT,
    zero_count BIGINT NOT NULL,
    hist_index INTEGER[] NOT NULL,
    hist_counts BIGINT[] NOT NULL,
    p50_ns DOUBLE,
    p90_ns DOUBLE,
    p95_ns DOUBLE,
    p99_ns DOUBLE
);
CREATE INDEX rollup_spans_minute ON rollup_spans (minute);
CREATE TABLE rollup_logs (
    minute TIMESTAMP NOT NULL,
    service_name VARCHAR,
    severity_number INTEGER,
    severity_text VARCHAR,
    template VARCHAR,
    count BIGINT NOT NULL
);
CREATE TABLE rollup_sums ({_KEY}, delta DOUBLE, resets INTEGER NOT NULL, points INTEGER NOT NULL);
CREATE TABLE rollup_gauges (
    {_KEY}, value_mean DOUBLE, value_last DOUBLE, value_min DOUBLE, value_max DOUBLE, samples INTEGER NOT NULL
);
CREATE TABLE rollup_histograms (
    {_KEY}, bounds DOUBLE[] NOT NULL, counts BIGINT[] NOT NULL, count BIGINT NOT NULL, sum DOUBLE, resets INTEGER
);
CREATE TABLE rollup_exp_histograms (
    {_KEY}, scale INTEGER NOT NULL, zero_count BIGINT NOT NULL, positive_offset INTEGER,
    positive_counts BIGINT[] NOT NULL, negative_offset INTEGER, negative_counts BIGINT[] NOT NULL,
    count BIGINT NOT NULL, sum DOUBLE
);
CREATE TABLE deploy_markers (
    service_name VARCHAR NOT NULL,
    service_version VARCHAR NOT NULL,
    first_seen TIMESTAMP_NS NOT NULL,
    PRIMARY KEY (service_name, service_version)
);
CREATE TABLE rollup_state (
    source VARCHAR PRIMARY KEY,
    watermark TIMESTAMP,
    late_rows BIGINT NOT NULL DEFAULT 0,
    runs BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE rollup_late (
    source VARCHAR NOT NULL,
    minute TIMESTAMP NOT NULL,
    rows BIGINT NOT NULL,
    PRIMARY KEY (source, minute)
);
"""

MIGRATIONS: tuple[str, ...] = (_V1,)
VERSION_TABLE = "analysis_schema_version"
