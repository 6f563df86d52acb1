"""Vectorised lower-case hex of 64- and 128-bit ids (numpy -> Arrow strings)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_LUT = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2")


def _hex_bytes(u8: np.ndarray, width: int) -> pa.Array:
    pairs = _LUT[u8]  # (n, bytes) of 2-char hex
    fixed = np.ascontiguousarray(pairs).view(f"S{width}").reshape(-1)
    return pa.array(fixed, type=pa.binary(width)).cast(pa.string())


def hex64(ids: np.ndarray) -> pa.Array:
    """16-char hex of uint64 span ids, as OTLP spells them (big-endian bytes)."""
    u8 = ids.astype(">u8").view(np.uint8).reshape(-1, 8)
    return _hex_bytes(u8, 16)


def hex128(ids: np.ndarray) -> pa.Array:
    """32-char hex of (n, 2) uint64 trace ids (high word first)."""
    u8 = np.ascontiguousarray(ids.astype(">u8")).view(np.uint8).reshape(-1, 16)
    return _hex_bytes(u8, 32)
