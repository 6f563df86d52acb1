"""Backpressure (a tiny queue makes exporters retry; every span lands exactly once) and
durability (kill -9 mid-stream loses nothing that was acknowledged)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otlp_json import json_to_proto_bytes
from prometheus_client.parser import text_string_to_metric_families
from serverproc import start_server

CLIENTS = 6
BATCHES_PER_CLIENT = 8
SPANS_PER_BATCH = 150


def _make_spans(count: int) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "pressure"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bp")
    for i in range(count):
        with tracer.start_as_current_span(f"op-{i % 7}", attributes={"i": i}):
            pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def _refused_queue_full(api_url: str) -> float:
    text = requests.get(f"{api_url}/metrics", timeout=5).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "driftscope_ingest_refused_requests_total"
                and sample.labels.get("reason") == "queue_full"
            ):
                total += sample.value
    return total


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_tiny_queue_makes_exporters_retry_and_every_span_lands_once(tmp_path: Path, transport: str) -> None:
    srv = start_server(
        tmp_path / "bp.duckdb",
        ("DRIFTSCOPE_INGEST__QUEUE_ROWS_MAX", "10"),
        ("DRIFTSCOPE_INGEST__BATCH_ROWS_MAX", "10"),
    )
    try:
        spans = _make_spans(CLIENTS * BATCHES_PER_CLIENT * SPANS_PER_BATCH)

        def client(index: int) -> list[SpanExportResult]:
            if transport == "http":
                exporter: Any = HttpSpanExporter(endpoint=f"{srv.http_url}/v1/traces", timeout=60)
            else:
                exporter = GrpcSpanExporter(endpoint=f"127.0.0.1:{srv.otlp_grpc}", insecure=True, timeout=60)
            mine = spans[index::CLIENTS]
            results = [exporter.export(mine[b : b + SPANS_PER_BATCH]) for b in range(0, len(mine), SPANS_PER_BATCH)]
            exporter.shutdown()
            return results

        with ThreadPoolExecutor(CLIENTS) as pool:
            results = [r for rs in pool.map(client, range(CLIENTS)) for r in rs]
        assert results == [SpanExportResult.SUCCESS] * (CLIENTS * BATCHES_PER_CLIENT)
        assert _refused_queue_full(srv.api_url) > 0, "the tiny queue never refused: the test exercised nothing"
        assert srv.stop() == 0
        total, distinct = srv.query("SELECT count(*), count(DISTINCT span_id) FROM spans")[0]
        assert total == distinct == len(spans)
    finally:
        if srv.proc.poll() is None:
            srv.kill()


def _batch(batch_no: int, size: int) -> bytes:
    spans = [
        {
            "traceId": f"{batch_no + 1:032x}",
            "spanId": f"{batch_no * size + i + 1:016x}",
            "name": "stream",
            "startTimeUnixNano": "1700000000000000000",
            "endTimeUnixNano": "1700000000001000000",
        }
        for i in range(size)
    ]
    doc = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {}, "spans": spans}]}]}
    return json_to_proto_bytes("traces", doc)


def test_kill_9_mid_stream_keeps_every_acknowledged_span(tmp_path: Path) -> None:
    store = tmp_path / "durable.duckdb"
    srv = start_server(store)
    size = 200
    bodies = [_batch(b, size) for b in range(400)]
    acked: list[int] = []
    enough = threading.Event()

    def stream() -> None:
        session = requests.Session()
        for b, body in enumerate(bodies):
            try:
                resp = session.post(
                    f"{srv.http_url}/v1/traces",
                    data=body,
                    headers={"Content-Type": "application/x-protobuf"},
                    timeout=10,
                )
            except requests.RequestException:
                break
            if resp.status_code == 200:
                acked.append(b)
            if len(acked) >= 30:
                enough.set()
        enough.set()

    client = threading.Thread(target=stream)
    client.start()
    assert enough.wait(120)
    srv.kill()  # SIGKILL while the client is still streaming
    client.join(60)
    assert 30 <= len(acked) < len(bodies), "the kill must land mid-stream"

    restarted = start_server(store)  # a restart replays DuckDB's write-ahead log
    assert restarted.stop() == 0
    stored = {int(r[0], 16) for r in restarted.query("SELECT DISTINCT trace_id FROM spans")}
    missing = [b for b in acked if b + 1 not in stored]
    assert missing == []
    complete = restarted.query(
        "SELECT count(*) FROM (SELECT trace_id, count(*) AS n FROM spans GROUP BY trace_id) WHERE n != ?", [size]
    )
    assert complete == [(0,)]  # a request is committed whole or not at all
