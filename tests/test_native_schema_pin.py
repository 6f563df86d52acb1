"""The compiled decoder knows the OTLP messages field by field (native/src): every known
string field is UTF-8 checked, as upb does. A new opentelemetry-proto that adds or retypes a
field would make it treat that field as unknown, so the installed messages are pinned here.
When this fails: teach native/src the new fields (parse or at least validate them), then
update the list."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

# message -> sorted (field number, descriptor type, repeated); types: 1 double, 3 int64,
# 5 int32, 6 fixed64, 7 fixed32, 8 bool, 9 string, 11 message, 12 bytes, 13 uint32,
# 14 enum, 16 sfixed64, 17 sint32, 4 uint64.
KNOWN: dict[str, list[tuple[int, int, bool]]] = {
    "opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest": [(1, 11, True)],
    "opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest": [(1, 11, True)],
    "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest": [(1, 11, True)],
    "opentelemetry.proto.common.v1.AnyValue": [
        (1, 9, False),
        (2, 8, False),
        (3, 3, False),
        (4, 1, False),
        (5, 11, False),
        (6, 11, False),
        (7, 12, False),
        (8, 5, False),
    ],
    "opentelemetry.proto.common.v1.ArrayValue": [(1, 11, True)],
    "opentelemetry.proto.common.v1.EntityRef": [(1, 9, False), (2, 9, False), (3, 9, True), (4, 9, True)],
    "opentelemetry.proto.common.v1.InstrumentationScope": [(1, 9, False), (2, 9, False), (3, 11, True), (4, 13, False)],
    "opentelemetry.proto.common.v1.KeyValue": [(1, 9, False), (2, 11, False), (3, 5, False)],
    "opentelemetry.proto.common.v1.KeyValueList": [(1, 11, True)],
    "opentelemetry.proto.logs.v1.LogRecord": [
        (1, 6, False),
        (2, 14, False),
        (3, 9, False),
        (5, 11, False),
        (6, 11, True),
        (7, 13, False),
        (8, 7, False),
        (9, 12, False),
        (10, 12, False),
        (11, 6, False),
        (12, 9, False),
    ],
    "opentelemetry.proto.logs.v1.ResourceLogs": [(1, 11, False), (2, 11, True), (3, 9, False)],
    "opentelemetry.proto.logs.v1.ScopeLogs": [(1, 11, False), (2, 11, True), (3, 9, False)],
    "opentelemetry.proto.metrics.v1.Exemplar": [
        (2, 6, False),
        (3, 1, False),
        (4, 12, False),
        (5, 12, False),
        (6, 16, False),
        (7, 11, True),
    ],
    "opentelemetry.proto.metrics.v1.ExponentialHistogram": [(1, 11, True), (2, 14, False)],
    "opentelemetry.proto.metrics.v1.ExponentialHistogramDataPoint": [
        (1, 11, True),
        (2, 6, False),
        (3, 6, False),
        (4, 6, False),
        (5, 1, False),
        (6, 17, False),
        (7, 6, False),
        (8, 11, False),
        (9, 11, False),
        (10, 13, False),
        (11, 11, True),
        (12, 1, False),
        (13, 1, False),
        (14, 1, False),
    ],
    "opentelemetry.proto.metrics.v1.ExponentialHistogramDataPoint.Buckets": [(1, 17, False), (2, 4, True)],
    "opentelemetry.proto.metrics.v1.Gauge": [(1, 11, True)],
    "opentelemetry.proto.metrics.v1.Histogram": [(1, 11, True), (2, 14, False)],
    "opentelemetry.proto.metrics.v1.HistogramDataPoint": [
        (2, 6, False),
        (3, 6, False),
        (4, 6, False),
        (5, 1, False),
        (6, 6, True),
        (7, 1, True),
        (8, 11, True),
        (9, 11, True),
        (10, 13, False),
        (11, 1, False),
        (12, 1, False),
    ],
    "opentelemetry.proto.metrics.v1.Metric": [
        (1, 9, False),
        (2, 9, False),
        (3, 9, False),
        (5, 11, False),
        (7, 11, False),
        (9, 11, False),
        (10, 11, False),
        (11, 11, False),
        (12, 11, True),
    ],
    "opentelemetry.proto.metrics.v1.NumberDataPoint": [
        (2, 6, False),
        (3, 6, False),
        (4, 1, False),
        (5, 11, True),
        (6, 16, False),
        (7, 11, True),
        (8, 13, False),
    ],
    "opentelemetry.proto.metrics.v1.ResourceMetrics": [(1, 11, False), (2, 11, True), (3, 9, False)],
    "opentelemetry.proto.metrics.v1.ScopeMetrics": [(1, 11, False), (2, 11, True), (3, 9, False)],
    "opentelemetry.proto.metrics.v1.Sum": [(1, 11, True), (2, 14, False), (3, 8, False)],
    "opentelemetry.proto.metrics.v1.Summary": [(1, 11, True)],
    "opentelemetry.proto.metrics.v1.SummaryDataPoint": [
        (2, 6, False),
        (3, 6, False),
        (4, 6, False),
        (5, 1, False),
        (6, 11, True),
        (7, 11, True),
        (8, 13, False),
    ],
    "opentelemetry.proto.metrics.v1.SummaryDataPoint.ValueAtQuantile": [(1, 1, False), (2, 1, False)],
    "opentelemetry.proto.resource.v1.Resource": [(1, 11, True), (2, 13, False), (3, 11, True)],
    "opentelemetry.proto.trace.v1.ResourceSpans": [(1, 11, False), (2, 11, True), (3, 9, False)],
    "opentelemetry.proto.trace.v1.ScopeSpans": [(1, 11, False), (2, 11, True), (3, 9, False)],
    "opentelemetry.proto.trace.v1.Span": [
        (1, 12, False),
        (2, 12, False),
        (3, 9, False),
        (4, 12, False),
        (5, 9, False),
        (6, 14, False),
        (7, 6, False),
        (8, 6, False),
        (9, 11, True),
        (10, 13, False),
        (11, 11, True),
        (12, 13, False),
        (13, 11, True),
        (14, 13, False),
        (15, 11, False),
        (16, 7, False),
    ],
    "opentelemetry.proto.trace.v1.Span.Event": [(1, 6, False), (2, 9, False), (3, 11, True), (4, 13, False)],
    "opentelemetry.proto.trace.v1.Span.Link": [
        (1, 12, False),
        (2, 12, False),
        (3, 9, False),
        (4, 11, True),
        (5, 13, False),
        (6, 7, False),
    ],
    "opentelemetry.proto.trace.v1.Status": [(2, 9, False), (3, 14, False)],
}


def _repeated(field: Any) -> bool:
    """``is_repeated`` (protobuf >= 5.29) or the older ``label``."""
    if hasattr(field, "is_repeated"):
        return bool(field.is_repeated)
    return bool(field.label == 3)


def _messages() -> dict[str, list[tuple[int, int, bool]]]:
    seen: dict[str, list[tuple[int, int, bool]]] = {}

    def walk(d: Any) -> None:
        if d.full_name in seen:
            return
        seen[d.full_name] = sorted((f.number, f.type, _repeated(f)) for f in d.fields)
        for f in d.fields:
            if f.message_type is not None:
                walk(f.message_type)

    for request in (ExportTraceServiceRequest, ExportMetricsServiceRequest, ExportLogsServiceRequest):
        walk(request.DESCRIPTOR)
    return seen


def test_the_otlp_messages_are_the_ones_the_compiled_decoder_knows() -> None:
    assert _messages() == KNOWN
