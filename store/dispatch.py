"""Table ``dispatch_decisions``: every decision on a trigger, dispatched or skipped and why."""

from __future__ import annotations

import duckdb

from store import dialect_duckdb as sql


def record_decision(
    con: duckdb.DuckDBPyConnection,
    *,
    decided_ns: int,
    source: str,
    fingerprint: str,
    action: str,
    reason: str,
    finding_id: str | None,
    title: str,
) -> None:
    """Append one decision (``title`` cut to 300 characters)."""
    con.execute(
        f"INSERT INTO dispatch_decisions VALUES ({sql.from_ns('?')}, ?, ?, ?, ?, ?, NULL, ?)",
        [decided_ns, source, fingerprint, action, reason, finding_id, title[:300]],
    )


def last_dispatch_ns(con: duckdb.DuckDBPyConnection, fingerprint: str) -> int | None:
    """When (ns) a trigger with ``fingerprint`` was last dispatched; None when never."""
    row = con.execute(
        f"SELECT max({sql.epoch_ns('decided_at')}) FROM dispatch_decisions "
        "WHERE fingerprint = ? AND action = 'dispatch'",
        [fingerprint],
    ).fetchone()
    return int(row[0]) if row and row[0] is not None else None


def link_investigation(con: duckdb.DuckDBPyConnection, fingerprint: str, investigation_id: str) -> None:
    """Point the unlinked dispatch decisions of ``fingerprint`` at the investigation they started."""
    con.execute(
        "UPDATE dispatch_decisions SET investigation_id = ? WHERE fingerprint = ? AND action = 'dispatch' "
        "AND investigation_id IS NULL",
        [investigation_id, fingerprint],
    )
