"""Explicit-bucket histogram rollups sum every point of a (minute, metric, service, attributes, bounds) key
bucket by bucket: several instances of a service add up, other bounds or attributes stay apart."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.metric_rollup import rollup_histograms
from store.migrations import migrate_all

T0 = datetime(2026, 3, 2)
BOUNDS = ([1.0, 2.0, 4.0], [0.5, 5.0])

point = st.tuples(
    st.integers(0, 2),  # minute
    st.sampled_from(["i-1", "i-2", "i-3"]),  # instance (resource): instances of one key add up
    st.sampled_from(["/a", "/b"]),  # route attribute: stays apart
    st.integers(0, 1),  # which bounds: stays apart
    st.integers(0, 2),  # second within the minute (several exports a minute add up too)
    st.lists(st.integers(0, 50), min_size=4, max_size=4),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(point, min_size=1, max_size=30))
def test_histogram_rollup_sums_each_key_bucket_by_bucket(points: list[tuple]) -> None:  # type: ignore[type-arg]
    con = duckdb.connect()
    migrate_all(con)
    expected: dict[tuple[int, str, int], np.ndarray] = {}
    for minute, instance, route, b, second, raw in points:
        counts = raw[: len(BOUNDS[b]) + 1]
        con.execute(
            "INSERT INTO histogram_points (metric_name, service_name, time, start_time, count, sum, bounds, "
            "bucket_counts, temporality, attributes, resource_attributes, scope_name) "
            "VALUES ('m', 'svc', ?, ?, ?, ?, ?, ?, 'delta', ?, ?, 's')",
            [T0 + timedelta(minutes=minute, seconds=second * 20), T0, sum(counts), float(sum(counts)),
             BOUNDS[b], counts, f'{{"route":"{route}"}}', f'{{"instance":"{instance}"}}'],
        )  # fmt: skip
        key = (minute, route, b)
        expected[key] = expected.get(key, np.zeros(len(counts), np.int64)) + np.asarray(counts)
    rollup_histograms(con, T0, T0 + timedelta(minutes=3), 3600.0)
    rows = con.execute("SELECT minute, attributes->>'route', bounds, counts, count FROM rollup_histograms").fetchall()
    got = {
        ((m - T0) // timedelta(minutes=1), route, BOUNDS.index(list(bounds))): (np.asarray(c), n)
        for m, route, bounds, c, n in rows
    }
    assert len(rows) == len(got) == len(expected)
    for key, counts in expected.items():
        assert np.array_equal(got[key][0], counts), key
        assert got[key][1] == counts.sum()
