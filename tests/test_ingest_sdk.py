"""Real OpenTelemetry SDK exporters (HTTP/protobuf and gRPC) -> driftscope serve -> DuckDB.

Each test sends through the SDK's own exporter and asserts the exact rows that landed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider, UpDownCounter
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from serverproc import ServerProc

RESOURCE = Resource.create({"service.name": "checkout", "service.version": "2.4.1", "deployment.environment": "test"})

ALL_TYPES: dict[str, Any] = {
    "http.route": "/cart/{id}",
    "http.response.status_code": 503,
    "str": 'héllo "quoted" \' ; DROP TABLE spans; --',
    "int": -(2**62),
    "float": 0.125,
    "bool": True,
    "str_list": ["a", "b"],
    "int_list": [1, 2, 3],
    "float_list": [1.5, -2.5],
    "bool_list": [True, False],
}


def _exporters(transport: str, srv: ServerProc) -> tuple[Any, Any, Any]:
    if transport == "http":
        return (
            HttpSpanExporter(endpoint=f"{srv.http_url}/v1/traces"),
            HttpMetricExporter(endpoint=f"{srv.http_url}/v1/metrics"),
            HttpLogExporter(endpoint=f"{srv.http_url}/v1/logs"),
        )
    endpoint = f"127.0.0.1:{srv.otlp_grpc}"
    return (
        GrpcSpanExporter(endpoint=endpoint, insecure=True),
        GrpcMetricExporter(endpoint=endpoint, insecure=True),
        GrpcLogExporter(endpoint=endpoint, insecure=True),
    )


def _send_spans(exporter: SpanExporter) -> dict[str, Any]:
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("shop.tracer", "0.9")
    with tracer.start_as_current_span("POST /checkout", kind=SpanKind.SERVER, attributes=ALL_TYPES) as root:
        root.add_event("cart.loaded", {"items": 3})
        ctx = root.get_span_context()
        with tracer.start_as_current_span(
            "charge", kind=SpanKind.CLIENT, links=[Link(ctx, {"link.reason": "retry"})]
        ) as child:
            child.set_status(Status(StatusCode.ERROR, "card declined"))
            child_ctx = child.get_span_context()
    provider.shutdown()
    return {"trace_id": f"{ctx.trace_id:032x}", "root": f"{ctx.span_id:016x}", "child": f"{child_ctx.span_id:016x}"}


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_spans_land_exactly(server: ServerProc, transport: str) -> None:
    span_exp, _, _ = _exporters(transport, server)
    ids = _send_spans(span_exp)
    assert server.stop() == 0
    rows = server.query(
        "SELECT trace_id, span_id, parent_span_id, service_name, service_version, span_name, span_kind, "
        "status_code, status_message, http_route, http_status_code, duration_ns = epoch_ns(end_time) - "
        "epoch_ns(start_time), attributes, events, links, resource_attributes->>'deployment.environment', "
        "scope_name, scope_version FROM spans ORDER BY span_kind DESC"
    )
    assert len(rows) == 2
    root, child = rows
    assert root[:11] == (
        ids["trace_id"],
        ids["root"],
        None,
        "checkout",
        "2.4.1",
        "POST /checkout",
        "SERVER",
        "UNSET",
        None,
        "/cart/{id}",
        503,
    )
    assert root[11] is True
    assert json.loads(root[12]) == ALL_TYPES
    events = json.loads(root[13])
    assert [(e["name"], e["attributes"]) for e in events] == [("cart.loaded", {"items": 3})]
    assert root[14] is None
    assert root[15:] == ("test", "shop.tracer", "0.9")
    assert child[:9] == (
        ids["trace_id"],
        ids["child"],
        ids["root"],
        "checkout",
        "2.4.1",
        "charge",
        "CLIENT",
        "ERROR",
        "card declined",
    )
    links = json.loads(child[14])
    assert [(lk["trace_id"], lk["span_id"], lk["attributes"]) for lk in links] == [
        (ids["trace_id"], ids["root"], {"link.reason": "retry"})
    ]


def _collect_metrics(temporality: AggregationTemporality) -> Any:
    preferred = {Counter: temporality, Histogram: temporality, UpDownCounter: temporality}
    reader = InMemoryMetricReader(preferred_temporality=preferred)
    views = [View(instrument_name="job.records", aggregation=ExponentialBucketHistogramAggregation(max_size=20))]
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader], views=views)
    meter = provider.get_meter("shop.meter")
    requests = meter.create_counter("http.requests", unit="1")
    latency = meter.create_histogram("http.duration", unit="ms")
    records = meter.create_histogram("job.records")
    inflight = meter.create_up_down_counter("inflight")
    meter.create_observable_gauge("queue.depth", callbacks=[lambda _: [_observation(7.5)]])
    for value in (3.0, 30.0, 300.0, 3000.0):
        latency.record(value, {"route": "/a"})
    for value in (1, 2, 4, 8, 16, 1000):
        records.record(value)
    requests.add(5, {"route": "/a"})
    inflight.add(2)
    data = reader.get_metrics_data()
    provider.shutdown()
    return data


def _observation(value: float) -> Any:
    from opentelemetry.metrics import Observation

    return Observation(value, {"queue": "orders"})


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_metrics_land_exactly(server: ServerProc, transport: str) -> None:
    _, metric_exp, _ = _exporters(transport, server)
    for temporality in (AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA):
        assert metric_exp.export(_collect_metrics(temporality)) == MetricExportResult.SUCCESS
    metric_exp.shutdown()
    assert server.stop() == 0
    points = server.query(
        "SELECT metric_name, kind, temporality, is_monotonic, value, value_int, attributes, service_name "
        "FROM metric_points ORDER BY metric_name, temporality"
    )
    assert points == [
        ("http.requests", "sum", "cumulative", True, 5.0, 5, '{"route":"/a"}', "checkout"),
        ("http.requests", "sum", "delta", True, 5.0, 5, '{"route":"/a"}', "checkout"),
        ("inflight", "sum", "cumulative", False, 2.0, 2, "{}", "checkout"),
        ("inflight", "sum", "delta", False, 2.0, 2, "{}", "checkout"),
        ("queue.depth", "gauge", None, None, 7.5, None, '{"queue":"orders"}', "checkout"),
        ("queue.depth", "gauge", None, None, 7.5, None, '{"queue":"orders"}', "checkout"),
    ]
    hist = server.query(
        "SELECT temporality, count, sum, min, max, bounds, bucket_counts, metric_unit, start_time IS NOT NULL "
        "FROM histogram_points WHERE metric_name = 'http.duration' ORDER BY temporality"
    )
    default_bounds = [
        0.0,
        5.0,
        10.0,
        25.0,
        50.0,
        75.0,
        100.0,
        250.0,
        500.0,
        750.0,
        1000.0,
        2500.0,
        5000.0,
        7500.0,
        10000.0,
    ]
    expected_counts = [0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]
    assert hist == [
        ("cumulative", 4, 3333.0, 3.0, 3000.0, default_bounds, expected_counts, "ms", True),
        ("delta", 4, 3333.0, 3.0, 3000.0, default_bounds, expected_counts, "ms", True),
    ]
    exp = server.query(
        "SELECT count, sum, min, max, scale, zero_count, positive_offset, positive_counts, negative_counts "
        "FROM exp_histogram_points ORDER BY temporality"
    )
    assert len(exp) == 2
    for count, total, lo, hi, scale, zero, offset, counts, negative in exp:
        assert (count, total, lo, hi, zero, sum(negative)) == (6, 1031.0, 1.0, 1000.0, 0, 0)
        assert sum(counts) == 6
        # Every recorded value lies in the bucket (base^(offset+i), base^(offset+i+1)] it was counted in.
        base = 2.0 ** (2.0**-scale)
        occupied = [i for i, c in enumerate(counts) if c]
        assert base ** (offset + occupied[0]) < 1.0 <= base ** (offset + occupied[0] + 1)
        assert base ** (offset + occupied[-1]) < 1000.0 <= base ** (offset + occupied[-1] + 1)


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_logs_land_exactly(server: ServerProc, transport: str) -> None:
    _, _, log_exp = _exporters(transport, server)
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(log_exp))
    logger = provider.get_logger("shop.logs")
    tracer_provider = TracerProvider(resource=RESOURCE)
    with tracer_provider.get_tracer("t").start_as_current_span("op") as span:
        logger.emit(
            timestamp=1_700_000_000_123_456_789,
            severity_number=SeverityNumber.ERROR,
            severity_text="ERROR",
            body="payment failed for order 42",
            attributes={"order.id": 42},
        )
        ctx = span.get_span_context()
    logger.emit(timestamp=1_700_000_001_000_000_000, severity_number=SeverityNumber.INFO, body={"k": [1, "x"]})
    provider.shutdown()
    assert server.stop() == 0
    rows = server.query(
        "SELECT epoch_ns(time), severity_number, severity_text, body, body_type, trace_id, span_id, attributes, "
        "service_name, scope_name FROM logs ORDER BY time"
    )
    assert rows == [
        (
            1_700_000_000_123_456_789,
            17,
            "ERROR",
            "payment failed for order 42",
            "string",
            f"{ctx.trace_id:032x}",
            f"{ctx.span_id:016x}",
            '{"order.id":42}',
            "checkout",
            "shop.logs",
        ),
        (1_700_000_001_000_000_000, 9, None, '{"k":[1,"x"]}', "kvlist", None, None, "{}", "checkout", "shop.logs"),
    ]
