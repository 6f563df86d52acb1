"""Explicit zero minutes: an operation that goes silent after traffic rolls up as a rate of 0, not a gap."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from analysis import RollupConfig, Window, rollup_all, signals
from detectors.run import DetectionConfig, detect
from simulator.run import DEFAULT_START_NS, simulate
from simulator.scenario import parse_scenario
from simulator.sinks import StoreSink
from store.connection import Store

OUTAGE = """
extends = "mini"
name = "mini-outage"
[[faults]]
kind = "call_edge"
target = "api:GET /items"
to = "worker:List"
change = "remove"
start_min = 30
end_min = 55
"""
START = dt.datetime.fromtimestamp(DEFAULT_START_NS / 1e9, dt.UTC).replace(tzinfo=None)


def _store(tmp: Path, history_min: int = 0) -> Store:
    store = Store(tmp / "outage.duckdb")
    simulate(parse_scenario(OUTAGE), StoreSink(store), hours=70 / 60, from_minute=-history_min, seed=5)
    return store


def _rate(store: Store) -> np.ndarray:
    """worker:List's rate per minute of the run (NaN where the rollup has no row: a gap)."""
    frame = signals(store.cursor(), "rate", Window(START, START + dt.timedelta(minutes=70), 60),
                    service="worker", operation="List")  # fmt: skip
    out = np.full(70, np.nan)
    minutes = ((frame["time"].dt.epoch("ns").to_numpy() - DEFAULT_START_NS) // 60_000_000_000).astype(int)
    out[minutes] = frame["value"].to_numpy()
    return out


def test_a_silent_operation_rolls_up_as_explicit_zeros(tmp_path: Path) -> None:
    store = _store(tmp_path)
    try:
        con = store.cursor()
        rollup_all(con)
        raw = con.execute("SELECT count(*) FROM spans").fetchone()
        assert raw == con.execute("SELECT sum(count) FROM rollup_spans").fetchone()  # zeros add nothing
        rate = _rate(store)
        assert np.all(rate[31:55] == 0.0) and np.all(rate[:29] > 0) and np.all(rate[56:] > 0)
        ratio = signals(con, "error_ratio", Window(START, START + dt.timedelta(minutes=70), 60),
                        service="worker", operation="List")  # fmt: skip
        silent = ratio.filter(ratio["samples"] == 0)
        assert silent.height >= 23 and silent["value"].is_nan().all()  # no requests, no ratio
        before = con.execute("SELECT count(*) FROM rollup_spans").fetchone()
        rollup_all(con)
        assert con.execute("SELECT count(*) FROM rollup_spans").fetchone() == before  # idempotent
    finally:
        store.close()


def test_silence_longer_than_the_horizon_becomes_a_gap(tmp_path: Path) -> None:
    store = _store(tmp_path)
    try:
        rollup_all(store.cursor(), RollupConfig(zero_fill_s=600))
        rate = _rate(store)
        assert np.all(rate[31:40] == 0.0)
        assert np.all(np.isnan(rate[42:54]))
    finally:
        store.close()


def test_a_total_outage_of_one_operation_is_found(tmp_path: Path) -> None:
    store = _store(tmp_path, history_min=240)
    try:
        con = store.cursor()
        rollup_all(con)
        window = Window(START, START + dt.timedelta(minutes=70), 60)
        found = detect(con, window, DetectionConfig(history_s=240 * 60))
        hits = [f for f in found if f.signal.kind == "rate" and f.signal.operation == "List"]
        assert hits, [f"{f.detector} {f.signal.label()}" for f in found]
        assert hits[0].after is not None and hits[0].before is not None and hits[0].after < 0.5 * hits[0].before
    finally:
        store.close()
