"""Structural laws under overload: parents queued past the window's end, parents shed before they call.

Found by the adversary in saturation worlds (dev 21401, 21404): a parent queued for minutes called its
child more than ``CHILD_MARGIN_NS`` after the window's end, and the required child was called missing;
parents failing fast (shed by an overflowing queue) made no call, and the edge was called vanished.
"""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

from detectors.invariants.structure import check_structure, learn_structure, structure_profile
from store.migrations import migrate_all

NS_S = 1_000_000_000
NS_MIN = 60 * NS_S
PARENTS = 6000
STEP = 600 * NS_S // 1000
"""Requests every 0.6 s: 6,000 an hour, more than the span-level laws' support (``stats.MIN_SUPPORT``)."""
Row = tuple[str, str, str | None, str, str, str, str, int, int]


def _insert(con: duckdb.DuckDBPyConnection, rows: list[Row]) -> None:
    names = ["trace_id", "span_id", "parent_span_id", "service_name", "span_name", "span_kind", "status_code"]
    frame = pl.DataFrame([r[:7] for r in rows], schema=names, orient="row").with_columns(
        start_ns=pl.Series([r[7] for r in rows]), end_ns=pl.Series([r[8] for r in rows])
    )
    con.register("batch", frame.to_arrow())
    con.execute(f"INSERT INTO spans ({', '.join(names)}, start_time, end_time, duration_ns) SELECT {', '.join(names)}, "
                "make_timestamp_ns(start_ns), make_timestamp_ns(end_ns), end_ns - start_ns FROM batch")  # fmt: skip
    con.unregister("batch")


def _request(i: int, start: int, *, child_after: int | None, end_after: int, ok: bool = True) -> list[Row]:
    """One GET /orders parent starting at ``start`` (ns), its db call ``child_after`` ns later (None: no call)."""
    trace, parent = f"t{i:06d}", f"p{i:06d}"
    rows = [(trace, parent, None, "api", "GET /orders", "SERVER", "UNSET" if ok else "ERROR", start, start + end_after)]
    if child_after is not None:
        rows.append((trace, f"c{i:06d}", parent, "db", "SELECT orders", "CLIENT", "UNSET", start + child_after,
                     start + child_after + 2 * NS_S))  # fmt: skip
    return rows


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    migrate_all(con)
    rows: list[Row] = []
    for i in range(PARENTS):  # the baseline [0, 60 min): every request calls the database promptly
        rows += _request(i, i * STEP, child_after=NS_S, end_after=3 * NS_S)
    _insert(con, rows)
    return con


def _check(con: duckdb.DuckDBPyConnection) -> list[str]:
    laws = learn_structure(*structure_profile(con, 0, 60 * NS_MIN))
    assert {(law.kind, law.subject) for law in laws} >= {("required_child", "db:SELECT orders"),
                                                          ("call_edge", "db:SELECT orders")}  # fmt: skip
    return [v.text for v in check_structure(con, laws, 60 * NS_MIN, 120 * NS_MIN)]


def test_a_parent_queued_past_the_windows_end_still_has_its_child(con: duckdb.DuckDBPyConnection) -> None:
    rows: list[Row] = []
    for i in range(PARENTS):
        start = 60 * NS_MIN + i * STEP
        late = i >= PARENTS - 1000  # the last ten minutes' requests wait eight minutes in a queue
        rows += _request(PARENTS + i, start, child_after=8 * NS_MIN if late else NS_S,
                         end_after=8 * NS_MIN + 3 * NS_S if late else 3 * NS_S)  # fmt: skip
    _insert(con, rows)
    assert _check(con) == []


def test_parents_shed_before_calling_leave_the_edge_in_place(con: duckdb.DuckDBPyConnection) -> None:
    rows: list[Row] = []
    for i in range(PARENTS):
        shed = i % 3 != 0  # two requests in three rejected at once: an error, and no call made
        rows += _request(PARENTS + i, 60 * NS_MIN + i * STEP, child_after=None if shed else NS_S,
                         end_after=NS_S // 100 if shed else 3 * NS_S, ok=not shed)  # fmt: skip
    _insert(con, rows)
    assert _check(con) == []


def test_successful_parents_without_the_call_break_both_laws(con: duckdb.DuckDBPyConnection) -> None:
    rows: list[Row] = []
    for i in range(PARENTS):
        dropped = i % 3 != 0  # a release stopped calling the database on two requests in three
        rows += _request(PARENTS + i, 60 * NS_MIN + i * STEP, child_after=None if dropped else NS_S,
                         end_after=3 * NS_S)  # fmt: skip
    _insert(con, rows)
    texts = _check(con)
    assert any("lack child db:SELECT orders" in t for t in texts)
    assert any("edge db:SELECT orders vanished" in t for t in texts)
