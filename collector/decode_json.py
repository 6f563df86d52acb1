"""Decode OTLP/JSON export requests into raw-table rows (pure functions).

Implements the OTLP/JSON mapping directly on parsed JSON (protobuf's ``json_format`` is
an order of magnitude slower): lowerCamelCase keys, hex trace/span ids, int64 as strings
or numbers, enums as integers (their names are accepted too). A record with a wrong type
or value is rejected alone; a body that is not the expected JSON object at all raises
``MalformedRequest``. The rows are identical to those of ``decode_proto``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from collector.columns import ColumnBuffer, Decoded
from collector.decode_proto import MalformedRequest
from collector.values import (
    SEVERITIES,
    SPAN_KINDS,
    STATUS_CODES,
    TEMPORALITIES,
    any_value_json,
    attrs_json,
    body_text,
    body_type_of,
    check_enum,
    check_id,
    check_time,
    dumps,
    float_or_none,
    hex_to_bytes,
    hot_http,
    int_of,
    service_of,
    time_or_none,
)

_RECORD_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OverflowError)


def _enum(value: Any, names: tuple[str | None, ...], prefix: str, what: str) -> int:
    """An OTLP enum from JSON: its number or full proto name (``SPAN_KIND_SERVER``), in range."""
    if value is None:
        return 0
    if isinstance(value, str) and not value.lstrip("-").isdigit():
        short = value.removeprefix(prefix).lower()
        for i, name in enumerate(names):
            if name is not None and name.lower() == short:
                return i
        raise ValueError(f"{what} {value[:40]!r} is not a known value")
    number = int_of(value, what)
    err = check_enum(number, names, what)
    if err:
        raise ValueError(err)
    return number


def _list(obj: dict[str, Any], key: str) -> list[Any]:
    val = obj.get(key)
    if val is None:
        return []
    if not isinstance(val, list):
        raise MalformedRequest(f"{key!r} must be a JSON array, got {type(val).__name__}")
    return val


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedRequest(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _resource_scope(rx: dict[str, Any], sx: dict[str, Any]) -> dict[str, Any]:
    try:
        rattrs = attrs_json(_obj(rx.get("resource") or {}, "resource").get("attributes"))
        scope = _obj(sx.get("scope") or {}, "scope")
        sattrs = attrs_json(scope.get("attributes"))
    except _RECORD_ERRORS as exc:
        raise MalformedRequest(f"resource or scope attributes: {exc}") from None
    name, version = service_of(rattrs)
    return {
        "service_name": name,
        "service_version": version,
        "resource_attributes": dumps(rattrs),
        "resource_schema_url": rx.get("schemaUrl") or None,
        "scope_name": scope.get("name") or None,
        "scope_version": scope.get("version") or None,
        "scope_attributes": dumps(sattrs) if sattrs else None,
    }


def _time(obj: dict[str, Any], key: str) -> int:
    t = int_of(obj.get(key), key)
    err = check_time(t, key)
    if err:
        raise ValueError(err)
    return t


def _id(obj: dict[str, Any], key: str, size: int, *, required: bool) -> bytes:
    raw = hex_to_bytes(obj.get(key), key)
    err = check_id(raw, size, key, required=required)
    if err:
        raise ValueError(err)
    return raw


def _span_row(span: dict[str, Any], common: dict[str, Any]) -> dict[str, Any]:
    trace_id = _id(span, "traceId", 16, required=True)
    span_id = _id(span, "spanId", 8, required=True)
    parent = _id(span, "parentSpanId", 8, required=False)
    start = _time(span, "startTimeUnixNano")
    end = _time(span, "endTimeUnixNano")
    if not start:
        raise ValueError("startTimeUnixNano is 0 (unset)")
    if end < start:
        raise ValueError("endTimeUnixNano is before startTimeUnixNano")
    name = span.get("name", "")
    if not isinstance(name, str):
        raise ValueError(f"name must be a string, got {type(name).__name__}")
    attrs = attrs_json(span.get("attributes"))
    route, status_code = hot_http(attrs)
    status = span.get("status") or {}
    kind = _enum(span.get("kind"), SPAN_KINDS, "SPAN_KIND_", "kind")
    code = _enum(status.get("code"), STATUS_CODES, "STATUS_CODE_", "status.code")
    events = span.get("events") or []
    links = span.get("links") or []
    return {
        "trace_id": trace_id.hex(),
        "span_id": span_id.hex(),
        "parent_span_id": parent.hex() or None,
        "trace_state": span.get("traceState") or None,
        "flags": int_of(span.get("flags"), "flags"),
        "span_name": name,
        "span_kind": SPAN_KINDS[kind],
        "start_time": start,
        "end_time": end,
        "duration_ns": end - start,
        "status_code": STATUS_CODES[code],
        "status_message": status.get("message") or None,
        "http_route": route,
        "http_status_code": status_code,
        "events": dumps(
            [
                {
                    "time_unix_nano": _time(e, "timeUnixNano"),
                    "name": e.get("name", ""),
                    "attributes": attrs_json(e.get("attributes")),
                    "dropped_attributes_count": int_of(e.get("droppedAttributesCount"), "droppedAttributesCount"),
                }
                for e in events
            ]
        )
        if events
        else None,
        "links": dumps(
            [
                {
                    "trace_id": _id(lk, "traceId", 16, required=True).hex(),
                    "span_id": _id(lk, "spanId", 8, required=True).hex(),
                    "trace_state": lk.get("traceState", ""),
                    "attributes": attrs_json(lk.get("attributes")),
                    "dropped_attributes_count": int_of(lk.get("droppedAttributesCount"), "droppedAttributesCount"),
                    "flags": int_of(lk.get("flags"), "flags"),
                }
                for lk in links
            ]
        )
        if links
        else None,
        "dropped_attributes_count": int_of(span.get("droppedAttributesCount"), "droppedAttributesCount"),
        "dropped_events_count": int_of(span.get("droppedEventsCount"), "droppedEventsCount"),
        "dropped_links_count": int_of(span.get("droppedLinksCount"), "droppedLinksCount"),
        "attributes": dumps(attrs),
        **common,
    }


def _log_row(rec: dict[str, Any], common: dict[str, Any]) -> dict[str, Any]:
    body = any_value_json(rec["body"]) if rec.get("body") is not None else None
    sev_text = rec.get("severityText")
    return {
        "time": time_or_none(_time(rec, "timeUnixNano")),
        "observed_time": time_or_none(_time(rec, "observedTimeUnixNano")),
        "severity_number": _enum(rec.get("severityNumber"), SEVERITIES, "SEVERITY_NUMBER_", "severityNumber"),
        "severity_text": str(sev_text) if sev_text else None,
        "body": body_text(body),
        "body_type": body_type_of(body),
        "event_name": rec.get("eventName") or None,
        "trace_id": _id(rec, "traceId", 16, required=False).hex() or None,
        "span_id": _id(rec, "spanId", 8, required=False).hex() or None,
        "flags": int_of(rec.get("flags"), "flags"),
        "dropped_attributes_count": int_of(rec.get("droppedAttributesCount"), "droppedAttributesCount"),
        "attributes": dumps(attrs_json(rec.get("attributes"))),
        **common,
    }


def _exemplars(p: dict[str, Any]) -> str | None:
    ex = p.get("exemplars")
    if not ex:
        return None
    return dumps(
        [
            {
                "time_unix_nano": _time(e, "timeUnixNano"),
                "value": int_of(e["asInt"], "asInt") if "asInt" in e else float_or_none(e.get("asDouble"), "asDouble"),
                "trace_id": _id(e, "traceId", 16, required=False).hex() or None,
                "span_id": _id(e, "spanId", 8, required=False).hex() or None,
                "filtered_attributes": attrs_json(e.get("filteredAttributes")),
            }
            for e in ex
        ]
    )


def _head(metric: dict[str, Any], p: dict[str, Any], common: dict[str, Any]) -> dict[str, Any]:
    t = _time(p, "timeUnixNano")
    if not t:
        raise ValueError("timeUnixNano is 0 (unset)")
    return {
        "metric_name": metric["name"],
        "metric_description": metric.get("description") or None,
        "metric_unit": metric.get("unit") or None,
        "time": t,
        "start_time": time_or_none(_time(p, "startTimeUnixNano")),
        "flags": int_of(p.get("flags"), "flags"),
        "attributes": dumps(attrs_json(p.get("attributes"))),
        **common,
    }


def _temporality(data: dict[str, Any]) -> str:
    names = TEMPORALITIES
    return names[_enum(data.get("aggregationTemporality"), names, "AGGREGATION_TEMPORALITY_", "aggregationTemporality")]


def _number_row(
    metric: dict[str, Any], p: dict[str, Any], common: dict[str, Any], kind: str, data: dict[str, Any]
) -> dict[str, Any]:
    is_int = "asInt" in p
    value_int = int_of(p["asInt"], "asInt") if is_int else None
    return {
        **_head(metric, p, common),
        "value": float(value_int) if value_int is not None else (float_or_none(p.get("asDouble"), "asDouble") or 0.0),
        "value_int": value_int,
        "kind": kind,
        "temporality": _temporality(data) if kind == "sum" else None,
        "is_monotonic": bool(data.get("isMonotonic", False)) if kind == "sum" else None,
        "exemplars": _exemplars(p),
    }


def _gauge_row(
    metric: dict[str, Any], p: dict[str, Any], common: dict[str, Any], data: dict[str, Any]
) -> dict[str, Any]:
    return _number_row(metric, p, common, "gauge", data)


def _sum_row(metric: dict[str, Any], p: dict[str, Any], common: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    return _number_row(metric, p, common, "sum", data)


def _counts(values: Any, what: str) -> list[int]:
    return [int_of(v, what) for v in (values or [])]


def _histogram_row(
    metric: dict[str, Any], p: dict[str, Any], common: dict[str, Any], data: dict[str, Any]
) -> dict[str, Any]:
    bounds = [float(b) for b in (p.get("explicitBounds") or [])]
    counts = _counts(p.get("bucketCounts"), "bucketCounts")
    count = int_of(p.get("count"), "count")
    if counts and len(counts) != len(bounds) + 1:
        raise ValueError(f"{len(counts)} bucketCounts for {len(bounds)} explicitBounds (expected bounds + 1)")
    if any(b >= a for a, b in zip(bounds[1:], bounds[:-1], strict=False)):
        raise ValueError("explicitBounds are not strictly increasing")
    if counts and sum(counts) != count:
        raise ValueError(f"bucketCounts sum to {sum(counts)} but count is {count}")
    return {
        **_head(metric, p, common),
        "count": count,
        "sum": float_or_none(p.get("sum"), "sum"),
        "min": float_or_none(p.get("min"), "min"),
        "max": float_or_none(p.get("max"), "max"),
        "bounds": bounds,
        "bucket_counts": counts,
        "temporality": _temporality(data),
        "exemplars": _exemplars(p),
    }


def _exp_histogram_row(
    metric: dict[str, Any], p: dict[str, Any], common: dict[str, Any], data: dict[str, Any]
) -> dict[str, Any]:
    scale = int_of(p.get("scale"), "scale")
    if not -10 <= scale <= 20:
        raise ValueError(f"scale {scale} is outside -10..20")
    pos = p.get("positive") or {}
    neg = p.get("negative") or {}
    pos_counts = _counts(pos.get("bucketCounts"), "positive.bucketCounts")
    neg_counts = _counts(neg.get("bucketCounts"), "negative.bucketCounts")
    count = int_of(p.get("count"), "count")
    zero = int_of(p.get("zeroCount"), "zeroCount")
    if zero + sum(pos_counts) + sum(neg_counts) != count:
        raise ValueError(
            f"zero_count and buckets sum to {zero + sum(pos_counts) + sum(neg_counts)} but count is {count}"
        )
    return {
        **_head(metric, p, common),
        "count": count,
        "sum": float_or_none(p.get("sum"), "sum"),
        "min": float_or_none(p.get("min"), "min"),
        "max": float_or_none(p.get("max"), "max"),
        "scale": scale,
        "zero_count": zero,
        "zero_threshold": float_or_none(p.get("zeroThreshold"), "zeroThreshold") or 0.0,
        "positive_offset": int_of(pos.get("offset"), "positive.offset"),
        "positive_counts": pos_counts,
        "negative_offset": int_of(neg.get("offset"), "negative.offset"),
        "negative_counts": neg_counts,
        "temporality": _temporality(data),
        "exemplars": _exemplars(p),
    }


def _summary_row(
    metric: dict[str, Any], p: dict[str, Any], common: dict[str, Any], data: dict[str, Any]
) -> dict[str, Any]:
    qv = p.get("quantileValues") or []
    return {
        **_head(metric, p, common),
        "count": int_of(p.get("count"), "count"),
        "sum": float_or_none(p.get("sum"), "sum") or 0.0,
        "quantiles": [float_or_none(q.get("quantile"), "quantile") or 0.0 for q in qv],
        "quantile_values": [float_or_none(q.get("value"), "value") or 0.0 for q in qv],
    }


_Row = Callable[[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]], dict[str, Any]]

_KINDS: dict[str, tuple[str, _Row]] = {
    "gauge": ("metric_points", _gauge_row),
    "sum": ("metric_points", _sum_row),
    "histogram": ("histogram_points", _histogram_row),
    "exponentialHistogram": ("exp_histogram_points", _exp_histogram_row),
    "summary": ("summary_points", _summary_row),
}


def traces_from_json(doc: dict[str, Any]) -> Decoded:
    """Rows of table ``spans`` from a parsed OTLP/JSON trace request."""
    out = Decoded("traces")
    buf = ColumnBuffer("spans")
    for rs in _list(doc, "resourceSpans"):
        for ss in _list(_obj(rs, "resourceSpans[]"), "scopeSpans"):
            common = _resource_scope(rs, _obj(ss, "scopeSpans[]"))
            for span in _list(ss, "spans"):
                try:
                    buf.append(**_span_row(_obj(span, "span"), common))
                except _RECORD_ERRORS as exc:
                    sid = span.get("spanId", "?") if isinstance(span, dict) else "?"
                    out.reject(f"span {str(sid)[:40]}: {exc}")
    return out.finish([buf])


def logs_from_json(doc: dict[str, Any]) -> Decoded:
    """Rows of table ``logs`` from a parsed OTLP/JSON logs request."""
    out = Decoded("logs")
    buf = ColumnBuffer("logs")
    for rl in _list(doc, "resourceLogs"):
        for sl in _list(_obj(rl, "resourceLogs[]"), "scopeLogs"):
            common = _resource_scope(rl, _obj(sl, "scopeLogs[]"))
            for rec in _list(sl, "logRecords"):
                try:
                    buf.append(**_log_row(_obj(rec, "logRecord"), common))
                except _RECORD_ERRORS as exc:
                    out.reject(f"log record: {exc}")
    return out.finish([buf])


def metrics_from_json(doc: dict[str, Any]) -> Decoded:
    """Rows of the metric tables from a parsed OTLP/JSON metrics request."""
    out = Decoded("metrics")
    bufs = {t: ColumnBuffer(t) for t in ("metric_points", "histogram_points", "exp_histogram_points", "summary_points")}
    for rm in _list(doc, "resourceMetrics"):
        for sm in _list(_obj(rm, "resourceMetrics[]"), "scopeMetrics"):
            common = _resource_scope(rm, _obj(sm, "scopeMetrics[]"))
            for raw_metric in _list(sm, "metrics"):
                metric = _obj(raw_metric, "metric")
                kind = next((k for k in _KINDS if k in metric), None)
                name = metric.get("name")
                if kind is None or not isinstance(name, str) or not name:
                    out.reject(f"metric {str(name)[:80]!r}: no name or no data")
                    continue
                table, make_row = _KINDS[kind]
                data = _obj(metric[kind], kind)
                for p in _list(data, "dataPoints"):
                    try:
                        bufs[table].append(**make_row(metric, _obj(p, "dataPoint"), common, data))
                    except _RECORD_ERRORS as exc:
                        out.reject(f"metric {name[:80]!r} point: {exc}")
    return out.finish(list(bufs.values()))


_CONVERT: dict[str, tuple[str, Callable[[dict[str, Any]], Decoded]]] = {
    "traces": ("ExportTraceServiceRequest", traces_from_json),
    "metrics": ("ExportMetricsServiceRequest", metrics_from_json),
    "logs": ("ExportLogsServiceRequest", logs_from_json),
}


def decode_json_doc(signal: str, doc: Any) -> Decoded:
    """Decode an already parsed OTLP/JSON request object for ``signal``."""
    name, convert = _CONVERT[signal]
    if not isinstance(doc, dict):
        raise MalformedRequest(f"body must be a JSON object ({name}), got {type(doc).__name__}")
    return convert(doc)


def decode_json(signal: str, body: bytes) -> Decoded:
    """Decode the JSON body of an OTLP export request for ``signal``."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequest(f"body is not valid JSON: {exc}") from None
    return decode_json_doc(signal, doc)
