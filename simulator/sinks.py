"""Where simulated telemetry goes: straight into a store, or out through OTLP exporters.

``StoreSink`` inserts the rows as they are (the fast path for tests and benchmarks).
``OtlpSink`` turns the same rows back into OpenTelemetry SDK objects (``ReadableSpan``,
``MetricsData``, ``ReadableLogRecord``) and sends them with the SDK's own OTLP exporters,
so any OTLP endpoint (driftscope, an OpenTelemetry Collector) receives real OTLP and
stores what the fast path would have stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pyarrow as pa
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.metrics._internal.exemplar import Exemplar
from opentelemetry.sdk.metrics._internal.point import Buckets
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from store.connection import Store


class StoreSink:
    """Insert rows directly into a driftscope store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def write(self, tables: dict[str, pa.Table]) -> None:
        self.store.insert(tables)

    def close(self) -> None:
        """The store belongs to the caller; nothing to do."""


class ExportError(RuntimeError):
    """An OTLP exporter gave up on a batch."""


_KINDS = {"SERVER": SpanKind.SERVER, "CLIENT": SpanKind.CLIENT, "INTERNAL": SpanKind.INTERNAL}
_STATUS = {"ERROR": StatusCode.ERROR, "OK": StatusCode.OK, "UNSET": StatusCode.UNSET}
_TEMPORALITY = {"delta": AggregationTemporality.DELTA, "cumulative": AggregationTemporality.CUMULATIVE}


def _ns(value: Any) -> int:
    """Nanoseconds of an Arrow timestamp value (``as_py`` would round to microseconds)."""
    return int(value)


def _rows(table: pa.Table) -> Iterator[dict[str, Any]]:
    """Rows as dicts, timestamps as integer nanoseconds."""
    cols = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.int64())
        cols[name] = col.to_pylist()
    for i in range(table.num_rows):
        yield {name: values[i] for name, values in cols.items()}


class SdkRecords:
    """Rows turned back into OpenTelemetry SDK objects, one ``Resource`` per distinct resource JSON and one
    ``InstrumentationScope`` per scope (the exporters group by identity)."""

    def __init__(self) -> None:
        self.resources: dict[str, Resource] = {}
        self.scopes: dict[tuple[str, str], InstrumentationScope] = {}

    def resource(self, resource_json: str) -> Resource:
        if resource_json not in self.resources:
            self.resources[resource_json] = Resource(orjson.loads(resource_json))
        return self.resources[resource_json]

    def scope(self, name: str, version: str) -> InstrumentationScope:
        return self.scopes.setdefault((name, version), InstrumentationScope(name, version))

    def spans(self, table: pa.Table) -> list[ReadableSpan]:
        """SDK spans of rows of table ``spans``."""
        out: list[ReadableSpan] = []
        for r in _rows(table):
            parent = None
            if r["parent_span_id"]:
                remote = bool(r["flags"] & 0x200)
                parent = SpanContext(int(r["trace_id"], 16), int(r["parent_span_id"], 16), remote)
            events = [Event(e["name"], e["attributes"], e["time_unix_nano"]) for e in orjson.loads(r["events"] or "[]")]
            out.append(
                ReadableSpan(
                    name=r["span_name"],
                    context=SpanContext(int(r["trace_id"], 16), int(r["span_id"], 16), False, TraceFlags(1)),
                    parent=parent,
                    resource=self.resource(r["resource_attributes"]),
                    attributes=orjson.loads(r["attributes"]),
                    events=events,
                    kind=_KINDS[r["span_kind"]],
                    status=Status(_STATUS[r["status_code"]], r["status_message"]),
                    start_time=r["start_time"],
                    end_time=r["end_time"],
                    instrumentation_scope=self.scope(r["scope_name"], r["scope_version"]),
                )
            )
        return out


