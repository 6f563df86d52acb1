"""The transport-independent ingest step: bounded decompression, decode, queue, outcome.

HTTP and gRPC receivers only move bytes and map an ``IngestResult`` to their status
codes; everything that decides whether a request is accepted lives here, once.
"""

from __future__ import annotations

import logging
import zlib
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Literal

from collector.columns import Decoded
from collector.decode_json import decode_json
from collector.decode_proto import DECODER, MalformedRequest, decode_proto
from collector.metrics import IngestMetrics
from collector.writer import IngestQueue

log = logging.getLogger(__name__)

Status = Literal["ok", "malformed", "queue_full", "too_large", "unsupported", "error"]
Format = Literal["protobuf", "json"]


class BodyTooLarge(ValueError):
    """A body, compressed or decompressed, is over the configured limit."""


class UnsupportedEncoding(ValueError):
    """A Content-Encoding / grpc-encoding this receiver does not speak."""


@dataclass(frozen=True)
class IngestResult:
    """What happened to one export request, in transport-neutral terms."""

    status: Status
    accepted: int = 0
    rejected: int = 0
    message: str = ""


def decompress(body: bytes, encoding: str, bytes_max: int) -> bytes:
    """The decompressed body, never holding more than ``bytes_max + 1`` bytes of output.

    A gzip bomb is stopped after ``bytes_max`` bytes of output, whatever its ratio.
    """
    encoding = encoding.strip().lower()
    if encoding in ("", "identity", "none"):
        if len(body) > bytes_max:
            raise BodyTooLarge(f"body of {len(body)} bytes is over the limit of {bytes_max}")
        return body
    if encoding == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        wbits = zlib.MAX_WBITS
    else:
        raise UnsupportedEncoding(f"content encoding {encoding[:40]!r} is not supported (gzip, deflate, identity)")
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, bytes_max + 1)
    except zlib.error as exc:
        raise MalformedRequest(f"body is not valid {encoding} data: {exc}") from None
    if len(out) > bytes_max or inflater.unconsumed_tail:
        raise BodyTooLarge(f"decompressed body is over the limit of {bytes_max} bytes")
    if not inflater.eof:
        raise MalformedRequest(f"{encoding} body is truncated")
    return out


@dataclass
class Pending:
    """A request decoded and queued; ``future`` resolves when its rows are committed."""

    signal: str
    decoded: Decoded
    future: Future[int]


class Ingestor:
    """Decodes export requests and hands their rows to the writer queue."""

    def __init__(self, queue: IngestQueue, metrics: IngestMetrics) -> None:
        self.queue = queue
        self.metrics = metrics
        log.info("%s", DECODER.notice)

    def refuse(self, signal: str, status: Status, message: str) -> IngestResult:
        """Count and describe a request refused as a whole."""
        self.metrics.refused.labels(signal, status).inc()
        return IngestResult(status, message=message)

    def submit(self, signal: str, body: bytes, fmt: Format) -> Pending | IngestResult:
        """Decode ``body`` and queue its rows; an IngestResult when refused outright."""
        with self.queue.decoding():
            return self._submit(signal, body, fmt)

    def _submit(self, signal: str, body: bytes, fmt: Format) -> Pending | IngestResult:
        try:
            decoded = decode_proto(signal, body) if fmt == "protobuf" else decode_json(signal, body)
        except MalformedRequest as exc:
            return self.refuse(signal, "malformed", str(exc))
        except Exception as exc:  # a decoder bug must cost one request, not the server
            log.exception("decoding a %s %s request failed", fmt, signal)
            return self.refuse(signal, "malformed", f"request could not be decoded: {type(exc).__name__}: {exc}")
        self.metrics.received.labels(signal).inc(decoded.accepted + decoded.rejected)
        if decoded.rejected:
            self.metrics.rejected.labels(signal).inc(decoded.rejected)
        future = self.queue.submit(decoded.tables)
        self._update_depth()
        if future is None:
            return self.refuse(signal, "queue_full", "ingest queue is full; retry later")
        return Pending(signal, decoded, future)

    def complete(self, pending: Pending) -> IngestResult:
        """The outcome of a queued request whose future has resolved."""
        self._update_depth()
        exc = pending.future.exception()
        if exc is not None:
            return self.refuse(pending.signal, "error", f"store write failed: {exc}")
        decoded = pending.decoded
        self.metrics.accepted.labels(pending.signal).inc(decoded.accepted)
        return IngestResult("ok", decoded.accepted, decoded.rejected, decoded.error_message())

    def ingest(self, signal: str, body: bytes, fmt: Format, timeout_s: float | None = None) -> IngestResult:
        """Blocking form of submit + wait + complete (for gRPC handlers and file import)."""
        pending = self.submit(signal, body, fmt)
        if isinstance(pending, IngestResult):
            return pending
        pending.future.exception(timeout_s)
        return self.complete(pending)

    def _update_depth(self) -> None:
        self.metrics.queue_rows.set(self.queue.depth_rows)
        self.metrics.queue_bytes.set(self.queue.depth_bytes)
