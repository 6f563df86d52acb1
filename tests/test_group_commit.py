"""Group commit: a commit waits for requests still being decoded (up to flush_interval_s), and
only for them: a lone request commits at once; every acknowledged row is committed."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa

from collector.writer import IngestQueue, QueueLimits
from store.connection import Store


def _logs(n: int, body: str) -> dict[str, pa.Table]:
    times = pa.array([1_700_000_000_000_000_000 + i for i in range(n)], pa.timestamp("ns"))
    return {"logs": pa.table({"time": times, "observed_time": times, "body": [body] * n})}


def test_a_request_being_decoded_joins_the_commit_of_the_one_before(tmp_path: Path) -> None:
    store = Store(tmp_path / "g.duckdb")
    commits: list[int] = []
    queue = IngestQueue(store, QueueLimits(flush_interval_s=30.0), on_commit=lambda _s, rows: commits.append(rows))
    try:
        with queue.decoding():  # a second request is being decoded while the first is queued
            first = queue.submit(_logs(3, "a"))
            second = queue.submit(_logs(4, "b"))
        assert first is not None and second is not None
        assert (first.result(timeout=10), second.result(timeout=10)) == (3, 4)
        assert commits == [7]  # one transaction for both
        lone = queue.submit(_logs(2, "c"))
        assert lone is not None and lone.result(timeout=10) == 2  # nobody decoding: no 30 s wait
        assert commits == [7, 2]
    finally:
        queue.close()
    row = store.cursor().execute("SELECT count(*), count(DISTINCT body) FROM logs").fetchone()
    store.close()
    assert row == (9, 3)


def test_a_refused_decode_stops_the_wait(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.duckdb")
    queue = IngestQueue(store, QueueLimits(flush_interval_s=30.0))
    entered, release = threading.Event(), threading.Event()

    def decode_then_fail() -> None:
        with queue.decoding():
            entered.set()
            release.wait(10)  # a malformed body: nothing is submitted

    worker = threading.Thread(target=decode_then_fail)
    worker.start()
    try:
        entered.wait(10)
        future = queue.submit(_logs(5, "x"))
        assert future is not None
        release.set()
        assert future.result(timeout=10) == 5  # committed as soon as the decode gave up, not after 30 s
    finally:
        worker.join(10)
        queue.close()
        store.close()
