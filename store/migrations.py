"""Forward migrations of every table family, run once when a store is opened for writing.

A family is a tuple of DDL scripts and the table recording how many of them ran. ``Store``
calls :func:`migrate_all` when it opens a file, so no reader or writer above the store layer
ever checks or creates a schema again.
"""

from __future__ import annotations

import duckdb

from store import schema_raw, schema_rollups, schema_state
from store.errors import StoreVersionError

FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("schema_version", schema_raw.MIGRATIONS),
    (schema_rollups.VERSION_TABLE, schema_rollups.MIGRATIONS),
    ("findings_schema_version", schema_state.FINDINGS),
    ("invariants_schema_version", schema_state.INVARIANTS),
    ("job_runs_schema_version", schema_state.JOB_RUNS),
    ("dispatch_schema_version", schema_state.DISPATCH),
    ("investigations_schema_version", schema_state.INVESTIGATIONS),
    ("reports_schema_version", schema_state.REPORTS),
)
"""(version table, migrations) of every table family, in the order they are applied."""


def schema_version(con: duckdb.DuckDBPyConnection, table: str = "schema_version") -> int:
    """The schema version recorded in ``table`` of a store (0 when absent)."""
    exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]).fetchone()
    if not exists or not exists[0]:
        return 0
    row = con.execute(f"SELECT max(version) FROM {table}").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def migrate(con: duckdb.DuckDBPyConnection, migrations: tuple[str, ...], table: str) -> int:
    """Apply the pending forward ``migrations`` of one family, one transaction each; return the version."""
    target = len(migrations)
    current = schema_version(con, table)
    if current > target:
        raise StoreVersionError(
            f"store {table} {current} is newer than this driftscope supports ({target}); upgrade driftscope to open it"
        )
    if current == 0:
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {table} "
            "(version INTEGER PRIMARY KEY, applied_at TIMESTAMP DEFAULT current_timestamp)"
        )
    for version in range(current + 1, target + 1):
        con.execute("BEGIN")
        try:
            con.execute(migrations[version - 1])
            con.execute(f"INSERT INTO {table} (version) VALUES (?)", [version])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    return target


def migrate_all(con: duckdb.DuckDBPyConnection) -> None:
    """Bring every table family up to date (idempotent; cheap when nothing is pending)."""
    for table, migrations in FAMILIES:
        migrate(con, migrations, table)
