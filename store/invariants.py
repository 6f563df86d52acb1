"""Table ``invariants``: learned and declared laws, replaced whole on each learning run.

Rows travel as plain dicts (``detectors.invariants.model.Invariant`` builds and reads them),
so the store knows the table, not the detectors' types.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

from store import dialect_duckdb as sql
from store.connection import fetch_arrow

ROW_KEYS = ("id", "kind", "service", "operation", "span_kind", "subject", "params", "support", "confidence", "source")
"""Keys of a row to save (``params`` as JSON text)."""


def replace_learned(
    con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]], learned_from_ns: int, learned_to_ns: int
) -> None:
    """Replace the stored learned invariants with ``rows`` (one transaction); declared ones stay."""
    table = pa.table({k: [r[k] for r in rows] for k in ROW_KEYS}) if rows else None
    con.execute("BEGIN")
    try:
        con.execute("DELETE FROM invariants WHERE source = 'learned'")
        if table is not None:
            con.register("_invariants_batch", table)
            try:
                con.execute(
                    "INSERT INTO invariants SELECT DISTINCT ON (id) id, kind, service, operation, span_kind, "
                    f"subject, params::JSON, support, confidence, source, {sql.from_ns('$f')}, {sql.from_ns('$t')} "
                    "FROM _invariants_batch WHERE id NOT IN (SELECT id FROM invariants)",
                    {"f": learned_from_ns, "t": learned_to_ns},
                )
            finally:
                con.unregister("_invariants_batch")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def load_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every stored invariant by id: ``ROW_KEYS`` (params as JSON text) plus ``learned_to`` (ns or None)."""
    rows: list[dict[str, Any]] = fetch_arrow(
        con,
        "SELECT id, kind, service, operation, span_kind, subject, params::VARCHAR AS params, support, confidence, "
        f"source, {sql.epoch_ns('learned_to')} AS learned_to FROM invariants ORDER BY id",
    ).to_pylist()
    return rows


def listing(con: duckdb.DuckDBPyConnection, limit: int) -> list[dict[str, Any]]:
    """At most ``limit`` rows of the table as stored (every column; params as JSON text), in column order."""
    cur = con.execute("SELECT * FROM invariants ORDER BY ALL LIMIT ?", [limit])
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
