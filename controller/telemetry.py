"""driftscope's own telemetry: JSON logs with trace ids, optional self-tracing, findings metrics.

- Logs: one JSON object per line on stderr (time, level, logger, message, the record's
  ``extra`` fields, and the current trace/span ids when a span is active), so a log line can
  be joined with the trace that produced it.
- Self-tracing: with ``telemetry.otlp_endpoint`` set, job runs are traced with the
  OpenTelemetry SDK and exported over OTLP/HTTP; pointing it at driftscope's own receiver
  makes driftscope watch itself.
- Findings metrics: open findings by severity, detector and service, and the top drift
  scores (at most ``top_scores_max`` series, so label cardinality stays bounded), read from
  the store at scrape time.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from store import findings as store_findings
from store.connection import Store

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with ``extra`` fields and the active trace context."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            out["trace_id"] = f"{ctx.trace_id:032x}"
            out["span_id"] = f"{ctx.span_id:016x}"
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(fmt: str) -> None:
    """Send logs to stderr as JSON (``json``) or plain text (``text``)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        formatter: logging.Formatter = JsonFormatter()
        formatter.converter = __import__("time").gmtime
        handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def configure_tracing(endpoint: str, service_version: str) -> trace.Tracer:
    """A tracer exporting to ``endpoint`` (OTLP/HTTP base URL), or a no-op one when empty."""
    if not endpoint:
        return trace.NoOpTracer()
    resource = Resource.create({"service.name": "driftscope", "service.version": service_version})
    provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces", timeout=10)
    # Exported every second: when the endpoint is driftscope itself, its receivers stop before a
    # final flush could reach them, so at most the last second of self-spans is lost.
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1_000))
    return provider.get_tracer("driftscope.controller")


class FindingsCollector(Collector):
    """Prometheus collector reading open findings and top drift scores at scrape time."""

    def __init__(self, store: Store, top_scores_max: int) -> None:
        self.store = store
        self.top = top_scores_max

    def collect(self) -> Iterator[Metric]:
        open_ = GaugeMetricFamily(
            "driftscope_findings_open",
            "Open or acknowledged findings.",
            labels=["severity", "detector", "service"],
        )
        scores = GaugeMetricFamily(
            "driftscope_drift_score",
            "Score in [0, 1] of the strongest open findings (top N by score).",
            labels=["service", "operation", "kind", "detector"],
        )
        con = self.store.cursor()
        try:
            for sev, det, svc, n in store_findings.open_counts(con):
                open_.add_metric([sev, det, svc], n)
            for svc, op, kind, det, score in store_findings.top_scores(con, self.top):
                scores.add_metric([svc, op, kind, det], score)
        finally:
            con.close()
        yield open_
        yield scores
