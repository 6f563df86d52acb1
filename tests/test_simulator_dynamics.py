"""The simulator's dynamics: declared distributions, queueing theory, retry load, and every
fault moving the signals its ground-truth label names, in the labelled direction."""

from __future__ import annotations

import itertools
from pathlib import Path

import duckdb
import numpy as np
import pytest
from scipy import stats

from simulator.labels import ExpectedSignal
from simulator.run import simulate
from simulator.scenario import Scenario, library, load_scenario, parse_scenario
from simulator.sinks import StoreSink
from store.connection import Store

ONE_OP = """
name = "one-op"
description = "one operation, constant load"
[arrivals]
rate_per_s = {rate}
diurnal_amplitude = 0
noise_sigma = 0
weekend_factor = 1
[[entrypoints]]
operation = "svc:op"
[services.svc.operations.op]
service_time = {{ dist = "{dist}", median_ms = 10.0, sigma = 0.5, shape = 2.0 }}
servers = {servers}
"""


def _run(tmp_path: Path, scenario: Scenario, minutes: int, *, from_minute: int = 0, seed: int = 1) -> Path:
    path = tmp_path / f"{scenario.name}-{seed}.duckdb"
    store = Store(path)
    try:
        simulate(scenario, StoreSink(store), hours=(from_minute + minutes) / 60, from_minute=from_minute, seed=seed)
    finally:
        store.close()
    return path


def _durations_ms(path: Path, where: str = "span_kind = 'SERVER'") -> np.ndarray:
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(f"SELECT duration_ns / 1e6 FROM spans WHERE {where}").fetchnumpy()
    finally:
        con.close()
    return np.asarray(next(iter(rows.values())), dtype=float)


def test_unloaded_latency_follows_the_declared_lognormal(tmp_path: Path) -> None:
    scenario = parse_scenario(ONE_OP.format(rate=20, dist="lognormal", servers=1000))
    d = _durations_ms(_run(tmp_path, scenario, 30))
    assert len(d) > 30_000
    log_d = np.log(d)
    assert np.median(d) == pytest.approx(10.0, rel=0.02)
    assert np.std(log_d) == pytest.approx(0.5, rel=0.03)
    assert stats.kstest(log_d, stats.norm(np.log(10.0), 0.5).cdf).statistic < 0.01


def test_gamma_service_time_median(tmp_path: Path) -> None:
    scenario = parse_scenario(ONE_OP.format(rate=20, dist="gamma", servers=1000))
    d = _durations_ms(_run(tmp_path, scenario, 20))
    assert np.median(d) == pytest.approx(10.0, rel=0.03)  # median ~ scale x (shape - 1/3)


@pytest.mark.parametrize("utilisation", [0.3, 0.6, 0.85])
def test_waiting_follows_queueing_theory(tmp_path: Path, utilisation: float) -> None:
    mean_s = 10.0 * np.exp(0.5**2 / 2) / 1000.0
    rate = utilisation / mean_s
    scenario = parse_scenario(ONE_OP.format(rate=rate, dist="lognormal", servers=1))
    d = _durations_ms(_run(tmp_path, scenario, 60, seed=5))[5000:]  # skip the warm-up
    mean_wait = d.mean() - mean_s * 1000.0
    expected = utilisation / (1 - utilisation) * mean_s * 1000.0  # M/M/1 waiting time
    assert mean_wait == pytest.approx(expected, rel=0.15)


def test_retries_raise_offered_load_under_errors(tmp_path: Path) -> None:
    text = ONE_OP.format(rate=30, dist="lognormal", servers=100).replace(
        "servers = 100",
        'servers = 100\ncalls = [{ to = "dep:call", retries = 2 }]\n'
        "[services.dep.operations.call]\nservice_time = { median_ms = 2.0 }\nservers = 100\nerror_rate = 0.3",
    )
    path = _run(tmp_path, parse_scenario(text), 20)
    con = duckdb.connect(str(path), read_only=True)
    callers, attempts = con.execute(
        "SELECT count(*) FILTER (WHERE service_name = 'svc'), count(*) FILTER (WHERE service_name = 'dep') "
        "FROM spans WHERE span_kind = 'SERVER'"
    ).fetchone()  # type: ignore[misc]
    con.close()
    assert attempts / callers == pytest.approx(1 + 0.3 + 0.3**2, rel=0.03)


# ---- every labelled fault moves its signals --------------------------------------------


