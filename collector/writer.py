"""The bounded ingest queue and the one writer thread that commits it to the store.

Receivers call ``IngestQueue.submit`` with decoded Arrow tables and wait on the returned
future; the writer thread drains whatever is queued (waiting up to ``flush_interval_s`` for
requests still being decoded to join), concatenates it per table, commits it in one
transaction (group commit) and resolves every future in the batch. A future
resolved with success means the rows are committed, so a receiver that acknowledges its
client only after the future resolves loses nothing to a crash.

When accepting a request would push the queue past its row or byte limit, ``submit``
returns None and the receiver answers 429 / RESOURCE_EXHAUSTED so the client retries.
A request alone is always admitted into an empty queue, so one large-but-legal request
cannot starve.

The JSON columns reach DuckDB typed as Arrow JSON (``as_json``): their text was written by
the decoders themselves (orjson, or the compiled decoder's byte-identical writer), so DuckDB
stores it without parsing every document again on the VARCHAR -> JSON cast.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass

import pyarrow as pa

from store.otel_writer import RawSink

JSON_COLUMNS = frozenset({"attributes", "resource_attributes", "scope_attributes", "events", "links", "exemplars"})
"""Raw-table columns of type JSON (store.schema_raw), which the decoders fill with JSON text."""

_JSON_TYPE = pa.json_(pa.string()) if hasattr(pa, "json_") else None  # pyarrow >= 19


def as_json(table: pa.Table) -> pa.Table:
    """``table`` with its JSON columns typed as Arrow JSON (same buffers, no copy)."""
    if _JSON_TYPE is None or not JSON_COLUMNS.intersection(table.column_names):
        return table
    fields = [
        pa.field(f.name, _JSON_TYPE, f.nullable) if f.name in JSON_COLUMNS and f.type == pa.string() else f
        for f in table.schema
    ]
    return table.cast(pa.schema(fields))


@dataclass(frozen=True)
class QueueLimits:
    """Bounds of the ingest queue: rows and Arrow bytes waiting to be committed."""

    rows_max: int = 200_000
    bytes_max: int = 256 * 1024 * 1024
    batch_rows_max: int = 100_000
    """Largest group commit in rows; bigger batches make a commit slower to land."""
    flush_interval_s: float = 0.005
    """Longest a commit waits for requests still being decoded to join it (0: never waits).
    It waits only while some request is being decoded, so a lone client sees no delay; under
    concurrent load the fixed cost of a commit is shared by every request that joins it."""


@dataclass
class _Item:
    tables: dict[str, pa.Table]
    rows: int
    nbytes: int
    future: Future[int]


class IngestQueue:
    """A bounded queue of decoded requests with a single committing writer thread."""

    def __init__(
        self,
        store: RawSink,
        limits: QueueLimits,
        *,
        on_commit: Callable[[float, int], None] | None = None,
    ) -> None:
        self._store = store
        self._limits = limits
        self._on_commit = on_commit
        self._items: deque[_Item] = deque()
        self._cond = threading.Condition()
        self._rows = 0
        self._bytes = 0
        self._closing = False
        self._decoding = 0
        self._thread = threading.Thread(target=self._run, name="driftscope-writer", daemon=True)
        self._thread.start()

    @property
    def depth_rows(self) -> int:
        return self._rows

    @property
    def depth_bytes(self) -> int:
        return self._bytes

    def alive(self) -> bool:
        return self._thread.is_alive() and not self._closing

    @contextmanager
    def decoding(self) -> Iterator[None]:
        """Mark a request as being decoded: the next commit may wait for it (``flush_interval_s``)."""
        with self._cond:
            self._decoding += 1
        try:
            yield
        finally:
            with self._cond:
                self._decoding -= 1
                self._cond.notify_all()

    def submit(self, tables: dict[str, pa.Table]) -> Future[int] | None:
        """Queue rows for commit; None when the queue is full (the caller refuses)."""
        rows = sum(t.num_rows for t in tables.values())
        nbytes = sum(t.nbytes for t in tables.values())
        future: Future[int] = Future()
        if rows == 0:
            future.set_result(0)
            return future
        with self._cond:
            if self._closing:
                return None
            over = self._rows + rows > self._limits.rows_max or self._bytes + nbytes > self._limits.bytes_max
            if over and self._items:
                return None
            self._items.append(_Item(tables, rows, nbytes, future))
            self._rows += rows
            self._bytes += nbytes
            self._cond.notify()
        return future

    def _take(self) -> list[_Item] | None:
        with self._cond:
            while not self._items and not self._closing:
                self._cond.wait()
            if not self._items:
                return None
            batch = [self._items.popleft()]
            rows = self._fill(batch, batch[0].rows)
            deadline = time.monotonic() + self._limits.flush_interval_s
            while self._decoding and rows < self._limits.batch_rows_max and not self._closing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
                rows = self._fill(batch, rows)
            return batch

    def _fill(self, batch: list[_Item], rows: int) -> int:
        """Move queued items into ``batch`` while it stays within ``batch_rows_max``; its rows."""
        while self._items and rows + self._items[0].rows <= self._limits.batch_rows_max:
            item = self._items.popleft()
            rows += item.rows
            batch.append(item)
        return rows

    def _release(self, batch: list[_Item]) -> None:
        with self._cond:
            self._rows -= sum(i.rows for i in batch)
            self._bytes -= sum(i.nbytes for i in batch)

    def _commit(self, batch: list[_Item]) -> None:
        merged: dict[str, list[pa.Table]] = {}
        for item in batch:
            for name, table in item.tables.items():
                merged.setdefault(name, []).append(table)
        started = time.perf_counter()
        rows = self._store.insert({n: as_json(pa.concat_tables(ts)) for n, ts in merged.items()})
        if self._on_commit:
            self._on_commit(time.perf_counter() - started, rows)

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                self._commit(batch)
            except Exception:
                # One bad request must not fail its neighbours: retry each alone.
                for item in batch:
                    try:
                        self._commit([item])
                    except Exception as exc:
                        item.future.set_exception(exc)
                    else:
                        item.future.set_result(item.rows)
            else:
                for item in batch:
                    item.future.set_result(item.rows)
            finally:
                self._release(batch)

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop admitting, commit everything already queued, stop the writer thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout_s)
