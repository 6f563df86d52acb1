"""End to end: simulated faults -> rollups -> detectors -> findings, and detect-series."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis import Window, rollup_all
from collector.store import Store
from detectors.findings import write_findings
from detectors.run import DetectionConfig, detect
from simulator.run import DEFAULT_START_NS, simulate
from simulator.scenario import load_scenario
from simulator.sinks import StoreSink


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


def test_detect_series_cli_handles_iso_epoch_gaps_and_irregular_sampling(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    t = np.cumsum(rng.integers(50, 70, 2000))  # irregular ~1-minute sampling, epoch seconds
    v = 250.0 + rng.normal(0, 5, 2000)
    v[1500:] += 60.0
    keep = np.ones(2000, bool)
    keep[300:360] = False  # a gap
    rows = "\n".join(f"{int(1_700_000_000 + ti)},{vi:.3f}" for ti, vi in zip(t[keep], v[keep], strict=True))
    src = tmp_path / "series.csv"
    src.write_text("timestamp,value\n" + rows + "\n")
    out = tmp_path / "out.csv"
    env = {**os.environ}
    result = subprocess.run(
        [sys.executable, "-m", "controller", "detect-series", "--input", str(src), "--output", str(out)],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "timestamp,value,score,alert"
    alerts = np.array([int(line.rsplit(",", 1)[1]) for line in lines[1:]])
    assert alerts[:1400].sum() == 0
    assert alerts[1440:].mean() > 0.5
    iso = tmp_path / "iso.csv"
    iso.write_text("time,v\n2026-01-01 00:00:00,1\n2026-01-01T00:01:00Z,2\n2026-01-01 00:02:00,x\n")
    bad = subprocess.run(
        [sys.executable, "-m", "controller", "detect-series", "--input", str(iso)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode != 0 and "'x' is not a number" in bad.stderr


@pytest.mark.parametrize("text", ["timestamp,value\nyesterday,1\n", "just one column\n1\n"])
def test_detect_series_rejects_bad_input_clearly(tmp_path: Path, text: str) -> None:
    src = tmp_path / "bad.csv"
    src.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "controller", "detect-series", "--input", str(src)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "timestamp" in result.stderr or "header" in result.stderr
