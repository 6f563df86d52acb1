"""Store (migrations, version guard, retention), `driftscope sql`, `import` and configuration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import orjson
import pytest
from otlp_json import EXAMPLES

from collector.decode_json import decode_json
from controller.config import ConfigError, load_config
from store import Store, StoreVersionError, query_readonly
from store.schema_raw import RAW_TABLES, SCHEMA_VERSION


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_new_store_is_migrated_and_reopening_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    Store(path).close()
    Store(path).close()
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT max(version), count(*) FROM schema_version").fetchone() == (
        SCHEMA_VERSION,
        SCHEMA_VERSION,
    )
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert set(RAW_TABLES) <= tables
    con.close()


def test_store_from_a_newer_driftscope_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.duckdb"
    Store(path).close()
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO schema_version (version) VALUES (?)", [SCHEMA_VERSION + 5])
    con.close()
    with pytest.raises(StoreVersionError, match=f"schema_version {SCHEMA_VERSION + 5} is newer"):
        Store(path)
    result = _cli(
        "serve",
        "--store",
        str(path),
        "--otlp-http",
        "127.0.0.1:0",
        "--otlp-grpc",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
    )
    assert result.returncode != 0
    assert "upgrade driftscope" in result.stderr


def test_retention_deletes_only_old_rows(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.duckdb")
    for signal, doc in EXAMPLES.items():
        store.insert(decode_json(signal, orjson.dumps(doc)).tables)
    example_ns = 1_544_712_661_000_000_000  # the examples' timestamps (Dec 2018)
    kept = store.enforce_retention({t: 86_400.0 for t in RAW_TABLES}, now_ns=example_ns + 3600 * 10**9)
    assert set(kept.values()) == {0}
    deleted = store.enforce_retention({"spans": 86_400.0, "logs": 86_400.0}, now_ns=example_ns + 2 * 86_400 * 10**9)
    assert deleted == {"spans": 1, "logs": 2}
    cur = store.cursor()
    assert cur.execute("SELECT count(*) FROM spans").fetchone() == (0,)
    assert cur.execute("SELECT count(*) FROM metric_points").fetchone() == (2,)
    store.close()


def test_sql_command_reads_and_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "q.duckdb"
    store = Store(path)
    store.insert(decode_json("traces", orjson.dumps(EXAMPLES["traces"])).tables)
    store.close()
    ok = _cli("sql", "--store", str(path), "--format", "json", "SELECT span_name, duration_ns FROM spans")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == [{"span_name": "I'm a server span", "duration_ns": 1_000_000_000}]
    csv = _cli("sql", "--store", str(path), "--format", "csv", "SELECT span_kind, http_status_code FROM spans")
    assert csv.stdout.splitlines() == ['"span_kind","http_status_code"', '"SERVER",500']
    table = _cli("sql", "--store", str(path), "SELECT count(*) AS n FROM spans")
    assert "(1 rows)" in table.stdout
    for statement in (
        "DELETE FROM spans",
        "DROP TABLE spans",
        "CREATE TABLE x (a INT)",
        "COPY spans TO 'out.csv'",
        "ATTACH 'other.duckdb'",
    ):
        refused = _cli("sql", "--store", str(path), statement)
        assert refused.returncode != 0
        assert "read-only" in refused.stderr, statement
    assert "expected exactly one statement" in _cli("sql", "--store", str(path), "SELECT 1; SELECT 2").stderr
    assert "does not exist" in _cli("sql", "--store", str(tmp_path / "none.duckdb"), "SELECT 1").stderr
    assert query_readonly(path, "SELECT count(*) AS n FROM spans").to_pylist() == [{"n": 1}]


def test_sql_on_a_store_held_by_serve_says_so(tmp_path: Path) -> None:
    from serverproc import start_server

    srv = start_server(tmp_path / "held.duckdb")
    try:
        held = _cli("sql", "--store", str(srv.store), "SELECT 1")
        assert held.returncode != 0
        assert "in use by another process" in held.stderr
    finally:
        srv.stop()


def test_import_jsonl_mixed_signals_with_summary(tmp_path: Path) -> None:
    lines = [orjson.dumps(doc) for doc in EXAMPLES.values()]
    bad_span = orjson.loads(orjson.dumps(EXAMPLES["traces"]))
    bad_span["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"] = "abc"
    lines += [b"not json at all", b"", b'{"something": "else"}', orjson.dumps(bad_span)]
    path = tmp_path / "otel.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    store = tmp_path / "i.duckdb"
    result = _cli("import", "--store", str(store), str(path))
    assert result.returncode == 1  # something was rejected
    assert "traces   loaded          1  rejected        1" in result.stdout
    assert "metrics  loaded          5  rejected        0" in result.stdout
    assert "logs     loaded          2  rejected        0" in result.stdout
    assert "bad lines 2" in result.stdout
    assert f"{path}:4: body is not valid JSON" in result.stderr or f"{path}:4" in result.stderr
    con = duckdb.connect(str(store), read_only=True)
    assert con.execute("SELECT count(*) FROM histogram_points").fetchone() == (1,)
    con.close()


def test_config_file_env_and_errors_name_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "driftscope.toml"
    cfg.write_text('store = "x.duckdb"\n[ingest]\nqueue_rows_max = 5000\n[retention]\nspans_days = 2\n')
    settings = load_config(cfg)
    assert (settings.store, settings.ingest.queue_rows_max, settings.retention.spans_days) == ("x.duckdb", 5000, 2.0)
    monkeypatch.setenv("DRIFTSCOPE_INGEST__QUEUE_ROWS_MAX", "7000")
    assert load_config(cfg).ingest.queue_rows_max == 7000
    assert load_config(cfg, store="y.duckdb").store == "y.duckdb"
    monkeypatch.setenv("DRIFTSCOPE_INGEST__QUEUE_ROWS_MAX", "lots")
    with pytest.raises(ConfigError, match=r"ingest\.queue_rows_max: .*integer.*'lots'"):
        load_config(cfg)
    monkeypatch.delenv("DRIFTSCOPE_INGEST__QUEUE_ROWS_MAX")
    cfg.write_text("[ingest]\nqueue_rows_mx = 5\n[server]\nhttp = 'nowhere'\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert "ingest.queue_rows_mx: Extra inputs are not permitted" in str(err.value)
    assert "server.http: Value error, 'nowhere' is not HOST:PORT" in str(err.value)
    cfg.write_text("[ingest\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(cfg)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    bad = _cli("serve", "--config", str(tmp_path / "missing.toml"))
    assert bad.returncode != 0 and "does not exist" in bad.stderr


def test_sql_json_keeps_nanosecond_timestamps(tmp_path: Path) -> None:
    """Python datetimes stop at microseconds; JSON output must not crash on a TIMESTAMP_NS."""
    from click.testing import CliRunner

    from controller.cli import main

    Store(tmp_path / "s.duckdb").close()
    query = "SELECT TIMESTAMP_NS '2026-03-04 02:30:00.123456789' AS t, 7 AS n"
    result = CliRunner().invoke(main, ["sql", query, "--store", str(tmp_path / "s.duckdb"), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"t": "2026-03-04 02:30:00.123456789", "n": 7}]
