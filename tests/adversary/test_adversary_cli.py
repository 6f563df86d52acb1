"""``driftscope adversary``: the real CLI, in a subprocess, on small worlds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from simulator.scenario import load_scenario
from simulator.worlds import WorldConfig, generate_world


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controller", *args], capture_output=True, text=True,
                          timeout=timeout, env=os.environ.copy(), check=False)  # fmt: skip


def test_world_prints_a_scenario_file_that_loads(tmp_path: Path) -> None:
    out = tmp_path / "w.toml"
    done = _cli("adversary", "world", "42", "--out", str(out))
    assert done.returncode == 0, done.stderr
    expected = generate_world(42, WorldConfig(rate_per_s=(1.0, 200.0), history_h=(6.0, 48.0), spans_max=2e6))
    assert load_scenario(out) == expected.scenario  # the CLI's defaults
    printed = _cli("adversary", "world", "42")
    assert printed.returncode == 0 and "# world 42:" in printed.stdout


def test_bad_arguments_are_named() -> None:
    done = _cli("adversary", "run", "--budget", "1", "--history-hours", "nope")
    assert done.returncode == 2 and "--history-hours" in done.stderr
    assert _cli("adversary", "run").returncode == 2  # --budget is required


def test_a_one_world_search_runs_end_to_end(tmp_path: Path) -> None:
    done = _cli("adversary", "run", "--budget", "1", "--seed", "3", "--max-rate", "2", "--history-hours", "3,3",
                "--spans-max", "100000", "--shrink-trials", "0", "--format", "json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["trials"] >= 1
    assert set(report["failures"]) >= {"missed", "false_alarm", "wrong_rank", "no_abstain", "budget", "error"}
    assert all(f["world"] == 3000 for f in report["found"])
