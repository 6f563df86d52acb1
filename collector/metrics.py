"""Prometheus metrics of the ingest path, created against a registry passed in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_REQUEST_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class IngestMetrics:
    """Counters and histograms for received / accepted / rejected / refused telemetry.

    Items are spans, data points or log records; ``refused`` counts whole requests turned
    away (queue full, malformed, too large, wrong content type) by reason.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "driftscope_ingest_received_items",
            "Telemetry items (spans, data points, log records) decoded from requests.",
            ["signal"],
            registry=registry,
        )
        self.accepted = Counter(
            "driftscope_ingest_accepted_items",
            "Telemetry items committed to the store.",
            ["signal"],
            registry=registry,
        )
        self.rejected = Counter(
            "driftscope_ingest_rejected_items",
            "Telemetry items rejected one by one (OTLP partial success).",
            ["signal"],
            registry=registry,
        )
        self.refused = Counter(
            "driftscope_ingest_refused_requests",
            "Whole requests refused, by reason (queue_full, malformed, too_large, unsupported, error).",
            ["signal", "reason"],
            registry=registry,
        )
        self.requests = Histogram(
            "driftscope_ingest_request_duration_seconds",
            "Time from receiving an export request to answering it, in seconds.",
            ["transport", "signal"],
            buckets=_REQUEST_BUCKETS_S,
            registry=registry,
        )
        self.write_batch = Histogram(
            "driftscope_ingest_write_batch_seconds",
            "Time to commit one group of queued requests to DuckDB, in seconds.",
            buckets=_REQUEST_BUCKETS_S,
            registry=registry,
        )
        self.write_rows = Counter(
            "driftscope_ingest_written_rows",
            "Rows committed to the raw tables.",
            registry=registry,
        )
        self.queue_rows = Gauge(
            "driftscope_ingest_queue_rows",
            "Rows decoded and waiting for the writer.",
            registry=registry,
        )
        self.queue_bytes = Gauge(
            "driftscope_ingest_queue_bytes",
            "Arrow bytes decoded and waiting for the writer.",
            registry=registry,
        )
        self.queue_rows_max = Gauge(
            "driftscope_ingest_queue_rows_max",
            "Configured queue capacity in rows (ingest.queue_rows_max): receivers refuse beyond it.",
            registry=registry,
        )

    def observe_commit(self, seconds: float, rows: int) -> None:
        self.write_batch.observe(seconds)
        self.write_rows.inc(rows)
