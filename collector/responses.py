"""OTLP response bodies (export responses with partial success, and failure Status)."""

from __future__ import annotations

from typing import Any

import orjson
from google.rpc.status_pb2 import Status as RpcStatus
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from collector.ingest import IngestResult

_RESPONSES: dict[str, tuple[type[Any], str, str]] = {
    "traces": (ExportTraceServiceResponse, "rejected_spans", "rejectedSpans"),
    "metrics": (ExportMetricsServiceResponse, "rejected_data_points", "rejectedDataPoints"),
    "logs": (ExportLogsServiceResponse, "rejected_log_records", "rejectedLogRecords"),
}


def export_response(signal: str, result: IngestResult) -> Any:
    """The protobuf Export*ServiceResponse for an accepted request."""
    message_type, field, _ = _RESPONSES[signal]
    resp = message_type()
    if result.rejected or result.message:
        setattr(resp.partial_success, field, result.rejected)
        resp.partial_success.error_message = result.message
    return resp


def export_response_json(signal: str, result: IngestResult) -> bytes:
    """The OTLP/JSON export response (int64 counts as strings, as the mapping says)."""
    _, _, json_field = _RESPONSES[signal]
    if not (result.rejected or result.message):
        return b"{}"
    return orjson.dumps({"partialSuccess": {json_field: str(result.rejected), "errorMessage": result.message}})


def status_body(code: int, message: str, *, json: bool) -> bytes:
    """A google.rpc.Status body for a failed request (protobuf or JSON)."""
    if json:
        return orjson.dumps({"code": code, "message": message})
    return bytes(RpcStatus(code=code, message=message).SerializeToString())