def _measure(con: duckdb.DuckDBPyConnection, scenario: Scenario, sig: ExpectedSignal, lo: int, hi: int) -> float:
    """The value of a labelled signal over [lo, hi) ns, from the raw tables."""
    window = f"epoch_ns(start_time) >= {lo} AND epoch_ns(start_time) < {hi}"
    op = f"service_name = '{sig.service}' AND span_name = '{sig.operation}'"
    client_only = sig.operation and scenario.operation(f"{sig.service}:{sig.operation}").kind in ("db", "cache")
    kind = "span_kind = 'CLIENT'" if client_only else "span_kind = 'SERVER'"
    q: str
    if sig.signal in ("latency_p50", "latency_p99"):
        p = 0.5 if sig.signal == "latency_p50" else 0.99
        q = f"SELECT quantile_cont(duration_ns, {p}) FROM spans WHERE {op} AND {kind} AND {window}"
    elif sig.signal == "error_ratio":
        q = f"SELECT avg((status_code = 'ERROR')::INT) FROM spans WHERE {op} AND {kind} AND {window}"
    elif sig.signal == "rate":
        q = f"SELECT count(*) FROM spans WHERE {op} AND {kind} AND {window}"
    elif sig.signal == "queue_depth":
        q = (
            f"SELECT avg(value) FROM metric_points WHERE metric_name = 'queue.depth' AND service_name = "
            f"'{sig.service}' AND attributes->>'operation' = '{sig.operation}' AND epoch_ns(time) >= {lo} "
            f"AND epoch_ns(time) < {hi}"
        )
    elif sig.signal == "trace_roots":
        q = f"SELECT count(*) FROM spans WHERE service_name = '{sig.service}' AND parent_span_id IS NULL AND {window}"
    elif sig.signal == "log_template":
        prefix = (sig.detail or "").split("{")[0]
        q = (
            f"SELECT count(*) FROM logs WHERE service_name = '{sig.service}' AND starts_with(body, '{prefix}') "
            f"AND epoch_ns(time) >= {lo} AND epoch_ns(time) < {hi}"
        )
    elif sig.signal == "attribute_contract":
        q = (
            f"SELECT count(*) FILTER (WHERE json_type(attributes, '$.\"{sig.detail}\"') = 'VARCHAR') * 1000 + "
            f"count(*) FILTER (WHERE json_type(attributes, '$.\"{sig.detail}\"') IS NOT NULL) FROM spans "
            f"WHERE {op} AND span_kind = 'SERVER' AND {window}"
        )
    elif sig.signal == "call_edge":
        callee_service, _, callee_op = (sig.detail or "").partition(":")
        q = (
            f"SELECT count(*) FROM spans c JOIN spans p ON c.parent_span_id = p.span_id WHERE c.span_kind = "
            f"'CLIENT' AND c.service_name = '{callee_service}' AND c.span_name = '{callee_op}' AND "
            f"p.service_name = '{sig.service}' AND p.span_name = '{sig.operation}' AND "
            f"epoch_ns(c.start_time) >= {lo} AND epoch_ns(c.start_time) < {hi}"
        )
    elif sig.signal == "histogram_p50":
        q = (
            f"SELECT median(duration_ns) FROM spans WHERE service_name = '{sig.service}' AND "
            f"span_kind = 'INTERNAL' AND {window}"
        )
    else:
        raise AssertionError(f"no measurement for {sig.signal}")
    row = con.execute(q).fetchone()
    return float(row[0] or 0.0) if row else 0.0


def _moved(before: float, during: float, direction: str) -> bool:
    if direction == "up":
        return during > before * 1.05 + 1e-9
    if direction == "down":
        return during < before * 0.95
    if direction == "appear":
        return before == 0 and during > 0
    if direction == "disappear":
        return before > 0 and during == 0
    return before != during  # "change"


FAULT_SCENARIOS = [n for n in library() if load_scenario(n).faults and n != "slow-drift"]
SLOW_SCENARIOS = {"combo-saturation-leak"}
"""Simulated at full load for hours (90-130 s, the suite's longest test): run with ``-m slow``; the
other saturation scenarios keep the same check in the default suite."""


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_SCENARIOS else n for n in FAULT_SCENARIOS]
)
def test_every_fault_moves_its_labelled_signals(tmp_path: Path, name: str) -> None:
    scenario = load_scenario(name)
    if not any(f.kind == "capacity_saturation" for f in scenario.faults):  # saturation needs the real load
        arrivals = scenario.arrivals.model_copy(update={"rate_per_s": min(scenario.arrivals.rate_per_s, 20.0)})
        scenario = scenario.model_copy(update={"arrivals": arrivals})
    first = min(f.start_min for f in scenario.faults)
    span = 60 if any(f.kind == "batch_shift" for f in scenario.faults) else 40
    kinds = {f.kind for f in scenario.faults}
    lead = 180 if "slow_drift" in kinds else 90 if kinds & {"capacity_saturation", "batch_shift"} else span
    path = tmp_path / f"{name}.duckdb"
    store = Store(path)
    try:
        summary = simulate(
            scenario,
            StoreSink(store),
            hours=(max(f.start_min for f in scenario.faults) + lead) / 60,
            from_minute=int(first - span),
            seed=11,
        )
    finally:
        store.close()
    con = duckdb.connect(str(path), read_only=True)
    problems = []
    for label in summary.truth.faults:
        before = (label.start_ns - span * 60_000_000_000, label.start_ns)
        during = (label.start_ns + (lead - span) * 60_000_000_000, label.start_ns + lead * 60_000_000_000)
        for sig in label.expected:
            b, d = _measure(con, scenario, sig, *before), _measure(con, scenario, sig, *during)
            if not _moved(b, d, sig.direction):
                problems.append(f"{label.kind}: {sig.signal} {sig.service}:{sig.operation} {sig.direction}: {b} -> {d}")
    con.close()
    assert problems == []


def test_slow_drift_creeps_up(tmp_path: Path) -> None:
    scenario = load_scenario("slow-drift")
    fast = scenario.model_copy(update={"faults": [scenario.faults[0].model_copy(update={"magnitude": 2.0})]})
    path = _run(tmp_path, fast, 240, from_minute=30)
    con = duckdb.connect(str(path), read_only=True)
    hourly = con.execute(
        "SELECT date_trunc('hour', start_time) h, median(duration_ns) FROM spans WHERE service_name = 'catalog' "
        "AND span_name = 'GetProduct' AND span_kind = 'SERVER' GROUP BY h ORDER BY h"
    ).fetchall()
    con.close()
    medians = [m for _, m in hourly]
    assert all(b > a for a, b in itertools.pairwise(medians[1:])), medians
