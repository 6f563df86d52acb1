"""Stores for the report tests, built once per session with the real simulator and detectors.

- ``incident_store``: ``combo-deploy-errors`` (a checkout deploy brings a latency regression
  and errors) at a capped rate, rolled up, detected and written with the real findings
  writer, plus one invariant and one log-template finding whose counterexamples are real
  trace ids and log lines of the store (those detectors land in their own issue).
- ``quiet_store``: ``webshop-quiet`` through the same pipeline: no findings.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from requires import missing

from analysis import Window, rollup_all
from detectors.base import SignalKey
from detectors.findings import Finding
from detectors.run import DetectionConfig, detect
from simulator.run import DEFAULT_START_NS, simulate
from simulator.scenario import load_scenario
from simulator.sinks import StoreSink
from store.connection import Store
from store.findings import write_findings

MINUTE_NS = 60 * 1_000_000_000


def _naive(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).replace(tzinfo=None)


def _build(
    path: Path, scenario: str, rate_per_s: float, *, from_minute: int, hours: float, window_min: int, invariants: bool
) -> Store:
    """Simulate into ``path``, roll up, detect the last ``window_min`` minutes and write the findings."""
    sc = load_scenario(scenario)
    sc = sc.model_copy(update={"arrivals": sc.arrivals.model_copy(update={"rate_per_s": rate_per_s})})
    store = Store(path)
    simulate(sc, StoreSink(store), hours=hours, from_minute=from_minute, seed=5)
    con = store.cursor()
    rollup_all(con)
    end_ns = DEFAULT_START_NS + round(hours * 60) * MINUTE_NS
    window = Window(_naive(end_ns - window_min * MINUTE_NS), _naive(end_ns), 60)
    history_s = (round(hours * 60) - from_minute - window_min) * 60
    found = detect(con, window, DetectionConfig(history_s=history_s))
    if invariants:
        found += _invariant_findings(con, window_start_ns=end_ns - window_min * MINUTE_NS, end_ns=end_ns)
    write_findings(con, found, now_ns=end_ns, resolve_after_s=1800)
    return store


def _invariant_findings(con: duckdb.DuckDBPyConnection, *, window_start_ns: int, end_ns: int) -> list[Finding]:
    """An invariant and a log-template finding with real counterexamples (none when the store has no errors)."""
    traces = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT trace_id FROM spans WHERE status_code = 'ERROR' AND service_name = 'checkout' "
            "ORDER BY trace_id LIMIT 3"
        ).fetchall()
    ]
    lines = [r[0] for r in con.execute("SELECT DISTINCT body FROM logs ORDER BY body LIMIT 2").fetchall()]
    if not traces or not lines:
        return []
    change = end_ns - 60 * MINUTE_NS
    return [
        Finding(
            detector="invariant_error_free", signal=SignalKey("error_ratio", "checkout", "PlaceOrder"),
            severity="critical", score=1.0, effect=None, effect_text="PlaceOrder never failed before; 3 % fail now",
            before=0.0, after=0.03, q_value=1e-8,
            evidence={"trace_ids": traces, "sql": "SELECT trace_id FROM spans WHERE status_code = 'ERROR'"},
            window_start_ns=window_start_ns, window_end_ns=end_ns, change_ns=change, p_value=1e-9,
        ),
        Finding(
            detector="log_template_new", signal=SignalKey("log_template", "payment", "ERROR"),
            severity="warning", score=0.9, effect=None, effect_text="new template: 20 records/min",
            before=0.0, after=20.0, q_value=1e-8, evidence={"templates": lines, "trace_ids": traces[:1]},
            window_start_ns=window_start_ns, window_end_ns=end_ns, change_ns=change, p_value=1e-9,
        ),
    ]  # fmt: skip


@pytest.fixture(scope="session")
def incident_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``combo-deploy-errors``: 5 h of data, detection over the last 90 minutes."""
    path = tmp_path_factory.mktemp("incident") / "incident.duckdb"
    store = _build(path, "combo-deploy-errors", 10.0, from_minute=-60, hours=4.0, window_min=90, invariants=True)
    store.close()
    return path


@pytest.fixture(scope="session")
def quiet_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``webshop-quiet``: 7 h of data, detection over the last hour (finds nothing)."""
    path = tmp_path_factory.mktemp("quiet") / "quiet.duckdb"
    store = _build(path, "webshop-quiet", 10.0, from_minute=-240, hours=3.0, window_min=60, invariants=False)
    store.close()
    return path


@pytest.fixture
def open_store() -> Iterator[Callable[[Path], duckdb.DuckDBPyConnection]]:
    """Open a store file for the test (closed after it) and return a cursor on it."""
    stores: list[Store] = []

    def opener(path: Path) -> duckdb.DuckDBPyConnection:
        stores.append(Store(path))
        return stores[-1].cursor()

    yield opener
    for s in stores:
        s.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """Where screenshots go: ``$DRIFTSCOPE_ARTIFACTS`` (kept by CI) or the test's tmp_path."""
    target = Path(os.environ.get("DRIFTSCOPE_ARTIFACTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


CHROMIUM = os.environ.get("DRIFTSCOPE_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module (the system's; playwright downloads nothing)."""
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        missing(f"chromium not found at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright package is not installed (a dev dependency)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()
