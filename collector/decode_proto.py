"""Decode OTLP protobuf export requests into raw-table rows (pure functions).

``decode_proto(signal, body)`` parses the bytes of an ``Export*ServiceRequest`` and
returns a ``Decoded``: Arrow tables of accepted records plus per-record rejections.
Unparseable bytes raise ``MalformedRequest`` naming the message that failed.

Two implementations give the same answer: the compiled decoder (``collector.native``,
when ``scripts/setup`` could build it) and ``decode_proto_python`` here, the reference and
the fallback. ``decode_proto`` uses the compiled one and hands any request it declines to
the Python one; ``DECODER`` says which is in use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collector import native
from collector.columns import ColumnBuffer, Decoded
from collector.salvage import WireError, salvage
from collector.values import (
    SEVERITIES,
    SPAN_KINDS,
    STATUS_CODES,
    TEMPORALITIES,
    any_value_proto,
    attrs_proto,
    body_text,
    body_type_of,
    check_enum,
    check_id,
    check_time,
    dumps,
    hot_http,
    service_of,
    time_or_none,
)


class MalformedRequest(ValueError):
    """The request body cannot be parsed at all; the message says what failed."""


def _resource_scope(resource: Any, schema_url: str, scope: Any) -> dict[str, Any]:
    """Columns shared by every record under one resource and scope."""
    rattrs = attrs_proto(resource.attributes)
    name, version = service_of(rattrs)
    return {
        "service_name": name,
        "service_version": version,
        "resource_attributes": dumps(rattrs),
        "resource_schema_url": schema_url or None,
        "scope_name": scope.name or None,
        "scope_version": scope.version or None,
        "scope_attributes": dumps(attrs_proto(scope.attributes)) if scope.attributes else None,
    }


def _events(span: Any) -> str | None:
    if not span.events:
        return None
    return dumps(
        [
            {
                "time_unix_nano": e.time_unix_nano,
                "name": e.name,
                "attributes": attrs_proto(e.attributes),
                "dropped_attributes_count": e.dropped_attributes_count,
            }
            for e in span.events
        ]
    )


def _links(span: Any) -> str | None:
    if not span.links:
        return None
    return dumps(
        [
            {
                "trace_id": link.trace_id.hex(),
                "span_id": link.span_id.hex(),
                "trace_state": link.trace_state,
                "attributes": attrs_proto(link.attributes),
                "dropped_attributes_count": link.dropped_attributes_count,
                "flags": link.flags,
            }
            for link in span.links
        ]
    )


def _span_error(span: Any) -> str | None:
    return (
        check_id(span.trace_id, 16, "trace_id", required=True)
        or check_id(span.span_id, 8, "span_id", required=True)
        or check_id(span.parent_span_id, 8, "parent_span_id", required=False)
        or check_time(span.start_time_unix_nano, "start_time_unix_nano")
        or check_time(span.end_time_unix_nano, "end_time_unix_nano")
        or (
            "end_time_unix_nano is before start_time_unix_nano"
            if span.end_time_unix_nano < span.start_time_unix_nano
            else None
        )
        or (None if span.start_time_unix_nano else "start_time_unix_nano is 0 (unset)")
        or check_enum(span.kind, SPAN_KINDS, "kind")
        or check_enum(span.status.code, STATUS_CODES, "status.code")
    )


def traces_from_proto(req: ExportTraceServiceRequest) -> Decoded:
    """Rows of table ``spans`` from a parsed trace export request."""
    out = Decoded("traces")
    buf = ColumnBuffer("spans")
    for rs in req.resource_spans:
        for ss in rs.scope_spans:
            common = _resource_scope(rs.resource, rs.schema_url, ss.scope)
            for span in ss.spans:
                err = _span_error(span)
                if err:
                    out.reject(f"span {span.span_id.hex() or '?'} {span.name[:80]!r}: {err}")
                    continue
                attrs = attrs_proto(span.attributes)
                route, status = hot_http(attrs)
                buf.append(
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex() or None,
                    trace_state=span.trace_state or None,
                    flags=span.flags,
                    span_name=span.name,
                    span_kind=SPAN_KINDS[span.kind],
                    start_time=span.start_time_unix_nano,
                    end_time=span.end_time_unix_nano,
                    duration_ns=span.end_time_unix_nano - span.start_time_unix_nano,
                    status_code=STATUS_CODES[span.status.code],
                    status_message=span.status.message or None,
                    http_route=route,
                    http_status_code=status,
                    events=_events(span),
                    links=_links(span),
                    dropped_attributes_count=span.dropped_attributes_count,
                    dropped_events_count=span.dropped_events_count,
                    dropped_links_count=span.dropped_links_count,
                    attributes=dumps(attrs),
                    **common,
                )
    return out.finish([buf])


def logs_from_proto(req: ExportLogsServiceRequest) -> Decoded:
    """Rows of table ``logs`` from a parsed logs export request."""
    out = Decoded("logs")
    buf = ColumnBuffer("logs")
    for rl in req.resource_logs:
        for sl in rl.scope_logs:
            common = _resource_scope(rl.resource, rl.schema_url, sl.scope)
            for rec in sl.log_records:
                err = (
                    check_id(rec.trace_id, 16, "trace_id", required=False)
                    or check_id(rec.span_id, 8, "span_id", required=False)
                    or check_time(rec.time_unix_nano, "time_unix_nano")
                    or check_time(rec.observed_time_unix_nano, "observed_time_unix_nano")
                    or check_enum(rec.severity_number, SEVERITIES, "severity_number")
                )
                if err:
                    out.reject(f"log record: {err}")
                    continue
                body = any_value_proto(rec.body) if rec.HasField("body") else None
                buf.append(
                    time=time_or_none(rec.time_unix_nano),
                    observed_time=time_or_none(rec.observed_time_unix_nano),
                    severity_number=rec.severity_number,
                    severity_text=rec.severity_text or None,
                    body=body_text(body),
                    body_type=body_type_of(body),
                    event_name=rec.event_name or None,
                    trace_id=rec.trace_id.hex() or None,
                    span_id=rec.span_id.hex() or None,
                    flags=rec.flags,
                    dropped_attributes_count=rec.dropped_attributes_count,
                    attributes=dumps(attrs_proto(rec.attributes)),
                    **common,
                )
    return out.finish([buf])


def _exemplars(point: Any) -> str | None:
    if not point.exemplars:
        return None
    return dumps(
        [
            {
                "time_unix_nano": e.time_unix_nano,
                "value": e.as_int if e.WhichOneof("value") == "as_int" else e.as_double,
                "trace_id": e.trace_id.hex() or None,
                "span_id": e.span_id.hex() or None,
                "filtered_attributes": attrs_proto(e.filtered_attributes),
            }
            for e in point.exemplars
        ]
    )


def _point_error(p: Any) -> str | None:
    return (
        check_time(p.time_unix_nano, "time_unix_nano")
        or check_time(p.start_time_unix_nano, "start_time_unix_nano")
        or (None if p.time_unix_nano else "time_unix_nano is 0 (unset)")
    )


def _point_head(metric: Any, p: Any, common: dict[str, Any]) -> dict[str, Any]:
    return {
        "metric_name": metric.name,
        "metric_description": metric.description or None,
        "metric_unit": metric.unit or None,
        "time": p.time_unix_nano,
        "start_time": time_or_none(p.start_time_unix_nano),
        "flags": p.flags,
        "attributes": dumps(attrs_proto(p.attributes)),
        **common,
    }


def _number_row(metric: Any, p: Any, common: dict[str, Any], kind: str, data: Any) -> dict[str, Any]:
    is_int = p.WhichOneof("value") == "as_int"
    return {
        **_point_head(metric, p, common),
        "value": float(p.as_int) if is_int else p.as_double,
        "value_int": p.as_int if is_int else None,
        "kind": kind,
        "temporality": TEMPORALITIES[data.aggregation_temporality] if kind == "sum" else None,
        "is_monotonic": data.is_monotonic if kind == "sum" else None,
        "exemplars": _exemplars(p),
    }


def _histogram_error(p: Any) -> str | None:
    if len(p.bucket_counts) and len(p.bucket_counts) != len(p.explicit_bounds) + 1:
        return (
            f"{len(p.bucket_counts)} bucket_counts for {len(p.explicit_bounds)} explicit_bounds (expected bounds + 1)"
        )
    if any(b >= a for a, b in zip(p.explicit_bounds[1:], p.explicit_bounds[:-1], strict=False)):
        return "explicit_bounds are not strictly increasing"
    if len(p.bucket_counts) and sum(p.bucket_counts) != p.count:
        return f"bucket_counts sum to {sum(p.bucket_counts)} but count is {p.count}"
    return None


def _histogram_row(metric: Any, p: Any, common: dict[str, Any], data: Any) -> dict[str, Any]:
    return {
        **_point_head(metric, p, common),
        "count": p.count,
        "sum": p.sum if p.HasField("sum") else None,
        "min": p.min if p.HasField("min") else None,
        "max": p.max if p.HasField("max") else None,
        "bounds": list(p.explicit_bounds),
        "bucket_counts": list(p.bucket_counts),
        "temporality": TEMPORALITIES[data.aggregation_temporality],
        "exemplars": _exemplars(p),
    }


def _exp_histogram_error(p: Any) -> str | None:
    if not -10 <= p.scale <= 20:
        return f"scale {p.scale} is outside -10..20"
    total = p.zero_count + sum(p.positive.bucket_counts) + sum(p.negative.bucket_counts)
    if total != p.count:
        return f"zero_count and buckets sum to {total} but count is {p.count}"
    return None


def _exp_histogram_row(metric: Any, p: Any, common: dict[str, Any], data: Any) -> dict[str, Any]:
    return {
        **_point_head(metric, p, common),
        "count": p.count,
        "sum": p.sum if p.HasField("sum") else None,
        "min": p.min if p.HasField("min") else None,
        "max": p.max if p.HasField("max") else None,
        "scale": p.scale,
        "zero_count": p.zero_count,
        "zero_threshold": p.zero_threshold,
        "positive_offset": p.positive.offset,
        "positive_counts": list(p.positive.bucket_counts),
        "negative_offset": p.negative.offset,
        "negative_counts": list(p.negative.bucket_counts),
        "temporality": TEMPORALITIES[data.aggregation_temporality],
        "exemplars": _exemplars(p),
    }


def _summary_row(metric: Any, p: Any, common: dict[str, Any], data: Any) -> dict[str, Any]:
    return {
        **_point_head(metric, p, common),
        "count": p.count,
        "sum": p.sum,
        "quantiles": [q.quantile for q in p.quantile_values],
        "quantile_values": [q.value for q in p.quantile_values],
    }


_Row = Callable[[Any, Any, dict[str, Any], Any], dict[str, Any]]


def _gauge_row(metric: Any, p: Any, common: dict[str, Any], data: Any) -> dict[str, Any]:
    return _number_row(metric, p, common, "gauge", data)


def _sum_row(metric: Any, p: Any, common: dict[str, Any], data: Any) -> dict[str, Any]:
    return _number_row(metric, p, common, "sum", data)


_KINDS: dict[str, tuple[str, _Row, Callable[[Any], str | None] | None]] = {
    "gauge": ("metric_points", _gauge_row, None),
    "sum": ("metric_points", _sum_row, None),
    "histogram": ("histogram_points", _histogram_row, _histogram_error),
    "exponential_histogram": ("exp_histogram_points", _exp_histogram_row, _exp_histogram_error),
    "summary": ("summary_points", _summary_row, None),
}


def metrics_from_proto(req: ExportMetricsServiceRequest) -> Decoded:
    """Rows of the metric tables from a parsed metrics export request."""
    out = Decoded("metrics")
    bufs = {t: ColumnBuffer(t) for t in ("metric_points", "histogram_points", "exp_histogram_points", "summary_points")}
    for rm in req.resource_metrics:
        for sm in rm.scope_metrics:
            common = _resource_scope(rm.resource, rm.schema_url, sm.scope)
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                if kind is None or not metric.name:
                    out.reject(f"metric {metric.name!r}: no name or no data")
                    continue
                table, make_row, extra_check = _KINDS[kind]
                data = getattr(metric, kind)
                if kind not in {"gauge", "summary"}:
                    err = check_enum(data.aggregation_temporality, TEMPORALITIES, "aggregation_temporality")
                    if err:
                        for _ in data.data_points:
                            out.reject(f"metric {metric.name[:80]!r} point: {err}")
                        continue
                for p in data.data_points:
                    err = _point_error(p) or (extra_check(p) if extra_check else None)
                    if err:
                        out.reject(f"metric {metric.name[:80]!r} point: {err}")
                        continue
                    bufs[table].append(**make_row(metric, p, common, data))
    return out.finish(list(bufs.values()))


_REQUESTS: dict[str, tuple[type[Any], Callable[[Any], Decoded]]] = {
    "traces": (ExportTraceServiceRequest, traces_from_proto),
    "metrics": (ExportMetricsServiceRequest, metrics_from_proto),
    "logs": (ExportLogsServiceRequest, logs_from_proto),
}


_RECORD_NAMES = {"traces": "span", "metrics": "metric", "logs": "log record"}


def decode_proto_python(signal: str, body: bytes) -> Decoded:
    """Decode the protobuf body of an OTLP export request for ``signal`` in Python.

    When the whole message fails to parse (typically invalid UTF-8 in one string), the
    records that do parse are kept and the others are rejected one by one.
    """
    message_type, convert = _REQUESTS[signal]
    req = message_type()
    try:
        req.ParseFromString(body)
    except DecodeError as exc:
        try:
            rebuilt = salvage(body, message_type)
        except WireError:
            rebuilt = None
        if rebuilt is None or not rebuilt.unparseable:
            raise MalformedRequest(f"body is not a valid {message_type.__name__} protobuf message: {exc}") from None
        req = message_type()
        req.ParseFromString(rebuilt.body)
        out = convert(req)
        for _ in range(rebuilt.unparseable):
            out.reject(f"{_RECORD_NAMES[signal]} does not parse (invalid UTF-8 in a string field or malformed bytes)")
        return out
    return convert(req)


DECODER = native.load()
"""The compiled decoder in use (``DECODER.decoder``, None for Python) and a one-line notice."""


def decode_proto(signal: str, body: bytes) -> Decoded:
    """Decode the protobuf body of an OTLP export request for ``signal``.

    The compiled decoder when it is built (identical rows, rejections and reasons), the
    Python one for requests it declines and when it is not built.
    """
    compiled = DECODER.decoder
    if compiled is not None:
        try:
            decoded = compiled.decode(signal, body)
        except native.TooLarge as exc:
            raise MalformedRequest(str(exc)) from None
        if decoded is not None:
            return decoded
    return decode_proto_python(signal, body)
