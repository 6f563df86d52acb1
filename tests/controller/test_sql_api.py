"""SQL while serving: ``POST /api/sql`` (guard, caps), ``driftscope sql --api``, the clear error when
``serve`` holds the store; and OTLP/HTTP on the API port (one port for Cloud Run)."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from otlp_json import TRACE_EXAMPLE
from serverproc import ServerProc, start_server

TOKEN = "sql-test-token"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    store = tmp_path_factory.mktemp("sql") / "sql.duckdb"
    env = [("DRIFTSCOPE_AUTH__API_TOKEN", TOKEN), ("DRIFTSCOPE_AUTH__INGEST_TOKEN", TOKEN),
           ("DRIFTSCOPE_JOBS__ENABLED", "false")]  # fmt: skip
    srv = start_server(store, *env)
    yield srv
    srv.stop()


def _post(url: str, body: bytes, ctype: str = "application/json", token: str | None = TOKEN) -> tuple[int, Any]:
    headers = {"Content-Type": ctype, **({"Authorization": f"Bearer {token}"} if token else {})}
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, orjson.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read() or b"{}")


def _sql(srv: ServerProc, **body: Any) -> tuple[int, Any]:
    return _post(srv.api_url + "/api/sql", orjson.dumps(body))


def test_a_select_answers_rows(served: ServerProc) -> None:
    status, body = _sql(served, sql="SELECT 42 AS answer, 'x' AS label")
    assert status == 200
    assert body["columns"] == ["answer", "label"] and body["rows"] == [[42, "x"]] and body["truncated"] is False
    status, body = _sql(served, sql="DESCRIBE findings")
    assert status == 200 and "severity" in [r[0] for r in body["rows"]]


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("DELETE FROM findings", "refused: DELETE"),
        ("CREATE TABLE x (a INT)", "refused: CREATE"),
        ("SELECT 1; SELECT 2", "exactly one statement"),
        ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
        ("SELECT * FROM '/etc/passwd'", "/etc/passwd"),
        ("SELECT getenv('HOME')", "getenv"),
        ("ATTACH '/tmp/x.duckdb' AS x", "refused: ATTACH"),
        ("SELEC 1", "cannot parse"),
    ],
)
def test_writes_and_reaching_outside_are_refused(served: ServerProc, sql: str, says: str) -> None:
    status, body = _sql(served, sql=sql)
    assert status == 400 and says in body["error"]


def test_rows_and_time_are_capped(served: ServerProc) -> None:
    status, body = _sql(served, sql="SELECT * FROM range(50000)", rows_max=100)
    assert status == 200 and body["count"] == 100 and body["truncated"] is True
    status, body = _sql(served, sql="SELECT count(*) FROM range(100000000) a, range(100000000) b", timeout_s=0.3)
    assert status == 400 and "time limit" in body["error"]
    assert _sql(served, sql="SELECT 1")[0] == 200  # the cursor is usable after an interrupt
    assert _sql(served, sql="SELECT 1", rows_max=0)[0] == 400
    assert _post(served.api_url + "/api/sql", b"not json")[0] == 400
    assert _post(served.api_url + "/api/sql", orjson.dumps({"sql": "SELECT 1"}), token=None)[0] == 401


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "controller", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def test_cli_sql_through_the_api_and_the_clear_error_without(served: ServerProc) -> None:
    locked = _cli("sql", "SELECT 1", "--store", str(served.store))
    assert locked.returncode == 1 and "--api" in locked.stderr and "Traceback" not in locked.stderr
    done = _cli("sql", "--api", served.api_url, "--token", TOKEN, "--format", "json", "SELECT 42 AS answer")
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout) == [{"answer": 42}]
    refused = _cli("sql", "--api", served.api_url, "--token", TOKEN, "DROP TABLE findings")
    assert refused.returncode == 1 and "refused: DROP" in refused.stderr
    denied = _cli("sql", "--api", served.api_url, "SELECT 1")
    assert denied.returncode == 1 and "401" in denied.stderr and "--token" in denied.stderr


def test_otlp_http_is_served_on_the_api_port_too(served: ServerProc) -> None:
    body = orjson.dumps(TRACE_EXAMPLE)
    status, _ = _post(served.api_url + "/v1/traces", body)
    assert status == 200
    assert _post(served.api_url + "/v1/traces", body, token=None)[0] == 401  # the ingest token still applies
    status, rows = _sql(served, sql="SELECT count(*) FROM spans")
    assert status == 200 and rows["rows"][0][0] >= 1


def test_api_port_without_a_store_file(tmp_path: Path) -> None:
    missing = _cli("sql", "SELECT 1", "--store", str(tmp_path / "none.duckdb"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr
