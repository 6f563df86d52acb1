"""Salvage the parseable records of a protobuf export request that fails to parse whole.

protobuf refuses a whole message when any string in it is not valid UTF-8, so one bad
attribute would cost every span beside it. The three OTLP export requests share one
shape: ``request{1: resource_X{1: resource, 2: scope_X{1: scope, 2: record, 3: url},
3: url}}``. This module walks that shape on the wire, parses each record (span, metric,
log record) inside a minimal request of its own, and reports the ones that still fail.
It only runs after a whole-message parse failed, so its cost never touches the fast path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from google.protobuf.message import DecodeError, Message


class WireError(ValueError):
    """The bytes are not protobuf wire format at all."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise WireError("truncated or oversized varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def fields(buf: bytes) -> Iterator[tuple[int, bytes, bytes]]:
    """(field number, raw field bytes including its tag, payload of a length-delimited field)."""
    pos = 0
    while pos < len(buf):
        start = pos
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise WireError("field number 0")
        payload = b""
        if wire == 0:
            _, pos = _varint(buf, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _varint(buf, pos)
            payload = buf[pos : pos + length]
            pos += length
        else:
            raise WireError(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise WireError("field runs past the end of the message")
        yield number, buf[start:pos], payload


def _wrap(number: int, payload: bytes) -> bytes:
    """A length-delimited field ``number`` holding ``payload``."""
    return _encode_varint(number << 3 | 2) + _encode_varint(len(payload)) + payload


@dataclass
class Salvaged:
    """A request rebuilt from the parseable records only, and how many could not be parsed."""

    body: bytes
    unparseable: int


def salvage(body: bytes, new_request: Callable[[], Message]) -> Salvaged:
    """Rebuild a failing export request without the records that do not parse.

    Each record is test-parsed inside a minimal request carrying its resource and scope;
    the good ones are re-assembled per scope. Raises WireError when the body is not even
    protobuf wire format.
    """
    probe = new_request()

    def parses(raw: bytes) -> bool:
        try:
            probe.ParseFromString(raw)
        except DecodeError:
            return False
        return True

    out: list[bytes] = []
    bad = 0
    for number, _, resource_x in fields(body):
        if number != 1:
            continue
        resource_head = b"".join(raw for n, raw, _ in fields(resource_x) if n != 2)
        scopes: list[bytes] = []
        for scope_number, _, scope_x in fields(resource_x):
            if scope_number != 2:
                continue
            scope_head = b"".join(raw for n, raw, _ in fields(scope_x) if n != 2)
            good: list[bytes] = []
            for record_number, record_raw, _ in fields(scope_x):
                if record_number != 2:
                    continue
                if parses(_wrap(1, resource_head + _wrap(2, scope_head + record_raw))):
                    good.append(record_raw)
                else:
                    bad += 1
            if good:
                scopes.append(_wrap(2, scope_head + b"".join(good)))
        if scopes:
            out.append(_wrap(1, resource_head + b"".join(scopes)))
    return Salvaged(b"".join(out), bad)
