"""OTLP/gRPC receiver: TraceService, MetricsService and LogsService ``Export``.

Requests arrive as raw bytes (identity deserializer) so that malformed protobuf is
answered with INVALID_ARGUMENT naming the failure, through the same ``Ingestor`` as
HTTP. A full queue answers RESOURCE_EXHAUSTED with a ``RetryInfo`` trailer, which the
OpenTelemetry exporters honour as their backoff. gzip is handled by gRPC itself; the
receive limit applies to the decompressed message.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent import futures
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo

from collector.ingest import Ingestor
from collector.responses import export_response

_SERVICES = {
    "traces": "opentelemetry.proto.collector.trace.v1.TraceService",
    "metrics": "opentelemetry.proto.collector.metrics.v1.MetricsService",
    "logs": "opentelemetry.proto.collector.logs.v1.LogsService",
}

_CODES = {
    "malformed": grpc.StatusCode.INVALID_ARGUMENT,
    "too_large": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "unsupported": grpc.StatusCode.INVALID_ARGUMENT,
    "queue_full": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "error": grpc.StatusCode.UNAVAILABLE,
}


def _identity(raw: bytes) -> bytes:
    return raw


def _export_handler(ingestor: Ingestor, signal: str, retry_after_s: int) -> grpc.RpcMethodHandler[bytes, bytes]:
    retry_info = RetryInfo(retry_delay=Duration(seconds=retry_after_s)).SerializeToString()

    def export(body: bytes, context: grpc.ServicerContext) -> bytes:
        started = time.perf_counter()
        try:
            result = ingestor.ingest(signal, body, "protobuf")
            if result.status == "ok":
                return bytes(export_response(signal, result).SerializeToString())
            if result.status == "queue_full":
                context.set_trailing_metadata((("google.rpc.retryinfo-bin", retry_info),))
            context.abort(_CODES[result.status], result.message)
        finally:
            ingestor.metrics.requests.labels("grpc", signal).observe(time.perf_counter() - started)

    return grpc.unary_unary_rpc_method_handler(export, request_deserializer=_identity, response_serializer=_identity)


def start_grpc_server(
    ingestor: Ingestor,
    address: str,
    *,
    message_bytes_max: int,
    retry_after_s: int = 1,
    concurrency_max: int = 64,
    workers: int = 8,
    interceptors: Sequence[grpc.ServerInterceptor] = (),  # type: ignore[type-arg]
) -> tuple[grpc.Server, int]:
    """Start an OTLP/gRPC server on ``address`` ("host:port"); return it and its bound port.

    ``interceptors`` run before every call (the service passes its ingest authentication).
    """
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", message_bytes_max),
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="otlp-grpc"),
        options=options,
        interceptors=list(interceptors),
    )
    handlers = [
        grpc.method_handlers_generic_handler(service, {"Export": _export_handler(ingestor, signal, retry_after_s)})
        for signal, service in _SERVICES.items()
    ]
    server.add_generic_rpc_handlers(handlers)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen for OTLP/gRPC on {address}")
    server.start()
    return server, port
