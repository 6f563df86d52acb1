"""The compiled OTLP protobuf decoder (``native/``, Rust), loaded when it has been built.

``scripts/setup`` builds ``native/`` with cargo and copies the library next to this file as
``_otlp_native.so``. It decodes an export request body straight into Arrow record batches
(handed over through the Arrow C data interface, no copy) with the same rows, rejections
and reasons as ``collector.decode_proto.decode_proto_python``, which stays the reference.

Whatever it does not claim to reproduce exactly (a body that does not parse whole, invalid
UTF-8, a repeated singular message, an AnyValue nested deeper than 64 levels, a non-string
``service.name`` of float/list/map type, ...) it hands back, and the caller decodes that
request with the Python decoder instead, so the answer is the same either way.

``DRIFTSCOPE_DECODER`` chooses: ``auto`` (default: compiled when built), ``python``, or
``native`` (fail at import when the library is missing).
"""

from __future__ import annotations

import ctypes
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from collector.columns import SCHEMAS, Decoded

log = logging.getLogger(__name__)

ABI_VERSION = 2
LIBRARY = Path(__file__).with_name("_otlp_native.so")
TABLES = ("spans", "logs", "metric_points", "histogram_points", "exp_histogram_points", "summary_points")
"""Table slots of the library's result, in its order."""
_SIGNALS = {"traces": 0, "metrics": 1, "logs": 2}
_OK, _FALLBACK, _TOO_LARGE, _PANIC = 0, 1, 2, 3
OUTPUT_BYTES_MAX = 1 << 30
"""The library refuses a request whose decoded rows would exceed this (see ``TooLarge``)."""


class TooLarge(ValueError):
    """The decoded rows of one request would exceed ``OUTPUT_BYTES_MAX`` bytes.

    Every record repeats its resource and scope columns, so a large resource over many
    small records multiplies; the Python decoder has no such bound (it runs out of memory).
    """


class _Result(ctypes.Structure):
    _fields_ = (
        ("status", ctypes.c_int32),
        ("rejected", ctypes.c_uint64),
        ("tables", ctypes.c_void_p * len(TABLES)),
        ("errors", ctypes.c_void_p),
        ("errors_len", ctypes.c_size_t),
    )


def _reasons(blob: bytes) -> list[str]:
    """Rejection messages from the library's encoding, formatted as the Python decoder does."""
    out: list[str] = []
    pos = 0
    while pos < len(blob):
        kind = blob[pos]
        pos += 1
        parts: list[str] = []
        for _ in range(3):
            n = int.from_bytes(blob[pos : pos + 4], "little")
            parts.append(blob[pos + 4 : pos + 4 + n].decode())
            pos += 4 + n
        span_id, name, error = parts
        if kind == 0:
            out.append(f"span {span_id} {name[:80]!r}: {error}")
        elif kind == 1:
            out.append(f"metric {name[:80]!r} point: {error}")
        elif kind == 2:
            out.append(f"metric {name!r}: {error}")
        else:
            out.append(f"log record: {error}")
    return out


@dataclass(frozen=True)
class NativeDecoder:
    """The loaded library; ``decode`` returns None for a request it leaves to Python."""

    lib: ctypes.CDLL
    path: Path

    def decode(self, signal: str, body: bytes, output_bytes_max: int = OUTPUT_BYTES_MAX) -> Decoded | None:
        """Rows and rejections of one protobuf export request, or None (decode it in Python).

        Raises ``TooLarge`` when the rows would take more than ``output_bytes_max`` bytes.
        """
        if not isinstance(body, bytes):
            body = bytes(body)
        res = self.lib.ds_decode(_SIGNALS[signal], body, len(body), min(output_bytes_max, OUTPUT_BYTES_MAX))
        try:
            r = res.contents
            if r.status == _FALLBACK:
                return None
            if r.status == _TOO_LARGE:
                raise TooLarge(
                    f"request decodes to more than {min(output_bytes_max, OUTPUT_BYTES_MAX) >> 20} MiB of rows "
                    "(every record repeats its resource and scope attributes)"
                )
            if r.status != _OK:
                log.error("compiled OTLP decoder failed on a %s request; decoding it in Python", signal)
                return None
            out = Decoded(signal)
            for name, ptr in zip(TABLES, r.tables, strict=True):
                if ptr:
                    batch = pa.RecordBatch._import_from_c(ptr, SCHEMAS[name])
                    out.tables[name] = pa.Table.from_batches([batch])
            out.accepted = out.rows
            out.rejected = int(r.rejected)
            if r.errors_len:
                out.errors = _reasons(ctypes.string_at(r.errors, r.errors_len))
            return out
        finally:
            self.lib.ds_free(res)


def _open(path: Path) -> NativeDecoder:
    lib = ctypes.CDLL(str(path))
    lib.ds_abi_version.restype = ctypes.c_uint32
    lib.ds_abi_version.argtypes = ()
    version = lib.ds_abi_version()
    if version != ABI_VERSION:
        raise OSError(f"{path.name} speaks ABI {version}, this collector {ABI_VERSION}; re-run scripts/setup")
    lib.ds_decode.restype = ctypes.POINTER(_Result)
    lib.ds_decode.argtypes = (ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t)
    lib.ds_free.restype = None
    lib.ds_free.argtypes = (ctypes.POINTER(_Result),)
    return NativeDecoder(lib, path)


@dataclass(frozen=True)
class Loaded:
    """The compiled decoder (or None) and one line saying which decoder is in use and why."""

    decoder: NativeDecoder | None
    notice: str


def load(choice: str | None = None, path: Path = LIBRARY) -> Loaded:
    """Load the compiled decoder as ``DRIFTSCOPE_DECODER`` (or ``choice``) asks."""
    choice = (choice if choice is not None else os.environ.get("DRIFTSCOPE_DECODER", "auto")).strip().lower()
    if choice not in ("auto", "python", "native"):
        raise ValueError(f"DRIFTSCOPE_DECODER={choice!r}: expected auto, python or native")
    if choice == "python":
        return Loaded(None, "OTLP protobuf decoder: Python (DRIFTSCOPE_DECODER=python)")
    try:
        decoder = _open(path)
    except OSError as exc:
        if choice == "native":
            raise
        reason = "not built" if not path.exists() else str(exc)
        return Loaded(
            None,
            f"OTLP protobuf decoder: Python (compiled decoder {reason}; install Rust and re-run scripts/setup)",
        )
    return Loaded(decoder, f"OTLP protobuf decoder: compiled ({path.name})")
