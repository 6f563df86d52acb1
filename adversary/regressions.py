"""Blind spots as regression tests: a shrunk world written as a scenario TOML plus a manifest entry.

``tests/regressions/`` holds one scenario file per blind spot (``load_scenario`` reads it;
``driftscope simulate --scenario FILE`` replays it) and ``regressions.toml``, the
manifest the test suite reads: per file the simulation seed, the world's category, what
must hold (``expect``) and whether it holds yet (``status``: ``fixed``, or ``open`` with
the reason, which the test marks as an expected failure, strictly). Expectations:

- ``no_false_alarm``: no finding at all (quiet and benign worlds);
- ``detected``: a finding names one of the fault's expected signals in time;
- ``root_cause_first``: the playbook ranks the root cause first;
- ``abstain``: the playbook names no root cause (a benign alert);
- ``no_error``: detection and investigation run without an error.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from adversary.trial import Failure, TrialResult
from simulator.scenario import load_scenario
from simulator.scenario_toml import dump_scenario
from simulator.worlds import Category, World

MANIFEST = "regressions.toml"
EXPECT = {
    "false_alarm": "no_false_alarm",
    "imprecise": "no_false_alarm",
    "missed": "detected",
    "wrong_rank": "root_cause_first",
    "no_abstain": "abstain",
    "budget": "no_error",
    "error": "no_error",
}


@dataclass(frozen=True)
class Regression:
    """One manifest entry."""

    file: str
    seed: int
    category: str
    expect: str
    status: str
    found: str
    perturbation: str | None = None
    reason: str = ""

    def world(self, directory: Path) -> World:
        scenario = load_scenario(directory / self.file)
        category: Category = "fault" if self.category == "fault" else "benign" if self.category == "benign" else "quiet"
        return World.from_scenario(scenario, seed=self.seed, category=category, perturbation=self.perturbation)


def holds(expect: str, result: TrialResult) -> bool:
    """Whether ``result`` meets the expectation ``expect`` (see the module docstring)."""
    kinds = {f.kind for f in result.failures}
    if expect == "no_false_alarm":
        return not kinds & {"false_alarm", "imprecise"}
    if expect == "detected":
        return bool(result.detected)
    if expect == "root_cause_first":
        return result.rank == 1
    if expect == "abstain":
        return bool(result.abstained)
    if expect == "no_error":
        return not kinds & {"error", "budget"}
    raise ValueError(f"unknown expectation {expect!r}")


def read_manifest(directory: Path) -> list[Regression]:
    """Every entry of ``directory/regressions.toml`` (empty when there is none)."""
    path = directory / MANIFEST
    if not path.is_file():
        return []
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return [Regression(**{k: v for k, v in e.items()}) for e in data.get("regression", [])]


def _entry(r: Regression) -> str:
    lines = ["[[regression]]"]
    for key, value in (("file", r.file), ("seed", r.seed), ("category", r.category),
                       ("perturbation", r.perturbation), ("expect", r.expect), ("status", r.status),
                       ("found", r.found), ("reason", r.reason)):  # fmt: skip
        if value is None or value == "":
            continue
        lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
    return "\n".join(lines)


def write_manifest(directory: Path, entries: list[Regression]) -> Path:
    path = directory / MANIFEST
    header = (
        "# Blind spots the adversary found (driftscope adversary run --write-regressions), shrunk to minimal\n"
        "# worlds. tests/regressions/test_regressions.py runs each file and checks `expect`; entries with\n"
        '# status = "open" are expected failures (strict) until fixed.\n'
    )
    path.write_text(header + "\n" + "\n\n".join(_entry(e) for e in entries) + "\n", encoding="utf-8")
    return path


def write_regression(directory: Path, world: World, failure: Failure, *, name: str | None = None) -> Regression:
    """Write ``world`` as ``directory/NAME.toml`` and add it to the manifest (status open until a run passes)."""
    directory.mkdir(parents=True, exist_ok=True)
    name = name or f"world-{world.seed}-{failure.kind.replace('_', '-')}"
    scenario = world.scenario.model_copy(update={"name": name, "description": f"adversary: {failure.detail[:200]}"})
    path = directory / f"{name}.toml"
    header = (f"# Found by the adversary in world {world.seed} ({world.category}"
              f"{', ' + (world.fault or world.perturbation or '') if world.fault or world.perturbation else ''}):\n"
              f"# {failure.kind}: {failure.detail[:300]}\n")  # fmt: skip
    path.write_text(header + dump_scenario(scenario), encoding="utf-8")
    entry = Regression(path.name, world.seed, world.category, EXPECT[failure.kind], "open",
                       f"{failure.kind}: {failure.detail[:300]}", world.perturbation)  # fmt: skip
    entries = [e for e in read_manifest(directory) if e.file != entry.file] + [entry]
    write_manifest(directory, entries)
    return entry
