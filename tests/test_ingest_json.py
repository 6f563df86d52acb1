"""OTLP/JSON lands exactly as the same request in protobuf does."""

from __future__ import annotations

import gzip

import orjson
import pytest
import requests
from otlp_json import EXAMPLES, json_to_proto_bytes
from serverproc import ServerProc

from collector.decode_json import decode_json
from collector.decode_proto import decode_proto
from store.schema_raw import RAW_TABLES


@pytest.mark.parametrize("signal", ["traces", "metrics", "logs"])
def test_json_decoder_matches_protobuf_decoder(signal: str) -> None:
    doc = EXAMPLES[signal]
    from_json = decode_json(signal, orjson.dumps(doc))
    from_proto = decode_proto(signal, json_to_proto_bytes(signal, doc))
    assert from_json.rejected == from_proto.rejected == 0
    assert from_json.tables.keys() == from_proto.tables.keys()
    for name, table in from_json.tables.items():
        assert table.equals(from_proto.tables[name]), name


def test_json_and_protobuf_over_http_land_identically(server: ServerProc) -> None:
    session = requests.Session()
    for signal, doc in EXAMPLES.items():
        url = f"{server.http_url}/v1/{signal}"
        as_json = session.post(url, data=orjson.dumps(doc), headers={"Content-Type": "application/json"}, timeout=10)
        assert as_json.status_code == 200, as_json.text
        assert as_json.headers["content-type"].startswith("application/json")
        assert as_json.json() == {}
        as_proto = session.post(
            url,
            data=gzip.compress(json_to_proto_bytes(signal, doc)),
            headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
            timeout=10,
        )
        assert as_proto.status_code == 200, as_proto.text
    assert server.stop() == 0
    for table in RAW_TABLES:
        total, odd = server.query(
            f"SELECT count(*), count(*) FILTER (WHERE n != 2) FROM (SELECT *, count(*) AS n FROM {table} GROUP BY ALL)"
        )[0]
        assert total > 0 and odd == 0, table
    span = server.query(
        "SELECT trace_id, span_id, parent_span_id, span_kind, status_code, status_message, http_route, "
        "http_status_code, duration_ns, attributes->>'bytes', json_array_length(events), links->0->>'span_id' "
        "FROM spans LIMIT 1"
    )[0]
    assert span == (
        "5b8efff798038103d269b633813fc60c",
        "eee19b7ec3c1b174",
        "eee19b7ec3c1b173",
        "SERVER",
        "ERROR",
        "boom",
        "/users/{id}",
        500,
        1_000_000_000,
        "AAEC",
        1,
        "eee19b7ec3c1b175",
    )
    assert server.query("SELECT value_int, kind FROM metric_points WHERE metric_name = 'my.int.gauge' LIMIT 1") == [
        (9007199254740993, "gauge")
    ]
    assert server.query(
        "SELECT scale, zero_count, positive_offset, positive_counts, negative_offset, negative_counts, temporality "
        "FROM exp_histogram_points LIMIT 1"
    ) == [(3, 1, -2, [1, 0, 2], 1, [1], "delta")]
    assert server.query("SELECT quantiles, quantile_values FROM summary_points LIMIT 1") == [([0.5, 0.99], [5.0, 9.9])]
    assert server.query("SELECT body, body_type FROM logs ORDER BY time LIMIT 2") == [
        ("Example log record", "string"),
        ("Example log record", "string"),
    ]
    assert server.query("SELECT DISTINCT body, body_type FROM logs WHERE body_type = 'kvlist'") == [
        ('{"event":"login"}', "kvlist")
    ]
