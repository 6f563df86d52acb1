"""Bad input gets a clear error naming what is wrong; nothing accepted is lost; the server
keeps serving."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import orjson
import pytest
import requests
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from otlp_json import TRACE_EXAMPLE, json_to_proto_bytes
from serverproc import ServerProc, start_server

LIMIT_BYTES = 256 * 1024


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    store = tmp_path_factory.mktemp("bad") / "store.duckdb"
    srv = start_server(
        store,
        ("DRIFTSCOPE_INGEST__BODY_BYTES_MAX", str(LIMIT_BYTES)),
        ("DRIFTSCOPE_INGEST__DECOMPRESSED_BYTES_MAX", str(4 * LIMIT_BYTES)),
    )
    yield srv
    srv.kill()


def _span(span_id: str, name: str = "op", **overrides: Any) -> dict[str, Any]:
    span = {
        "traceId": "0af7651916cd43dd8448eb211c80319c",
        "spanId": span_id,
        "name": name,
        "kind": 2,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000250000000",
        "attributes": [{"key": "k", "value": {"stringValue": "v"}}],
    }
    span.update(overrides)
    return span


def _doc(*spans: dict[str, Any]) -> dict[str, Any]:
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "hostile"}}]}
    return {"resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": {"name": "s"}, "spans": list(spans)}]}]}


def _post(srv: ServerProc, body: bytes, ctype: str = "application/x-protobuf", **headers: str) -> requests.Response:
    return requests.post(f"{srv.http_url}/v1/traces", data=body, headers={"Content-Type": ctype, **headers}, timeout=30)


def _status_message(resp: requests.Response) -> str:
    if resp.headers.get("content-type", "").startswith("application/json"):
        return str(resp.json()["message"])
    status = Status()
    status.ParseFromString(resp.content)
    return status.message


def _rss_peak_kib(srv: ServerProc) -> int:
    for line in Path(f"/proc/{srv.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _assert_still_serving(srv: ServerProc) -> None:
    good = _post(srv, json_to_proto_bytes("traces", TRACE_EXAMPLE))
    assert good.status_code == 200
    assert requests.get(f"{srv.api_url}/healthz", timeout=5).status_code == 200


@pytest.mark.parametrize(
    ("body", "ctype", "expected"),
    [
        (b"\xff\xff\xff\xff garbage", "application/x-protobuf", "not a valid ExportTraceServiceRequest protobuf"),
        (b'{"resourceSpans": [', "application/json", "not valid JSON"),
        (b'{"resourceSpans": "nope"}', "application/json", "'resourceSpans' must be a JSON array"),
        (b"[1, 2]", "application/json", "must be a JSON object"),
        (b'{"resourceSpans": [{"resource": {"attributes": 7}, "scopeSpans": [{}]}]}', "application/json", "attributes"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": []}]}]}\xff', "application/json", "not valid JSON"),
    ],
)
def test_malformed_body_is_400_naming_the_problem(
    small_server: ServerProc, body: bytes, ctype: str, expected: str
) -> None:
    resp = _post(small_server, body, ctype)
    assert resp.status_code == 400, resp.text
    assert expected in _status_message(resp)
    _assert_still_serving(small_server)


def test_invalid_utf8_in_protobuf_rejects_only_that_record(small_server: ServerProc) -> None:
    names = ["MARKER", "fine-1", "fine-2"]
    good = json_to_proto_bytes("traces", _doc(*(_span(f"00f067aa0ba9{i:04x}", name=n) for i, n in enumerate(names))))
    resp = _post(small_server, good.replace(b"MARKER", b"MARK\xff\xfe"))
    assert resp.status_code == 200
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(resp.content)
    assert answer.partial_success.rejected_spans == 1
    assert "invalid UTF-8" in answer.partial_success.error_message
    bad_resource = good.replace(b"hostile", b"hos\xffile")  # same length keeps the wire framing
    resp = _post(small_server, bad_resource)
    answer.ParseFromString(resp.content)
    assert (resp.status_code, answer.partial_success.rejected_spans) == (200, 3)


def test_wrong_content_type_and_encoding_are_415(small_server: ServerProc) -> None:
    resp = _post(small_server, b"hello", "text/plain")
    assert resp.status_code == 415
    assert "text/plain" in _status_message(resp)
    resp = _post(small_server, b"hello", "application/x-protobuf", **{"Content-Encoding": "br"})
    assert resp.status_code == 415
    assert "'br'" in _status_message(resp)
    _assert_still_serving(small_server)


def test_oversized_body_is_413(small_server: ServerProc) -> None:
    resp = _post(small_server, b"\x00" * (LIMIT_BYTES + 1))
    assert resp.status_code == 413
    assert "over the limit" in _status_message(resp)
    _assert_still_serving(small_server)


def _gzip_bomb(decompressed_bytes: int) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\x00" * (1 << 20)
    parts = [comp.compress(chunk) for _ in range(decompressed_bytes >> 20)]
    return b"".join(parts) + comp.flush()


def test_gzip_bomb_is_413_and_costs_no_memory(small_server: ServerProc) -> None:
    bomb = _gzip_bomb(2 << 30)  # 2 GiB of zeros in about 2 MiB... too big for the body limit, so:
    small_bomb = _gzip_bomb(256 << 20)  # 256 MiB of zeros in ~250 KiB, under the 256 KiB body limit
    assert len(small_bomb) < LIMIT_BYTES < len(bomb)
    before = _rss_peak_kib(small_server)
    resp = _post(small_server, small_bomb, **{"Content-Encoding": "gzip"})
    assert resp.status_code == 413
    assert "decompressed body is over the limit" in _status_message(resp)
    assert _rss_peak_kib(small_server) - before < 64 * 1024  # far below the 256 MiB it inflates to
    assert _post(small_server, bomb, **{"Content-Encoding": "gzip"}).status_code == 413
    truncated = gzip.compress(json_to_proto_bytes("traces", TRACE_EXAMPLE))[:-12]
    resp = _post(small_server, truncated, **{"Content-Encoding": "gzip"})
    assert resp.status_code == 400
    assert "truncated" in _status_message(resp) or "gzip" in _status_message(resp)
    _assert_still_serving(small_server)


def test_bad_records_are_rejected_alone_with_partial_success(small_server: ServerProc) -> None:
    hostile_name = "'; DROP TABLE spans; -- \x00 \u202e\U0001f4a5 " + "é" * 5000
    doc = _doc(
        _span("00f067aa0ba902b1", name="good-1"),
        _span("00f067aa0ba902", name="short-id"),
        _span("00f067aa0ba902b2", name="negative-duration", endTimeUnixNano="1699999999000000000"),
        _span("zzzzzzzzzzzzzzzz", name="not-hex"),
        _span("0000000000000000", name="zero-id"),
        _span("00f067aa0ba902b3", name=12345),
        _span("00f067aa0ba902b4", name="huge-time", startTimeUnixNano="99999999999999999999"),
        _span(
            "00f067aa0ba902b5",
            name=hostile_name,
            attributes=[{"key": hostile_name, "value": {"stringValue": hostile_name}}],
        ),
    )
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"].append(1)
    for body, ctype in ((orjson.dumps(doc), "application/json"),):
        resp = _post(small_server, body, ctype)
        assert resp.status_code == 200
        partial = resp.json()["partialSuccess"]
        assert partial["rejectedSpans"] == "7"
        message = partial["errorMessage"]
        assert "spanId has 7 bytes, expected 8" in message
        assert "before startTimeUnixNano" in message
        assert "not hex" in message
        assert "all zeros" in message
        assert "name must be a string" in message
        assert "(and 2 more)" in message  # the first five reasons, then a count
    # The protobuf path reports the same per-record rejections.
    proto_doc = _doc(
        _span("00f067aa0ba902c1", name="good-2"),
        _span("00f067aa0ba902c2", name="negative", endTimeUnixNano="1699999999000000000"),
    )
    resp = _post(small_server, json_to_proto_bytes("traces", proto_doc))
    assert resp.status_code == 200
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(resp.content)
    assert answer.partial_success.rejected_spans == 1
    assert "before start_time_unix_nano" in answer.partial_success.error_message
    _assert_still_serving(small_server)
    small_server.stop()
    rows = small_server.query(
        "SELECT span_name, attributes FROM spans WHERE service_name = 'hostile' ORDER BY span_name"
    )
    assert [r[0] for r in rows] == [
        "'; DROP TABLE spans; -- \x00 \u202e\U0001f4a5 " + "é" * 5000,
        "fine-1",
        "fine-2",
        "good-1",
        "good-2",
    ]
    assert orjson.loads(rows[0][1]) == {hostile_name: hostile_name}


def test_grpc_bad_input(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "g.duckdb", ("DRIFTSCOPE_INGEST__DECOMPRESSED_BYTES_MAX", str(LIMIT_BYTES)))
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{srv.otlp_grpc}")
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        with pytest.raises(grpc.RpcError) as err:
            export(b"\xff\xff\xff\xff garbage", timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a valid ExportTraceServiceRequest" in str(err.value.details())
        with pytest.raises(grpc.RpcError) as err:
            export(b"\x0a" + b"\xff" * (LIMIT_BYTES + 10), timeout=10)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        ok = export(json_to_proto_bytes("traces", TRACE_EXAMPLE), timeout=10)
        assert ok == b""  # an empty ExportTraceServiceResponse: no partial success
        channel.close()
        assert srv.stop() == 0
        assert srv.query("SELECT count(*) FROM spans") == [(1,)]
    finally:
        if srv.proc.poll() is None:
            srv.kill()