class OtlpSink:
    """Send rows through the OpenTelemetry SDK's OTLP/HTTP exporters to ``endpoint``."""

    def __init__(self, endpoint: str, *, batch: int = 2_000, timeout_s: float = 30.0) -> None:
        base = endpoint.rstrip("/")
        self.spans = OTLPSpanExporter(endpoint=f"{base}/v1/traces", timeout=timeout_s)
        self.metrics = OTLPMetricExporter(endpoint=f"{base}/v1/metrics", timeout=timeout_s)
        self.logs = OTLPLogExporter(endpoint=f"{base}/v1/logs", timeout=timeout_s)
        self.batch = batch
        self.sdk = SdkRecords()

    def write(self, tables: dict[str, pa.Table]) -> None:
        if "spans" in tables:
            spans = self.sdk.spans(tables["spans"])
            for i in range(0, len(spans), self.batch):
                self._send_spans(spans[i : i + self.batch])
        if "logs" in tables:
            self._logs(tables["logs"])
        metric_tables = {k: v for k, v in tables.items() if k.endswith("_points")}
        if metric_tables:
            self._metrics(metric_tables)

    def _send_spans(self, batch: list[ReadableSpan]) -> None:
        if self.spans.export(batch) != SpanExportResult.SUCCESS:
            raise ExportError(f"the OTLP span exporter gave up on a batch of {len(batch)} spans")

    def _logs(self, table: pa.Table) -> None:
        batch: list[ReadableLogRecord] = []
        for r in _rows(table):
            record = LogRecord(
                timestamp=r["time"],
                observed_timestamp=r["observed_time"],
                trace_id=int(r["trace_id"], 16) if r["trace_id"] else None,
                span_id=int(r["span_id"], 16) if r["span_id"] else None,
                trace_flags=TraceFlags(r["flags"]),
                severity_text=r["severity_text"],
                severity_number=SeverityNumber(r["severity_number"]),
                body=r["body"],
                attributes=orjson.loads(r["attributes"]),
            )
            resource = self.sdk.resource(r["resource_attributes"])
            batch.append(ReadableLogRecord(record, resource, self.sdk.scope(r["scope_name"], r["scope_version"])))
        for i in range(0, len(batch), self.batch):
            if self.logs.export(batch[i : i + self.batch]).name != "SUCCESS":
                raise ExportError("the OTLP log exporter gave up on a batch")

    def _metrics(self, tables: dict[str, pa.Table]) -> None:
        grouped: dict[tuple[str, str, str], dict[tuple[str, str, str], list[Any]]] = {}
        for name, table in tables.items():
            for r in _rows(table):
                res_key = (r["resource_attributes"], r["scope_name"], r["scope_version"])
                metric_key = (name, r["metric_name"], r["metric_unit"] or "")
                grouped.setdefault(res_key, {}).setdefault(metric_key, []).append(r)
        resource_metrics = []
        for (res_json, scope_name, scope_version), metrics in grouped.items():
            sdk_metrics = [_metric(table, name, unit, rows) for (table, name, unit), rows in metrics.items()]
            resource_metrics.append(
                ResourceMetrics(
                    self.sdk.resource(res_json),
                    [ScopeMetrics(self.sdk.scope(scope_name, scope_version), sdk_metrics, "")],
                    "",
                )
            )
        if self.metrics.export(MetricsData(resource_metrics)) != MetricExportResult.SUCCESS:
            raise ExportError("the OTLP metric exporter gave up on a batch")

    def close(self) -> None:
        self.spans.shutdown()  # type: ignore[no-untyped-call]
        self.metrics.shutdown()
        self.logs.shutdown()  # type: ignore[no-untyped-call]


def _exemplars(text: str | None) -> list[Exemplar]:
    return [
        Exemplar(
            e["filtered_attributes"],
            e["value"],
            e["time_unix_nano"],
            int(e["span_id"], 16) if e["span_id"] else None,
            int(e["trace_id"], 16) if e["trace_id"] else None,
        )
        for e in orjson.loads(text or "[]")
    ]


def _metric(table: str, name: str, unit: str, rows: list[dict[str, Any]]) -> Metric:
    """One SDK Metric from rows of the same table, name and unit."""
    first = rows[0]
    if table == "metric_points":
        points = [
            NumberDataPoint(
                orjson.loads(r["attributes"]),
                r["start_time"] or 0,
                r["time"],
                r["value_int"] if r["value_int"] is not None else r["value"],
                _exemplars(r["exemplars"]),
            )
            for r in rows
        ]
        if first["kind"] == "gauge":
            data: Any = Gauge(points)
        else:
            data = Sum(points, _TEMPORALITY[first["temporality"]], bool(first["is_monotonic"]))
    elif table == "histogram_points":
        data = Histogram(
            [
                HistogramDataPoint(
                    orjson.loads(r["attributes"]),
                    r["start_time"] or 0,
                    r["time"],
                    r["count"],
                    r["sum"],
                    r["bucket_counts"],
                    r["bounds"],
                    r["min"],
                    r["max"],
                    _exemplars(r["exemplars"]),
                )
                for r in rows
            ],
            _TEMPORALITY[first["temporality"]],
        )
    elif table == "exp_histogram_points":
        data = ExponentialHistogram(
            [
                ExponentialHistogramDataPoint(
                    orjson.loads(r["attributes"]),
                    r["start_time"] or 0,
                    r["time"],
                    r["count"],
                    r["sum"],
                    r["scale"],
                    r["zero_count"],
                    Buckets(r["positive_offset"], r["positive_counts"]),
                    Buckets(r["negative_offset"], r["negative_counts"]),
                    r["flags"],
                    r["min"],
                    r["max"],
                    _exemplars(r["exemplars"]),
                )
                for r in rows
            ],
            _TEMPORALITY[first["temporality"]],
        )
    else:
        raise ValueError(f"the OTLP sink cannot send table {table}")
    return Metric(name, first["metric_description"], unit, data)
