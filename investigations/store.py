"""The ``investigations`` table family: one row per investigation, one per step.

``investigations`` has the columns the reports package links through (id, finding_id,
status, title, report_path) plus the trigger, policy, window, the report JSON and the
spend; ``investigation_steps`` persists every step (tool calls with their results, model
turns with their usage) so a run can be audited and replayed.
"""

from __future__ import annotations

from typing import Any

import duckdb
import orjson

from collector.store import migrate

_V1 = """
CREATE TABLE investigations (
    id VARCHAR PRIMARY KEY,
    finding_id VARCHAR,
    fingerprint VARCHAR NOT NULL,
    trigger VARCHAR NOT NULL,
    policy VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    title VARCHAR NOT NULL,
    report_path VARCHAR,
    window_start TIMESTAMP_NS NOT NULL,
    window_end TIMESTAMP_NS NOT NULL,
    baseline_start TIMESTAMP_NS NOT NULL,
    snapshot_path VARCHAR,
    report JSON,
    claims_total INTEGER NOT NULL DEFAULT 0,
    claims_verified INTEGER NOT NULL DEFAULT 0,
    steps INTEGER NOT NULL DEFAULT 0,
    tokens BIGINT NOT NULL DEFAULT 0,
    cost_usd DOUBLE NOT NULL DEFAULT 0,
    wall_s DOUBLE NOT NULL DEFAULT 0,
    started_at TIMESTAMP_NS NOT NULL,
    finished_at TIMESTAMP_NS
);
CREATE TABLE investigation_steps (
    investigation_id VARCHAR NOT NULL,
    step INTEGER NOT NULL,
    kind VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    payload JSON NOT NULL,
    wall_s DOUBLE NOT NULL,
    PRIMARY KEY (investigation_id, step)
);
"""
MIGRATIONS = (_V1,)
VERSION_TABLE = "investigations_schema_version"
STATUSES = ("running", "complete", "partial", "failed")


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    migrate(con, MIGRATIONS, VERSION_TABLE)


def start(con: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> None:
    """Insert a running investigation (keys: id, finding_id, fingerprint, trigger, policy, title,
    window_start, window_end, baseline_start (ns), snapshot_path, started_at (ns))."""
    ensure_schema(con)
    con.execute(
        "INSERT INTO investigations (id, finding_id, fingerprint, trigger, policy, status, title, window_start, "
        "window_end, baseline_start, snapshot_path, started_at) VALUES ($id, $finding_id, $fingerprint, $trigger, "
        "$policy, 'running', $title, make_timestamp_ns($window_start), make_timestamp_ns($window_end), "
        "make_timestamp_ns($baseline_start), $snapshot_path, make_timestamp_ns($started_at))",
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
        "cost_usd = $cost_usd, wall_s = $wall_s, finished_at = make_timestamp_ns($finished_at) WHERE id = $id",
        {**values, "report": orjson.dumps(values["report"], default=str).decode(), "id": investigation_id},
    )


def steps_of(con: duckdb.DuckDBPyConnection, investigation_id: str) -> list[dict[str, Any]]:
    """The persisted steps of an investigation, in order (payload parsed)."""
    ensure_schema(con)
    rows = con.execute(
        "SELECT step, kind, name, payload, wall_s FROM investigation_steps WHERE investigation_id = ? ORDER BY step",
        [investigation_id],
    ).fetchall()
    return [{"step": s, "kind": k, "name": n, "payload": orjson.loads(p), "wall_s": w} for s, k, n, p, w in rows]
