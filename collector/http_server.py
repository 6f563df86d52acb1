"""OTLP/HTTP receiver: ``POST /v1/traces``, ``/v1/metrics``, ``/v1/logs``.

Moves bytes and status codes only: content type -> format, bounded body read, bounded
decompression, then ``Ingestor``; its result maps to 200 (with partial success), 400,
413, 415, 429 (with Retry-After) or 503, each with a google.rpc.Status body as the OTLP
specification asks.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from collector.decode_proto import MalformedRequest
from collector.ingest import (
    BodyTooLarge,
    Format,
    Ingestor,
    IngestResult,
    UnsupportedEncoding,
    decompress,
)
from collector.responses import export_response, export_response_json, status_body

_CONTENT_TYPES: dict[str, Format] = {
    "application/x-protobuf": "protobuf",
    "application/protobuf": "protobuf",
    "application/json": "json",
}

# google.rpc.Code numbers used in Status bodies.
_RPC = {"malformed": 3, "too_large": 3, "unsupported": 3, "queue_full": 8, "error": 13}
_HTTP = {"malformed": 400, "too_large": 413, "unsupported": 415, "queue_full": 429, "error": 503}


@dataclass(frozen=True)
class HttpLimits:
    """Request size limits in bytes, before and after decompression."""

    body_bytes_max: int = 16 * 1024 * 1024
    decompressed_bytes_max: int = 64 * 1024 * 1024
    retry_after_s: int = 1


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, bytes_max: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > bytes_max:
        raise _TooLarge(f"body of {declared} bytes is over the limit of {bytes_max}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > bytes_max:
            raise _TooLarge(f"body is over the limit of {bytes_max} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def otlp_http_app(ingestor: Ingestor, limits: HttpLimits) -> Starlette:
    """The Starlette app serving the three OTLP/HTTP export paths."""

    def failure(signal: str, result: IngestResult, json: bool) -> Response:
        headers = {"Retry-After": str(limits.retry_after_s)} if result.status == "queue_full" else None
        return Response(
            status_body(_RPC[result.status], result.message, json=json),
            status_code=_HTTP[result.status],
            media_type="application/json" if json else "application/x-protobuf",
            headers=headers,
        )

    async def handle(request: Request, signal: str) -> Response:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        fmt = _CONTENT_TYPES.get(ctype)
        json = fmt == "json"
        if fmt is None:
            return failure(
                signal,
                ingestor.refuse(
                    signal,
                    "unsupported",
                    f"content type {ctype[:60]!r} is not supported; use application/x-protobuf or application/json",
                ),
                json=False,
            )
        try:
            raw = await _read_body(request, limits.body_bytes_max)
            body = decompress(raw, request.headers.get("content-encoding", ""), limits.decompressed_bytes_max)
        except (_TooLarge, BodyTooLarge) as exc:
            return failure(signal, ingestor.refuse(signal, "too_large", str(exc)), json)
        except UnsupportedEncoding as exc:
            return failure(signal, ingestor.refuse(signal, "unsupported", str(exc)), json)
        except MalformedRequest as exc:
            return failure(signal, ingestor.refuse(signal, "malformed", str(exc)), json)
        except ClientDisconnect:
            return Response(status_code=400)
        pending = await run_in_threadpool(ingestor.submit, signal, body, fmt)
        if isinstance(pending, IngestResult):
            return failure(signal, pending, json)
        await asyncio.wrap_future(pending.future)
        result = ingestor.complete(pending)
        if result.status != "ok":
            return failure(signal, result, json)
        if json:
            return Response(export_response_json(signal, result), media_type="application/json")
        return Response(export_response(signal, result).SerializeToString(), media_type="application/x-protobuf")

    def route(signal: str) -> Route:
        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            try:
                return await handle(request, signal)
            finally:
                ingestor.metrics.requests.labels("http", signal).observe(time.perf_counter() - started)

        return Route(f"/v1/{signal}", endpoint, methods=["POST"])

    return Starlette(routes=[route("traces"), route("metrics"), route("logs")])
