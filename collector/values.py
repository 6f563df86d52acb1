"""OTLP value conversions shared by the protobuf and JSON decoders.

Attribute maps become JSON text whose values keep their OTLP type; ids become lower-case
hex; enum numbers become the names users query by. Every check here is a pure function
returning an error string (or ``None``), so decoders reject one record, not a request.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

SPAN_KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUS_CODES = ("UNSET", "OK", "ERROR")
TEMPORALITIES = ("unspecified", "delta", "cumulative")
SEVERITIES = (
    "UNSPECIFIED",
    *tuple(
        f"{level}{'' if i == 1 else i}"
        for level in ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
        for i in range(1, 5)
    ),
)
"""Log severity numbers 0..24 by their proto names (without the SEVERITY_NUMBER_ prefix)."""

MAX_TIME_NS = 2**63 - 1
"""Largest timestamp a TIMESTAMP_NS column holds (year 2262)."""

HTTP_ROUTE_KEYS = ("http.route",)
HTTP_STATUS_KEYS = ("http.response.status_code", "http.status_code")


def any_value_proto(v: AnyValue) -> Any:
    """The Python value (str, bool, int, float, list, dict, None) of a protobuf AnyValue."""
    which = v.WhichOneof("value")
    if which == "string_value":
        return v.string_value
    if which == "int_value":
        return v.int_value
    if which == "double_value":
        return v.double_value
    if which == "bool_value":
        return v.bool_value
    if which == "array_value":
        return [any_value_proto(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value_proto(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(v.bytes_value).decode("ascii")
    return None


def attrs_proto(kvs: Any) -> dict[str, Any]:
    """A dict from a repeated KeyValue field."""
    return {kv.key: any_value_proto(kv.value) for kv in kvs}


def any_value_json(v: Any) -> Any:
    """The Python value of an OTLP/JSON AnyValue object (int64 may arrive as a string)."""
    if not isinstance(v, dict) or not v:
        return None
    key, val = next(iter(v.items()))
    if key == "stringValue":
        return str(val)
    if key == "intValue":
        return int(val)
    if key == "doubleValue":
        return float(val)
    if key == "boolValue":
        return bool(val)
    if key == "arrayValue":
        return [any_value_json(x) for x in (val or {}).get("values", ())]
    if key == "kvlistValue":
        return attrs_json((val or {}).get("values", ()))
    if key == "bytesValue":
        return str(val)
    raise ValueError(f"unknown AnyValue field {key!r}")


def attrs_json(kvs: Any) -> dict[str, Any]:
    """A dict from an OTLP/JSON ``attributes`` array."""
    if not kvs:
        return {}
    return {kv.get("key", ""): any_value_json(kv.get("value")) for kv in kvs}


def body_type_of(value: Any) -> str | None:
    """The AnyValue type name of a decoded log body ("string", "int", "kvlist", ...)."""
    if value is None:
        return None
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    if isinstance(value, list):
        return "array"
    return "kvlist"


def body_text(value: Any) -> str | None:
    """A log body as text: strings as they are, anything else as JSON."""
    if value is None or isinstance(value, str):
        return value
    return dumps(value)


def dumps(value: Any) -> str:
    """Compact JSON text (non-finite floats become null, as JSON has no NaN)."""
    return orjson.dumps(value).decode()


def hot_http(attrs: dict[str, Any]) -> tuple[str | None, int | None]:
    """(http.route, HTTP status code) from span attributes, when present and well typed."""
    route = None
    for key in HTTP_ROUTE_KEYS:
        val = attrs.get(key)
        if isinstance(val, str):
            route = val
            break
    status = None
    for key in HTTP_STATUS_KEYS:
        val = attrs.get(key)
        if isinstance(val, int) and not isinstance(val, bool) and 0 <= val < 1000:
            status = val
            break
        if isinstance(val, str) and val.isdigit() and len(val) <= 3:
            status = int(val)
            break
    return route, status


def service_of(resource_attrs: dict[str, Any]) -> tuple[str | None, str | None]:
    """(service.name, service.version) of a resource, as strings when present."""
    name = resource_attrs.get("service.name")
    version = resource_attrs.get("service.version")
    return (
        None if name is None else str(name),
        None if version is None else str(version),
    )


def check_id(raw: bytes, size: int, what: str, *, required: bool) -> str | None:
    """Why an id of ``size`` bytes is invalid, or None when it is fine."""
    if not raw:
        return f"{what} is empty" if required else None
    if len(raw) != size:
        return f"{what} has {len(raw)} bytes, expected {size}"
    if required and not any(raw):
        return f"{what} is all zeros"
    return None


def hex_to_bytes(text: Any, what: str) -> bytes:
    """Bytes of an OTLP/JSON hex id (the spec's JSON mapping), ValueError naming it."""
    if text is None or text == "":
        return b""
    if not isinstance(text, str):
        raise ValueError(f"{what} must be a hex string, got {type(text).__name__}")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{what} {text[:40]!r} is not hex") from None


def check_enum(value: int, names: tuple[str | None, ...], what: str) -> str | None:
    """Why an OTLP enum number is outside the values this version knows, or None."""
    if 0 <= value < len(names):
        return None
    return f"{what} {value} is not a known value"


def check_time(t: int, what: str) -> str | None:
    """Why a unix-nano timestamp is out of range, or None."""
    if t < 0 or t > MAX_TIME_NS:
        return f"{what} {t} is outside 0..{MAX_TIME_NS}"
    return None


def time_or_none(t: int) -> int | None:
    """OTLP uses 0 for "unset"; the store uses NULL."""
    return t if t else None


def kv_list(kvs: list[KeyValue]) -> str:
    """JSON text of a repeated KeyValue field (helper for one-off columns)."""
    return dumps(attrs_proto(kvs))


def int_of(value: Any, what: str) -> int:
    """An int (OTLP/JSON sends int64 as strings), ValueError naming the field."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError(f"{what} must be an integer, got bool")
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an integer, got {str(value)[:40]!r}") from None
    return out


def float_or_none(value: Any, what: str) -> float | None:
    """A float from OTLP/JSON (numbers or the strings "NaN", "Infinity")."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number, got bool")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {str(value)[:40]!r}") from None


def ensure_hex(raw: bytes) -> str | None:
    """Hex text of an id, None when absent."""
    return raw.hex() if raw else None
