"""End to end: simulated faults -> rollups -> detectors -> findings."""

from __future__ import annotations

from pathlib import Path

from analysis import Window, rollup_all
from detectors.run import DetectionConfig, detect
from simulator.run import DEFAULT_START_NS, simulate
from simulator.scenario import load_scenario
from simulator.sinks import StoreSink
from store.connection import Store
from store.findings import write_findings


def _scenario_findings(tmp_path: Path, name: str, rate: float) -> tuple[list[object], Store]:
    scenario = load_scenario(name)
    scenario = scenario.model_copy(update={"arrivals": scenario.arrivals.model_copy(update={"rate_per_s": rate})})
    store = Store(tmp_path / f"{name}.duckdb")
    simulate(scenario, StoreSink(store), hours=4.0, from_minute=-360, seed=5)
    con = store.cursor()
    rollup_all(con)
    import datetime as dt

    start = dt.datetime.fromtimestamp(DEFAULT_START_NS / 1e9, dt.UTC).replace(tzinfo=None)
    window = Window(start + dt.timedelta(minutes=150), start + dt.timedelta(minutes=240), 60)
    found = detect(con, window, DetectionConfig(history_s=6 * 3600))
    return list(found), store


def test_error_burst_is_found_on_its_operation(tmp_path: Path) -> None:
    found, store = _scenario_findings(tmp_path, "error-burst", 20.0)
    hits = [f for f in found if f.signal.kind == "error_ratio" and f.signal.operation == "Reserve"]  # type: ignore[attr-defined]
    assert hits, [f.signal.label() for f in found]  # type: ignore[attr-defined]
    change = min(h.change_ns for h in hits if h.change_ns)  # type: ignore[attr-defined]
    fault_ns = DEFAULT_START_NS + 200 * 60_000_000_000
    assert fault_ns - 60_000_000_000 <= change <= fault_ns + 10 * 60_000_000_000
    counts = write_findings(store.cursor(), found, now_ns=fault_ns, resolve_after_s=1800)  # type: ignore[arg-type]
    assert counts["new"] == len(found)
    again = write_findings(store.cursor(), found, now_ns=fault_ns, resolve_after_s=1800)  # type: ignore[arg-type]
    assert again["new"] == 0 and again["updated"] == len(found)  # deduped by fingerprint
    later = write_findings(store.cursor(), [], now_ns=fault_ns + 3600 * 10**9, resolve_after_s=1800)
    assert later["resolved"] == len(found)  # quiet for an hour: resolved
    store.close()


def test_quiet_system_raises_nothing(tmp_path: Path) -> None:
    found, store = _scenario_findings(tmp_path, "webshop-quiet", 20.0)
    store.close()
    assert [f.signal.label() for f in found] == []  # type: ignore[attr-defined]
