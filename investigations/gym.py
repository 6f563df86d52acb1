"""The gym: simulate a scenario, snapshot the store, run a policy, score it against the truth.

The run is short: the scenario starts ``history_min`` minutes before its first fault and
stops ``after_min`` minutes after it, at a capped arrival rate (saturation scenarios keep
their own rate, since the fault is the rate). An alert "fires" ``alert_delay_min`` after
the fault starts and looks back ``lookback_min``; the incident window runs from there to
``after_min`` after the fault, with ``baseline_s`` of baseline before it. Scores: the rank
of the first candidate naming a fault's root cause (service, and operation when the
truth has one), AC@1 and AC@3, steps, tokens, wall time, claims verified.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from analysis import rollup_all
from investigations.config import InvestigationsConfig
from investigations.environment import Trigger
from investigations.policy import Policy
from investigations.report import Report
from investigations.run import investigate
from investigations.snapshot import IncidentWindow
from simulator.labels import FaultLabel
from simulator.run import DEFAULT_START_NS, simulate
from simulator.scenario import Scenario, load_scenario
from simulator.sinks import StoreSink
from store.connection import Store

NS_PER_MIN = 60_000_000_000
SKIPPED = {"slow-drift": "a 1 %/day leak over 96 h is not an incident-window investigation"}


@dataclass(frozen=True)
class GymScore:
    scenario: str
    faults: int
    rank: int | None
    """1-based rank of the first candidate naming a root cause; None when none does."""
    steps: int
    tokens: int
    wall_s: float
    claims: int
    verified: int
    top: str
    status: str

    @property
    def at1(self) -> bool:
        return self.rank == 1

    @property
    def at3(self) -> bool:
        return self.rank is not None and self.rank <= 3


def matches(service: str, operation: str | None, fault: FaultLabel) -> bool:
    """Whether a candidate names the fault's root cause (operation only when the truth has one)."""
    if service != fault.root_cause_service:
        return False
    return fault.root_cause_operation is None or operation == fault.root_cause_operation


def rank_of(report: Report, faults: list[FaultLabel]) -> int | None:
    for i, c in enumerate(report.candidates, 1):
        if any(matches(c.service, c.operation, f) for f in faults):
            return i
    return None


def _short(scenario: Scenario, rate_per_s: float) -> Scenario:
    if any(f.kind == "capacity_saturation" for f in scenario.faults):
        return scenario
    arrivals = scenario.arrivals.model_copy(update={"rate_per_s": min(rate_per_s, scenario.arrivals.rate_per_s)})
    return scenario.model_copy(update={"arrivals": arrivals})


def run_gym(
    scenario_name: str,
    policy: Policy,
    work_dir: str | Path,
    *,
    config: InvestigationsConfig | None = None,
    rate_per_s: float = 8.0,
    history_min: int = 150,
    after_min: int = 40,
    alert_delay_min: int = 15,
    lookback_min: int = 20,
    seed: int = 3,
) -> GymScore:
    """Simulate ``scenario_name`` briefly, investigate its first fault with ``policy``, score the report."""
    if scenario_name in SKIPPED:
        raise ValueError(f"scenario {scenario_name!r} is not in the gym: {SKIPPED[scenario_name]}")
    config = config or InvestigationsConfig()
    scenario = _short(load_scenario(scenario_name), rate_per_s)
    if not scenario.faults:
        raise ValueError(f"scenario {scenario_name!r} has no fault to investigate")
    first = min(f.start_min for f in scenario.faults)
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    store = Store(work / f"{scenario_name}.duckdb")
    try:
        summary = simulate(scenario, StoreSink(store), hours=(first + after_min) / 60,
                           from_minute=int(first - history_min), seed=seed)  # fmt: skip
        rollup_all(store.cursor())
        alert_ns = DEFAULT_START_NS + int((first + alert_delay_min) * NS_PER_MIN)
        start_ns = alert_ns - lookback_min * NS_PER_MIN
        end_ns = DEFAULT_START_NS + int((first + after_min) * NS_PER_MIN)
        baseline_s = min(config.baseline_s, (start_ns - DEFAULT_START_NS - (first - history_min) * NS_PER_MIN) / 1e9)
        window = IncidentWindow.around(start_ns, end_ns, baseline_s)
        trigger = Trigger("gym", f"gym {scenario_name}: alert at scenario minute {first + alert_delay_min:g}",
                          fingerprint=f"gym:{scenario_name}")  # fmt: skip
        started = time.monotonic()
        outcome = investigate(store, trigger, window, policy, config, out_dir=work / "investigations")
        wall = time.monotonic() - started
    finally:
        store.close()
    faults = summary.truth.faults
    top = outcome.report.candidates[0] if outcome.report.candidates else None
    return GymScore(
        scenario_name, len(faults), rank_of(outcome.report, faults), outcome.steps, outcome.tokens, wall,
        len(outcome.report.claims), sum(1 for c in outcome.report.claims if c.verified),
        f"{top.service} {top.operation or ''} ({top.mechanism})" if top else "-", outcome.status,
    )  # fmt: skip
