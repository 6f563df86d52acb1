"""Test helpers: OTLP/JSON example payloads (in the shape of the specification's
examples) and a slow-but-sure converter to protobuf through protobuf's own json_format."""

from __future__ import annotations

import base64
import copy
from typing import Any

import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

_ID_KEYS = {"traceId", "spanId", "parentSpanId"}
_MESSAGES: dict[str, Any] = {
    "traces": ExportTraceServiceRequest,
    "metrics": ExportMetricsServiceRequest,
    "logs": ExportLogsServiceRequest,
}


def _hex_ids_to_base64(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: base64.b64encode(bytes.fromhex(v)).decode()
            if k in _ID_KEYS and isinstance(v, str)
            else _hex_ids_to_base64(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids_to_base64(v) for v in node]
    return node


def _base64_ids_to_hex(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: base64.b64decode(v).hex() if k in _ID_KEYS and isinstance(v, str) else _base64_ids_to_hex(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_base64_ids_to_hex(v) for v in node]
    return node


def proto_to_json_bytes(message: Any, *, enums_as_integers: bool = True) -> bytes:
    """The OTLP/JSON body of a protobuf export request: proto3 JSON with ids in hex (as OTLP/JSON spells them)."""
    return orjson.dumps(
        _base64_ids_to_hex(json_format.MessageToDict(message, use_integers_for_enums=enums_as_integers))
    )


def json_to_proto_bytes(signal: str, doc: dict[str, Any]) -> bytes:
    """Protobuf bytes of an OTLP/JSON document (ids: hex in OTLP/JSON, base64 in proto3 JSON)."""
    message = json_format.ParseDict(_hex_ids_to_base64(copy.deepcopy(doc)), _MESSAGES[signal]())
    return bytes(message.SerializeToString())


def _kv(key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "value": value}


_RESOURCE = {"attributes": [_kv("service.name", {"stringValue": "my.service"})]}
_SCOPE = {"name": "my.library", "version": "1.0.0", "attributes": [_kv("my.scope.attribute", {"stringValue": "x"})]}

TRACE_EXAMPLE: dict[str, Any] = {
    "resourceSpans": [
        {
            "resource": _RESOURCE,
            "scopeSpans": [
                {
                    "scope": _SCOPE,
                    "spans": [
                        {
                            "traceId": "5B8EFFF798038103D269B633813FC60C",
                            "spanId": "EEE19B7EC3C1B174",
                            "parentSpanId": "EEE19B7EC3C1B173",
                            "name": "I'm a server span",
                            "startTimeUnixNano": "1544712660000000000",
                            "endTimeUnixNano": "1544712661000000000",
                            "kind": 2,
                            "status": {"code": 2, "message": "boom"},
                            "attributes": [
                                _kv("my.span.attr", {"stringValue": "some value"}),
                                _kv("http.route", {"stringValue": "/users/{id}"}),
                                _kv("http.response.status_code", {"intValue": "500"}),
                                _kv("bytes", {"bytesValue": "AAEC"}),
                            ],
                            "events": [
                                {
                                    "timeUnixNano": "1544712660500000000",
                                    "name": "exception",
                                    "attributes": [_kv("exception.type", {"stringValue": "ValueError"})],
                                }
                            ],
                            "links": [
                                {
                                    "traceId": "5b8efff798038103d269b633813fc60d",
                                    "spanId": "eee19b7ec3c1b175",
                                    "attributes": [_kv("reason", {"stringValue": "batch"})],
                                }
                            ],
                        }
                    ],
                }
            ],
        }
    ]
}

METRICS_EXAMPLE: dict[str, Any] = {
    "resourceMetrics": [
        {
            "resource": _RESOURCE,
            "scopeMetrics": [
                {
                    "scope": _SCOPE,
                    "metrics": [
                        {
                            "name": "my.counter",
                            "unit": "1",
                            "description": "I am a Counter",
                            "sum": {
                                "aggregationTemporality": 1,
                                "isMonotonic": True,
                                "dataPoints": [
                                    {
                                        "asDouble": 5,
                                        "startTimeUnixNano": "1544712660300000000",
                                        "timeUnixNano": "1544712660300000000",
                                        "attributes": [_kv("my.counter.attr", {"stringValue": "some value"})],
                                    }
                                ],
                            },
                        },
                        {
                            "name": "my.int.gauge",
                            "gauge": {
                                "dataPoints": [{"asInt": "9007199254740993", "timeUnixNano": "1544712660300000000"}]
                            },
                        },
                        {
                            "name": "my.histogram",
                            "unit": "ms",
                            "histogram": {
                                "aggregationTemporality": 2,
                                "dataPoints": [
                                    {
                                        "startTimeUnixNano": "1544712660300000000",
                                        "timeUnixNano": "1544712660300000000",
                                        "count": "3",
                                        "sum": 3,
                                        "bucketCounts": ["1", "1", "1"],
                                        "explicitBounds": [1, 2],
                                        "min": 0.5,
                                        "max": 2.5,
                                        "exemplars": [
                                            {
                                                "timeUnixNano": "1544712660300000000",
                                                "asDouble": 2.5,
                                                "traceId": "5b8efff798038103d269b633813fc60c",
                                                "spanId": "eee19b7ec3c1b174",
                                            }
                                        ],
                                    }
                                ],
                            },
                        },
                        {
                            "name": "my.exp.histogram",
                            "exponentialHistogram": {
                                "aggregationTemporality": 1,
                                "dataPoints": [
                                    {
                                        "timeUnixNano": "1544712660300000000",
                                        "count": "5",
                                        "sum": 12.5,
                                        "scale": 3,
                                        "zeroCount": "1",
                                        "positive": {"offset": -2, "bucketCounts": ["1", "0", "2"]},
                                        "negative": {"offset": 1, "bucketCounts": ["1"]},
                                    }
                                ],
                            },
                        },
                        {
                            "name": "my.summary",
                            "summary": {
                                "dataPoints": [
                                    {
                                        "timeUnixNano": "1544712660300000000",
                                        "count": "10",
                                        "sum": 55,
                                        "quantileValues": [
                                            {"quantile": 0.5, "value": 5},
                                            {"quantile": 0.99, "value": 9.9},
                                        ],
                                    }
                                ]
                            },
                        },
                    ],
                }
            ],
        }
    ]
}

LOGS_EXAMPLE: dict[str, Any] = {
    "resourceLogs": [
        {
            "resource": _RESOURCE,
            "scopeLogs": [
                {
                    "scope": _SCOPE,
                    "logRecords": [
                        {
                            "timeUnixNano": "1544712660300000000",
                            "observedTimeUnixNano": "1544712660300000000",
                            "severityNumber": 10,
                            "severityText": "Information",
                            "traceId": "5B8EFFF798038103D269B633813FC60C",
                            "spanId": "EEE19B7EC3C1B174",
                            "body": {"stringValue": "Example log record"},
                            "attributes": [
                                _kv("string.attribute", {"stringValue": "some string"}),
                                _kv("boolean.attribute", {"boolValue": True}),
                                _kv("int.attribute", {"intValue": "10"}),
                                _kv("double.attribute", {"doubleValue": 637.704}),
                                _kv("array.attribute", {"arrayValue": {"values": [{"stringValue": "many"}]}}),
                                _kv(
                                    "map.attribute",
                                    {"kvlistValue": {"values": [_kv("some.map.key", {"stringValue": "v"})]}},
                                ),
                            ],
                        },
                        {
                            "timeUnixNano": "1544712660400000000",
                            "body": {"kvlistValue": {"values": [_kv("event", {"stringValue": "login"})]}},
                        },
                    ],
                }
            ],
        }
    ]
}

EXAMPLES: dict[str, dict[str, Any]] = {"traces": TRACE_EXAMPLE, "metrics": METRICS_EXAMPLE, "logs": LOGS_EXAMPLE}
