"""Tables ``investigations`` and ``investigation_steps``: one row per investigation, one per step.

``investigations`` has the columns the reports package links through (id, finding_id,
status, title, report_path) plus the trigger, policy, window, the report JSON and the
spend; ``investigation_steps`` persists every step (tool calls with their results, model
turns with their usage) so a run can be audited and replayed.
"""

from __future__ import annotations

from typing import Any

import duckdb
import orjson

from store import dialect_duckdb as sql

STATUSES = ("running", "complete", "partial", "failed")


def start(con: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> None:
    """Insert a running investigation (keys: id, finding_id, fingerprint, trigger, policy, title,
    window_start, window_end, baseline_start (ns), snapshot_path, started_at (ns))."""
    con.execute(
        "INSERT INTO investigations (id, finding_id, fingerprint, trigger, policy, status, title, window_start, "
        "window_end, baseline_start, snapshot_path, started_at) VALUES ($id, $finding_id, $fingerprint, $trigger, "
        f"$policy, 'running', $title, {sql.from_ns('$window_start')}, {sql.from_ns('$window_end')}, "
        f"{sql.from_ns('$baseline_start')}, $snapshot_path, {sql.from_ns('$started_at')})",
        row,
    )


def add_step(con: duckdb.DuckDBPyConnection, investigation_id: str, step: dict[str, Any]) -> None:
    """Persist one step (keys index, kind, name, payload, wall_s; idempotent on (investigation, index))."""
    con.execute(
        "INSERT OR REPLACE INTO investigation_steps VALUES (?, ?, ?, ?, ?, ?)",
        [
            investigation_id,
            step["index"],
            step["kind"],
            step["name"],
            orjson.dumps(step["payload"], default=str).decode(),
            step["wall_s"],
        ],
    )


def finish(con: duckdb.DuckDBPyConnection, investigation_id: str, values: dict[str, Any]) -> None:
    """Record the outcome (keys: status, report (dict), report_path, claims_total, claims_verified,
    steps, tokens, cost_usd, wall_s, finished_at (ns))."""
    con.execute(
        "UPDATE investigations SET status = $status, report = $report, report_path = $report_path, "
        "claims_total = $claims_total, claims_verified = $claims_verified, steps = $steps, tokens = $tokens, "
        f"cost_usd = $cost_usd, wall_s = $wall_s, finished_at = {sql.from_ns('$finished_at')} WHERE id = $id",
        {**values, "report": orjson.dumps(values["report"], default=str).decode(), "id": investigation_id},
    )


def steps_of(con: duckdb.DuckDBPyConnection, investigation_id: str) -> list[dict[str, Any]]:
    """The persisted steps of an investigation, in order (payload parsed)."""
    rows = con.execute(
        "SELECT step, kind, name, payload, wall_s FROM investigation_steps WHERE investigation_id = ? ORDER BY step",
        [investigation_id],
    ).fetchall()
    return [{"step": s, "kind": k, "name": n, "payload": orjson.loads(p), "wall_s": w} for s, k, n, p, w in rows]


LISTED = (
    "id, finding_id, status, title, report_path, trigger, policy, window_start, window_end, claims_total, "
    "claims_verified, steps, tokens, cost_usd, wall_s, started_at, finished_at"
)
"""Columns of an investigation as the API lists it (everything but the report JSON)."""


def _dicts(con: duckdb.DuckDBPyConnection, query: str, params: list[Any]) -> list[dict[str, Any]]:
    cur = con.execute(query, params)
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def list_investigations(con: duckdb.DuckDBPyConnection, limit: int = 500) -> list[dict[str, Any]]:
    """The newest ``limit`` investigations, newest first (columns ``LISTED``; times as naive UTC datetimes)."""
    return _dicts(con, f"SELECT {LISTED} FROM investigations ORDER BY started_at DESC LIMIT ?", [limit])


def investigation(con: duckdb.DuckDBPyConnection, investigation_id: str) -> dict[str, Any] | None:
    """One investigation (``LISTED`` plus ``report``, parsed), or None."""
    rows = _dicts(con, f"SELECT {LISTED}, report FROM investigations WHERE id = ?", [investigation_id])
    if not rows:
        return None
    row = rows[0]
    row["report"] = orjson.loads(row["report"]) if row["report"] else None
    return row


def recorded_report(con: duckdb.DuckDBPyConnection, investigation_id: str) -> dict[str, Any] | None:
    """The report JSON of a finished investigation (parsed), or None when it has none."""
    row = con.execute("SELECT report FROM investigations WHERE id = ?", [investigation_id]).fetchone()
    return orjson.loads(row[0]) if row and row[0] is not None else None


def spend_since(con: duckdb.DuckDBPyConnection, since_ns: int) -> tuple[float, float]:
    """(tokens, US dollars) spent by investigations started at or after ``since_ns``."""
    row = con.execute(
        "SELECT coalesce(sum(tokens), 0), coalesce(sum(cost_usd), 0) FROM investigations "
        f"WHERE started_at >= {sql.from_ns('?')}",
        [since_ns],
    ).fetchone()
    return (float(row[0]), float(row[1])) if row else (0.0, 0.0)


def links_of(
    con: duckdb.DuckDBPyConnection, finding_ids: list[str]
) -> list[tuple[str, str, str | None, str | None, str | None]]:
    """(id, finding_id, report_path, status, title) of the investigations of ``finding_ids``, by id."""
    if not finding_ids:
        return []
    rows = con.execute(
        "SELECT id, finding_id, report_path, status, title FROM investigations "
        "WHERE finding_id IN (SELECT unnest($ids)) ORDER BY id",
        {"ids": finding_ids},
    ).fetchall()
    return [(str(a), str(b), c, d, e) for a, b, c, d, e in rows]


def any_investigation(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether any investigation was ever started in this store."""
    return con.execute("SELECT 1 FROM investigations LIMIT 1").fetchone() is not None


def count_investigations(con: duckdb.DuckDBPyConnection) -> int:
    """How many investigations the store holds."""
    row = con.execute("SELECT count(*) FROM investigations").fetchone()
    return int(row[0]) if row else 0
