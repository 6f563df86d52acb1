"""A connection to the ClickHouse telemetry plane: chdb in-process or a server over HTTP.

One class, two transports with the same three verbs (``query_arrow``, ``command``,
``insert_arrow``), so every statement driftscope runs on ClickHouse takes the same path
whether it lands in the embedded engine (``chdb``: tests, the benchmark, a single-node
try-out) or in a real server (``clickhouse-connect``). Query parameters use ClickHouse's own
``{name:Type}`` binding on both.

Targets: ``chdb:`` (in memory), ``chdb:///path/to/dir`` (a chdb data directory), or
``http(s)://host:port`` (a server). Every failure to reach or query the server is raised as
:class:`ClickHouseError` with the target and ClickHouse's reason, which jobs record and retry
on the next tick.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa

from store.errors import StoreError
from store.schema_otel import OtelTables, exporter_ddl, schema_problems


class ClickHouseError(StoreError):
    """ClickHouse is unreachable, refused a statement, or is not the exporter's schema."""


@dataclass(frozen=True)
class ClickHouseTarget:
    """Where the telemetry plane is and how to log in (the password is resolved, never logged)."""

    url: str = "chdb:"
    database: str = "otel"
    user: str = "default"
    password: str = field(default="", repr=False)
    tables: OtelTables = field(default_factory=OtelTables)
    connect_timeout_s: float = 10.0
    query_timeout_s: float = 300.0


def resolve_password(password_file: str = "", password_env: str = "") -> str:
    """The password from a file (first line) or an environment variable; empty when neither is set."""
    if password_file:
        try:
            return Path(password_file).read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise ClickHouseError(f"cannot read the ClickHouse password file {password_file}: {exc}") from None
    if password_env:
        value = os.environ.get(password_env)
        if value is None:
            raise ClickHouseError(f"environment variable {password_env} (clickhouse password) is not set")
        return value
    return ""


class ClickHouse:
    """Statements on one ClickHouse database; thread-safety is the transport's (use one per job)."""

    def __init__(self, target: ClickHouseTarget) -> None:
        self.target = target
        self.database = target.database
        self.tables = target.tables
        parsed = urlparse(target.url)
        self._session: Any = None
        self._client: Any = None
        try:
            if parsed.scheme == "chdb":
                try:
                    from chdb import session  # noqa: PLC0415  the engine is large: loaded only in chdb mode
                except ImportError:
                    raise ClickHouseError(
                        f"clickhouse url {target.url!r} needs the in-process engine chdb, which is not installed: "
                        "pip install 'driftscope[chdb]', or point clickhouse.url at a server (http(s)://host:port)"
                    ) from None
                self._session = session.Session(parsed.path) if parsed.path else session.Session()  # type: ignore[no-untyped-call]
            elif parsed.scheme in ("http", "https"):
                import clickhouse_connect  # noqa: PLC0415  loaded only for a server

                default_port = 8443 if parsed.scheme == "https" else 8123
                self._client = clickhouse_connect.get_client(
                    host=parsed.hostname or "localhost", port=parsed.port or default_port,
                    secure=parsed.scheme == "https", username=target.user, password=target.password,
                    connect_timeout=target.connect_timeout_s, send_receive_timeout=target.query_timeout_s,
                )  # fmt: skip
            else:
                raise ClickHouseError(
                    f"clickhouse url {target.url!r}: expected chdb:, chdb:///dir or http(s)://host:port"
                )
        except ClickHouseError:
            raise
        except Exception as exc:
            raise ClickHouseError(f"ClickHouse at {self._where()} is unavailable: {exc}") from None
        self.command("SELECT 1")  # reachable and logged in, or ClickHouseError says why

    def _where(self) -> str:
        parsed = urlparse(self.target.url)
        return self.target.url if parsed.scheme == "chdb" else f"{parsed.scheme}://{parsed.hostname}:{parsed.port}"

    def query_arrow(self, sql: str, params: Mapping[str, object] | None = None) -> pa.Table:
        """Rows of one SELECT as Arrow (``{name:Type}`` placeholders bound from ``params``)."""
        try:
            if self._session is not None:
                table = self._session.query(sql, "ArrowTable", params=dict(params or {}))
                assert isinstance(table, pa.Table)
                return table
            result = self._client.query_arrow(sql, parameters=dict(params or {}), settings=self._settings())
            assert isinstance(result, pa.Table)
            return result
        except Exception as exc:
            raise ClickHouseError(f"ClickHouse at {self._where()}: query failed: {_reason(exc)}") from None

    def scalar(self, sql: str, params: Mapping[str, object] | None = None) -> Any:
        """The first column of the first row (None when there is no row)."""
        table = self.query_arrow(sql, params)
        return table.column(0)[0].as_py() if table.num_rows else None

    def command(self, sql: str, params: Mapping[str, object] | None = None) -> None:
        """Run one statement that returns no rows (DDL, INSERT ... SELECT, DELETE)."""
        try:
            if self._session is not None:
                self._session.query(sql, "CSV", params=dict(params or {}))
            else:
                self._client.command(sql, parameters=dict(params or {}), settings=self._settings())
        except Exception as exc:
            raise ClickHouseError(f"ClickHouse at {self._where()}: statement failed: {_reason(exc)}") from None

    def insert_arrow(self, table: str, rows: pa.Table) -> int:
        """Insert Arrow rows into ``table`` (columns by name; absent ones take their defaults)."""
        if not rows.num_rows:
            return 0
        cols = ", ".join(f"`{c}`" for c in rows.column_names)
        try:
            if self._session is not None:
                _ingest = rows  # chdb's Python() table function reads this local by name
                self._session.query(
                    f"INSERT INTO `{self.database}`.`{table}` ({cols}) SELECT {cols} FROM Python(_ingest)"
                )
            else:
                self._client.insert_arrow(table, rows, database=self.database)
        except Exception as exc:
            raise ClickHouseError(
                f"ClickHouse at {self._where()}: insert into {table} failed: {_reason(exc)}"
            ) from None
        return int(rows.num_rows)

    def _settings(self) -> dict[str, object]:
        return {"max_execution_time": int(self.target.query_timeout_s)}

    def columns(self) -> dict[str, set[str]]:
        """Every table of the database and its column names."""
        rows = self.query_arrow(
            "SELECT table, name FROM system.columns WHERE database = {db:String}", {"db": self.database}
        ).to_pylist()
        out: dict[str, set[str]] = {}
        for row in rows:
            out.setdefault(str(row["table"]), set()).add(str(row["name"]))
        return out

    def check_exporter_schema(self) -> None:
        """Raise ClickHouseError naming each missing exporter table or column driftscope reads."""
        problems = schema_problems(self.columns(), self.tables)
        if problems:
            raise ClickHouseError(
                f"ClickHouse database {self.database} is not the OpenTelemetry Collector ClickHouse exporter's "
                f"schema: {'; '.join(problems)}"
            )

    def create_exporter_tables(self) -> None:
        """Create the exporter's tables where no Collector has (tests, driftscope's receivers, benchmarks)."""
        self.ensure_database()
        for ddl in exporter_ddl(self.database, self.tables):
            self.command(ddl)

    def ensure_database(self) -> None:
        """Create the database when missing (a Collector with ``create_schema`` has made it already)."""
        self.command(f"CREATE DATABASE IF NOT EXISTS `{self.database}`")

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
        if self._client is not None:
            self._client.close()
            self._client = None


def _reason(exc: BaseException) -> str:
    """The first line of ClickHouse's message (its stack traces are many lines)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:500]
