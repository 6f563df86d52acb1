"""The writer hands JSON columns to DuckDB as Arrow JSON: stored as the same documents, JSON
typed, queryable; the list of JSON columns matches the schema's."""

from __future__ import annotations

import re
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collector.decode_proto import decode_proto
from collector.writer import JSON_COLUMNS, IngestQueue, QueueLimits, as_json
from store.connection import Store, fetch_arrow
from store.schema_raw import MIGRATIONS


def test_json_columns_match_the_schema() -> None:
    declared = set(re.findall(r"^\s*(\w+) JSON,?$", "\n".join(MIGRATIONS), flags=re.MULTILINE))
    assert declared == JSON_COLUMNS


def test_rows_through_the_writer_keep_their_json(tmp_path: Path) -> None:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "svc"
    ss = rs.scope_spans.add()
    for i in range(3):
        span = ss.spans.add(trace_id=b"\x01" * 16, span_id=bytes([i + 1]) * 8, name=f"op{i}")
        span.start_time_unix_nano, span.end_time_unix_nano = 10, 20
        span.attributes.add(key="n").value.int_value = i
        span.attributes.add(key="s").value.string_value = 'q"\n\u00e9'
        span.events.add(name="e", time_unix_nano=15).attributes.add(key="x").value.double_value = 0.5
    decoded = decode_proto("traces", req.SerializeToString())
    assert (
        as_json(decoded.tables["spans"]).schema.field("attributes").type
        != decoded.tables["spans"].schema.field("attributes").type
    )
    store = Store(tmp_path / "s.duckdb")
    queue = IngestQueue(store, QueueLimits())
    future = queue.submit(decoded.tables)
    assert future is not None and future.result(timeout=60) == 3
    queue.close()
    rows = fetch_arrow(
        store.cursor(),
        "SELECT typeof(attributes) AS t, json_extract(attributes, '$.n')::INT AS n, "
        "json_extract_string(attributes, '$.s') AS s, json_extract(events, '$[0].attributes.x')::DOUBLE AS x, "
        "attributes::VARCHAR AS text FROM spans ORDER BY n",
    ).to_pylist()
    store.close()
    want = decoded.tables["spans"].column("attributes").to_pylist()
    assert [r["text"] for r in rows] == want
    assert [(r["t"], r["n"], r["s"], r["x"]) for r in rows] == [("JSON", i, 'q"\n\u00e9', 0.5) for i in range(3)]
