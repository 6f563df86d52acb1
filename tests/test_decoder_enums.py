"""Enum values outside the OTLP definitions are rejected per record, the same way by both
decoders (never indexed from the end, never folded into a known value)."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from otlp_json import METRICS_EXAMPLE, TRACE_EXAMPLE, json_to_proto_bytes

from collector.decode_json import decode_json
from collector.decode_proto import decode_proto


def _both(signal: str, doc: dict[str, Any]) -> list[tuple[int, int, str]]:
    out = []
    for decoded in (decode_json(signal, orjson.dumps(doc)), decode_proto(signal, json_to_proto_bytes(signal, doc))):
        out.append((decoded.accepted, decoded.rejected, decoded.error_message()))
    return out


@pytest.mark.parametrize(("field", "value"), [("kind", 9), ("kind", -1)])
def test_unknown_span_kind_is_rejected(field: str, value: int) -> None:
    doc = copy.deepcopy(TRACE_EXAMPLE)
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0][field] = value
    for accepted, rejected, message in _both("traces", doc):
        assert (accepted, rejected) == (0, 1)
        assert f"kind {value} is not a known value" in message


def test_unknown_status_code_is_rejected() -> None:
    doc = copy.deepcopy(TRACE_EXAMPLE)
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["status"]["code"] = -2
    for accepted, rejected, message in _both("traces", doc):
        assert (accepted, rejected) == (0, 1)
        assert "status.code -2 is not a known value" in message


@pytest.mark.parametrize("temporality", [3, 7, -1])
def test_unknown_histogram_temporality_is_rejected(temporality: int) -> None:
    doc = copy.deepcopy(METRICS_EXAMPLE)
    metrics = doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
    histogram = next(m for m in metrics if m["name"] == "my.histogram")
    histogram["histogram"]["aggregationTemporality"] = temporality
    for accepted, rejected, message in _both("metrics", doc):
        assert (accepted, rejected) == (4, 1)
        assert f"emporality {temporality} is not a known value" in message


def test_enum_names_are_accepted_in_json() -> None:
    doc = copy.deepcopy(TRACE_EXAMPLE)
    span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["kind"] = "SPAN_KIND_CLIENT"
    span["status"]["code"] = "STATUS_CODE_OK"
    decoded = decode_json("traces", orjson.dumps(doc))
    table = decoded.tables["spans"]
    assert (table["span_kind"][0].as_py(), table["status_code"][0].as_py()) == ("CLIENT", "OK")
