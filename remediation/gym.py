"""The gym's remediation round: investigate up to the patch time, apply the first proposed patch, judge it.

The world runs as in ``remediation.whatif`` up to the patch minute (the alert plus a
reaction delay), into two stores at once. The policy investigates the counterfactual
store, which at that moment holds exactly what an on-call engineer would have seen: the
incident window runs from ``lookback_min`` before the alert to the patch time, nothing
after it. The report's first patch is resolved against the world (a patch naming what the
world lacks scores as ``invalid``, nothing applied), the run is forked there, and the test
runner judges both futures. Scores: the diagnosis rank (as ``investigations.gym``), the
verdict of patch 1 (fixed@1), whether it harmed, and the time to recovery.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from analysis import rollup_all
from investigations.config import InvestigationsConfig
from investigations.environment import Trigger
from investigations.gym import SKIPPED, rank_of
from investigations.policy import Policy
from investigations.run import investigate
from investigations.snapshot import IncidentWindow
from remediation.runner import NS_PER_MIN, RunnerResult
from remediation.whatif import Timing, judge_fork, plan_minutes, short
from simulator.fork import Run
from simulator.patches import PatchError, resolve
from simulator.run import DEFAULT_START_NS
from simulator.scenario import Scenario, load_scenario
from simulator.sinks import StoreSink
from store import Store


@dataclass(frozen=True)
class RemediationScore:
    """One scenario's remediation round."""

    scenario: str
    rank: int | None
    patches: int
    patch: str
    """The first proposed patch in words ('-' when none)."""
    verdict: str
    """fixed, not fixed, harmful, invalid (the patch does not fit the world) or no patch."""
    ttr_min: float | None
    broken_before: bool | None
    """Whether the runner saw the incident in the unpatched future (None: no patch was judged)."""
    wall_s: float
    status: str
    result: RunnerResult | None = None
    rows: int = 0
    """Rows the unpatched future holds (spans, metric points, logs; the patched one is alike)."""

    @property
    def fixed(self) -> bool:
        return self.verdict == "fixed"

    @property
    def harmful(self) -> bool:
        return self.verdict == "harmful"


def run_remediation(
    scenario: str | Scenario,
    policy: Policy,
    work_dir: str | Path,
    *,
    config: InvestigationsConfig | None = None,
    rate_per_s: float = 8.0,
    lookback_min: int = 20,
    seed: int = 3,
    timing: Timing | None = None,
) -> RemediationScore:
    """Investigate ``scenario`` with ``policy`` up to the patch time, apply its first patch, judge it."""
    name = scenario if isinstance(scenario, str) else scenario.name
    if name in SKIPPED:
        raise ValueError(f"scenario {name!r} is not in the gym: {SKIPPED[name]}")
    config = config or InvestigationsConfig()
    timing = timing or Timing()
    sc = short(load_scenario(scenario) if isinstance(scenario, str) else scenario, rate_per_s)
    minutes = plan_minutes(sc, None, timing)
    work = Path(work_dir) / name
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    stores = (Store(work / "counterfactual.duckdb"), Store(work / "patched.duckdb"))
    try:
        run = Run(sc, from_minute=minutes.start, seed=seed, start_ns=sc.start_ns(DEFAULT_START_NS))
        run.advance(minutes.patch, [StoreSink(s) for s in stores])
        rollup_all(stores[0].cursor())

        def ns(m: int) -> int:
            return run.start_ns + m * NS_PER_MIN

        start_ns = ns(minutes.alert) - lookback_min * NS_PER_MIN
        baseline_s = min(config.baseline_s, (start_ns - ns(minutes.start)) / 1e9)
        window = IncidentWindow.around(start_ns, ns(minutes.patch), baseline_s)
        trigger = Trigger("gym", f"gym {name}: alert at scenario minute {minutes.alert}", fingerprint=f"gym:{name}")
        outcome = investigate(stores[0], trigger, window, policy, config, out_dir=work / "investigations")
        rank = rank_of(outcome.report, run.summary(minutes.end / 60).truth.faults)
        patches = outcome.report.patches
        if not patches:
            return RemediationScore(name, rank, 0, "-", "no patch", None, None, time.monotonic() - started,
                                    outcome.status)  # fmt: skip
        first = patches[0]
        try:
            resolve(first, sc, minutes.patch)
        except PatchError as exc:
            return RemediationScore(name, rank, len(patches), first.describe(), "invalid", None, None,
                                    time.monotonic() - started, f"{outcome.status}; {str(exc)[:200]}")  # fmt: skip
        result = judge_fork(run, first, sc, minutes, stores)
        rows = sum(run.totals.values())
    finally:
        for s in stores:
            s.close()
    return RemediationScore(name, rank, len(patches), first.describe(), result.verdict, result.ttr_min,
                            result.broken_before, time.monotonic() - started, outcome.status, result, rows)  # fmt: skip
