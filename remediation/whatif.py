"""What if: apply a patch to a scenario at a minute, re-simulate from there, and run the test suite.

The run is the gym's: it starts ``history_min`` minutes before the first fault at a capped
arrival rate (saturation scenarios keep their own rate, since the fault is the rate). The
patch lands at ``at_min`` (default: the alert, ``alert_delay_min`` into the fault, plus a
``reaction_min`` reaction delay); the world is forked there (``simulator.fork``) and both
futures run ``settle_min + eval_min`` more minutes, or until the first fault ends. The
suite (``remediation.runner``) compares the post-patch window [at + settle, end) of both
futures with the ``baseline_min`` minutes before the fault.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from analysis import rollup_all
from remediation.runner import NS_PER_MIN, RunnerResult, Windows, run_suite
from simulator.fork import Run
from simulator.patches import Patch, resolve
from simulator.run import DEFAULT_START_NS
from simulator.scenario import Scenario
from simulator.sinks import StoreSink
from store import Store


@dataclass(frozen=True)
class Timing:
    """Minutes of a remediation run, relative to the first fault's start (see the module docstring)."""

    history_min: int = 150
    baseline_min: int = 60
    alert_delay_min: int = 15
    reaction_min: int = 5
    settle_min: int = 5
    eval_min: int = 30
    eval_min_min: int = 8
    """Shortest post-patch window worth judging, minutes (the fault must last that long after the patch)."""


@dataclass(frozen=True)
class Minutes:
    """Scenario minutes of one run: simulation start, baseline, patch, post window, end."""

    start: int
    baseline_start: int
    fault: int
    alert: int
    patch: int
    post_start: int
    end: int

    def windows(self, start_ns: int) -> Windows:
        def ns(m: int) -> int:
            return start_ns + m * NS_PER_MIN

        return Windows(
            ns(self.start), ns(self.baseline_start), ns(self.fault), ns(self.patch), ns(self.post_start), ns(self.end)
        )


@dataclass
class WhatIf:
    """One patch judged on one scenario."""

    scenario: str
    patch: Patch
    minutes: Minutes
    result: RunnerResult
    rows: dict[str, int]
    """Rows each future holds (the patched run's, shared past included)."""


def short(scenario: Scenario, rate_per_s: float) -> Scenario:
    """The scenario at an arrival rate capped at ``rate_per_s`` (saturation scenarios keep theirs)."""
    if any(f.kind == "capacity_saturation" for f in scenario.faults):
        return scenario
    arrivals = scenario.arrivals.model_copy(update={"rate_per_s": min(rate_per_s, scenario.arrivals.rate_per_s)})
    return scenario.model_copy(update={"arrivals": arrivals})


def plan_minutes(scenario: Scenario, at_min: float | None, timing: Timing) -> Minutes:
    """The run's minutes; ``ValueError`` naming ``at`` when the patch time leaves nothing to judge."""
    if not scenario.faults:
        raise ValueError(f"scenario {scenario.name!r} has no fault to remediate")
    first = min(scenario.faults, key=lambda f: f.start_min)
    fault = math.floor(first.start_min)
    alert = fault + timing.alert_delay_min
    patch = alert + timing.reaction_min if at_min is None else math.ceil(at_min)
    if patch <= fault:
        raise ValueError(f"at: minute {at_min:g} is not after the first fault's start (minute {fault})")
    end = min(math.floor(first.end_min), patch + timing.settle_min + timing.eval_min)
    if end - (patch + timing.settle_min) < timing.eval_min_min:
        raise ValueError(
            f"at: minute {patch} leaves under {timing.eval_min_min} minutes of the fault (it ends at minute "
            f"{first.end_min:g}) to judge after {timing.settle_min} minutes' settling"
        )
    start = fault - timing.history_min
    return Minutes(start, max(start, fault - timing.baseline_min), fault, alert, patch, patch + timing.settle_min, end)


def judge_forks(
    run: Run, patches: list[Patch], scenario: Scenario, minutes: Minutes, *, counterfactual: Store, patched: list[Store]
) -> list[RunnerResult]:
    """Fork ``run`` (advanced to the patch minute into every store) once per patch, finish every future, judge each.

    The unpatched future goes on in ``counterfactual``; patch ``i``'s in ``patched[i]``.
    """
    futures = [run.fork(resolve(p, scenario, minutes.patch)) for p in patches]
    run.advance(minutes.end, [StoreSink(counterfactual)])
    for future, store in zip(futures, patched, strict=True):
        future.advance(minutes.end, [StoreSink(store)])
    entry = [e.operation for e in scenario.entrypoints]
    windows = minutes.windows(run.start_ns)
    rollup_all(counterfactual.cursor())
    cf = counterfactual.cursor()
    out = []
    try:
        for store in patched:
            rollup_all(store.cursor())
            pt = store.cursor()
            try:
                out.append(run_suite(cf, pt, windows, entry))
            finally:
                pt.close()
    finally:
        cf.close()
    return out


def judge_fork(
    run: Run, patch: Patch, scenario: Scenario, minutes: Minutes, stores: tuple[Store, Store]
) -> RunnerResult:
    """``judge_forks`` for one patch (``stores``: counterfactual, patched)."""
    return judge_forks(run, [patch], scenario, minutes, counterfactual=stores[0], patched=[stores[1]])[0]


def whatif(
    scenario: Scenario,
    patch: Patch,
    work_dir: str | Path,
    *,
    at_min: float | None = None,
    rate_per_s: float = 8.0,
    seed: int = 3,
    timing: Timing | None = None,
) -> WhatIf:
    """Apply ``patch`` to ``scenario`` at ``at_min`` and judge it (``PatchError`` before anything runs)."""
    return whatifs(scenario, [patch], work_dir, at_min=at_min, rate_per_s=rate_per_s, seed=seed, timing=timing)[0]


def whatifs(
    scenario: Scenario,
    patches: list[Patch],
    work_dir: str | Path,
    *,
    at_min: float | None = None,
    rate_per_s: float = 8.0,
    seed: int = 3,
    timing: Timing | None = None,
) -> list[WhatIf]:
    """Each of ``patches`` applied alone to the same world at the same minute, judged against one counterfactual."""
    timing = timing or Timing()
    scenario = short(scenario, rate_per_s)
    minutes = plan_minutes(scenario, at_min, timing)
    for p in patches:
        resolve(p, scenario, minutes.patch)  # bad input stops here: nothing simulated, nothing applied
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    cf = Store(work / "counterfactual.duckdb")
    patched = [Store(work / f"patched-{i}.duckdb") for i in range(len(patches))]
    try:
        run = Run(scenario, from_minute=minutes.start, seed=seed, start_ns=scenario.start_ns(DEFAULT_START_NS))
        run.advance(minutes.patch, [StoreSink(s) for s in (cf, *patched)])
        results = judge_forks(run, patches, scenario, minutes, counterfactual=cf, patched=patched)
        rows = dict(run.totals)
    finally:
        for s in (cf, *patched):
            s.close()
    return [WhatIf(scenario.name, p, minutes, r, rows) for p, r in zip(patches, results, strict=True)]
