"""Shrink a failing world to a minimal one that still fails the same way.

Greedy, in the spirit of delta debugging (Zeller & Hildebrandt 2002) and of property-test
shrinkers: each step proposes a smaller world and keeps it when the trial still shows a
failure of the same kind (a missed fault stays missed, a false alarm stays a false
alarm, ...). The order goes from what makes a regression cheap to what makes it clear:
fewer services (each non-essential service removed in turn), a shorter history (halved
down to ``mutate.MIN_HISTORY_MIN``), half the traffic, a shorter window (down to 45
minutes after the incident), then the smallest magnitude that still fails (halving the
distance to the stated minimum effect for a missed fault; halving a benign perturbation).
``max_trials`` bounds the cost: every proposal is a full trial.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from adversary import mutate
from adversary.trial import Failure, TrialConfig, TrialResult, run_trial
from simulator.worlds import INCIDENT_MIN, World

Runner = Callable[[World], TrialResult]


@dataclass(frozen=True)
class Shrunk:
    """The smallest failing world found, its trial, and how many trials the shrink cost."""

    world: World
    result: TrialResult
    trials: int
    steps: tuple[str, ...]


def same_failure(kind: str) -> Callable[[TrialResult], bool]:
    """Whether a trial still shows a failure of ``kind``."""

    def check(result: TrialResult) -> bool:
        return any(f.kind == kind for f in result.failures)

    return check


def default_runner(work_dir: Path | None, config: TrialConfig) -> Runner:
    def run(world: World) -> TrialResult:
        return run_trial(world, work_dir, config)

    return run


def _proposals(world: World, failure: Failure) -> list[tuple[str, Callable[[World], World | None]]]:
    steps: list[tuple[str, Callable[[World], World | None]]] = []
    for service in sorted(world.scenario.services):
        steps.append((f"drop service {service}", partial(_without, service=service)))
    steps.append(("halve history", lambda w: mutate.with_history(w, w.history_min // 2)))
    steps.append(("halve history", lambda w: mutate.with_history(w, w.history_min // 2)))
    steps.append(("halve traffic", lambda w: mutate.with_rate(w, 0.5)))
    after = world.window_end_min - INCIDENT_MIN
    steps.append(("shorten window", lambda w: mutate.with_window(w, INCIDENT_MIN + max(after // 2, 45))))
    if failure.kind == "missed":
        steps.append(("smaller fault", _toward_minimum))
        steps.append(("smaller fault", _toward_minimum))
    elif failure.kind in ("false_alarm", "no_abstain") and world.scenario.arrivals.episodes:
        steps.append(("smaller perturbation", lambda w: mutate.with_magnitude(w, 0.5)))
    return steps


def _without(world: World, service: str) -> World | None:
    return mutate.without_service(world, service)


def _toward_minimum(world: World) -> World | None:
    """Halfway between the fault's magnitude and its stated minimum effect (never below the minimum)."""
    size = mutate.magnitude_of(world)
    if size is None or size <= 1.05:
        return None
    return mutate.with_magnitude(world, (1.0 + (size - 1.0) / 2) / size)


def shrink(world: World, failure: Failure, run: Runner, *, max_trials: int = 12) -> Shrunk:
    """The smallest world (by the moves above) whose trial still shows ``failure.kind``."""
    still = same_failure(failure.kind)
    best = world
    best_result: TrialResult | None = None
    trials = 0
    taken: list[str] = []
    for name, propose in _proposals(world, failure):
        if trials >= max_trials:
            break
        candidate = propose(best)
        if candidate is None or candidate == best:
            continue
        trials += 1
        result = run(candidate)
        if still(result):
            best, best_result = candidate, result
            taken.append(name)
    if best_result is None:
        trials += 1
        best_result = run(best)
    return Shrunk(best, best_result, trials, tuple(taken))
