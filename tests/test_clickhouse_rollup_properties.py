"""The ClickHouse span rollup's numeric core against DuckDB's, on arbitrary durations (hypothesis):
the same log buckets, counts, sums and precomputed quantiles, to the bit for the buckets and the rank."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis import rollup_all
from analysis.histogram import GAMMA, LN_GAMMA
from store.clickhouse import ClickHouse, ClickHouseTarget
from store.migrations import migrate_all
from store.rollups_clickhouse import ClickHouseRollupConfig, create_rollup_tables, spans_select

_DB = itertools.count()
MINUTE_NS = 1_772_409_600 * 10**9


@pytest.fixture(scope="module")
def ch() -> Iterator[ClickHouse]:
    conn = ClickHouse(ClickHouseTarget(url="chdb:", database=f"otel_prop_{next(_DB)}"))
    conn.create_exporter_tables()
    create_rollup_tables(conn)
    yield conn
    conn.command(f"DROP DATABASE `{conn.database}`")
    conn.close()


def _spans(durations: list[int], errors: list[bool]) -> pa.Table:
    n = len(durations)
    return pa.table({
        "trace_id": [f"{i:032x}" for i in range(n)], "span_id": [f"{i:016x}" for i in range(n)],
        "service_name": ["svc"] * n, "span_name": ["op"] * n, "span_kind": ["SERVER"] * n,
        "start_time": pa.array([MINUTE_NS + i for i in range(n)], pa.timestamp("ns")),
        "end_time": pa.array([MINUTE_NS + i + d for i, d in enumerate(durations)], pa.timestamp("ns")),
        "duration_ns": pa.array(durations, pa.int64()),
        "status_code": ["ERROR" if e else "UNSET" for e in errors],
    })  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    durations=st.lists(st.integers(min_value=0, max_value=10**11), min_size=1, max_size=120),
    error_every=st.integers(min_value=0, max_value=5),
)
def test_clickhouse_and_duckdb_roll_up_the_same(ch: ClickHouse, durations: list[int], error_every: int) -> None:
    errors = [error_every > 0 and i % error_every == 0 for i in range(len(durations))]
    spans = _spans(durations, errors)
    duck = duckdb.connect()
    migrate_all(duck)
    duck.register("batch", spans)
    duck.execute(f"INSERT INTO spans ({', '.join(spans.column_names)}) SELECT * FROM batch")
    rollup_all(duck)
    want = sorted(
        duck.execute(
            "SELECT status_class, count, error_count, duration_sum_ns, duration_min_ns, duration_max_ns, zero_count, "
            "hist_index, hist_counts, p50_ns, p90_ns, p95_ns, p99_ns FROM rollup_spans WHERE count > 0"
        ).fetchall()
    )
    ch.command(f"TRUNCATE TABLE `{ch.database}`.otel_traces")
    exporter_rows = pa.table({
        "Timestamp": spans["start_time"], "TraceId": spans["trace_id"], "SpanId": spans["span_id"],
        "ServiceName": spans["service_name"], "SpanName": spans["span_name"], "SpanKind": ["Server"] * len(durations),
        "Duration": pa.array(durations, pa.uint64()), "StatusCode": ["Error" if e else "Unset" for e in errors],
    })  # fmt: skip
    ch.insert_arrow("otel_traces", exporter_rows)
    cfg = ClickHouseRollupConfig(gamma=GAMMA, ln_gamma=LN_GAMMA)
    got = ch.query_arrow(
        f"SELECT status_class, count, error_count, duration_sum_ns, duration_min_ns, duration_max_ns, zero_count, "
        f"hist_index, hist_counts, p50_ns, p90_ns, p95_ns, p99_ns FROM ({spans_select(ch, cfg)})",
        {"lo": MINUTE_NS, "hi": MINUTE_NS + 60 * 10**9},
    ).to_pylist()
    rows = sorted(tuple(r.values()) for r in got)
    assert [r[:9] for r in rows] == [w[:9] for w in want]  # buckets, counts, sums: exact
    for r, w in zip(rows, want, strict=True):  # quantiles: the same bucket, exp() to the last bits
        assert r[9:] == pytest.approx(w[9:], rel=1e-12)
