"""The search for blind spots: random worlds, then local search around the ones that failed.

``search(config)`` spends a budget of trials (each a whole world simulated, detected,
investigated and scored; ``adversary.trial``):

1. random sampling: worlds ``seed * 1000 + i`` from ``simulator.worlds.generate_world``;
2. local search: around each failing world, the moves most likely to make a failure of
   the same kind again or to show how far it reaches (a smaller fault, half the traffic,
   the incident twelve hours later, at the other end of the daily cycle, half the
   history); each move is a trial and may fail in its own way;
3. shrinking: one failure per (kind, fault or perturbation) is shrunk to a minimal world
   (``adversary.shrink``) and, when asked, written as a regression
   (``adversary.regressions``).

World seeds ``seed * 1000 .. seed * 1000 + 999`` belong to search seed ``seed``; the
benchmark's held-out worlds (10 000 - 10 099) are search seed 10, which tuning must never
use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from adversary import mutate
from adversary.regressions import Regression, write_regression
from adversary.shrink import Shrunk, shrink
from adversary.trial import Failure, TrialConfig, TrialResult, run_trial
from simulator.worlds import World, WorldConfig, generate_world

HELD_OUT_SEARCH_SEED = 10
"""Search seed whose worlds are the benchmark's held-out worlds (10 000 - 10 099)."""
SEEDS_PER_SEARCH = 1000


@dataclass(frozen=True)
class SearchConfig:
    """How much to search, where, and what to do with what is found."""

    budget: int
    seed: int = 0
    world: WorldConfig = field(default_factory=WorldConfig)
    trial: TrialConfig = field(default_factory=TrialConfig)
    local_share: float = 0.3
    """Share of the budget for the local search around failures (the rest samples at random)."""
    shrink_trials: int = 8
    """Trials one shrink may spend (they come on top of the budget)."""
    shrink_max: int = 5
    """Failures shrunk (one per kind of failure and of world)."""
    workers: int = 1
    regressions: Path | None = None
    """Write the shrunk failures as regressions into this directory."""


@dataclass(frozen=True)
class Found:
    """A failure and the trial and world that showed it."""

    world: World
    failure: Failure
    result: TrialResult
    origin: str
    shrunk: Shrunk | None = None
    regression: Regression | None = None


@dataclass(frozen=True)
class SearchReport:
    results: tuple[TrialResult, ...]
    found: tuple[Found, ...]
    trials: int


_MOVES: tuple[tuple[str, Callable[[World], World]], ...] = (
    ("smaller fault", lambda w: mutate.with_magnitude(w, 0.7)),
    ("half the traffic", lambda w: mutate.with_rate(w, 0.5)),
    ("12 h later", lambda w: mutate.with_start_shift(w, 12.0)),
    ("half the history", lambda w: mutate.with_history(w, w.history_min // 2)),
)


def world_seeds(seed: int, count: int) -> list[int]:
    """The first ``count`` world seeds of search seed ``seed``."""
    if count > SEEDS_PER_SEARCH:
        raise ValueError(f"a search seed has {SEEDS_PER_SEARCH} worlds; budget {count} is more")
    return [seed * SEEDS_PER_SEARCH + i for i in range(count)]


def _trial(args: tuple[World, TrialConfig]) -> TrialResult:
    world, config = args
    return run_trial(world, None, config)


def _run_all(worlds: list[World], config: TrialConfig, workers: int) -> Iterator[TrialResult]:
    if workers <= 1:
        for w in worlds:
            yield run_trial(w, None, config)
        return
    with ProcessPoolExecutor(workers) as pool:
        yield from pool.map(_trial, [(w, config) for w in worlds])


def run_many(worlds: list[World], config: TrialConfig, workers: int = 1) -> list[TrialResult]:
    """Trials of ``worlds`` in order (in ``workers`` processes)."""
    return list(_run_all(worlds, config, workers))


def _class(found: Found) -> tuple[str, str]:
    return found.failure.kind, found.result.subject


def search(config: SearchConfig, progress: Callable[[str], None] | None = None) -> SearchReport:
    """Spend ``config.budget`` trials looking for failures; shrink and write some (see the module docstring)."""
    say = progress or (lambda _: None)
    n_random = max(1, round(config.budget * (1.0 - config.local_share)))
    worlds = [generate_world(s, config.world) for s in world_seeds(config.seed, n_random)]
    results: list[TrialResult] = []
    found: list[Found] = []
    for world, result in zip(worlds, _run_all(worlds, config.trial, config.workers), strict=True):
        results.append(result)
        say(_line(result, "random"))
        found += [Found(world, f, result, "random") for f in result.failures]
    local: list[tuple[World, str]] = []
    failing = list({id(f.world): f.world for f in found}.values())
    for world in failing:
        for name, move in _MOVES:
            local.append((move(world), name))
    local = local[: config.budget - n_random]
    for (world, name), result in zip(local, _run_all([w for w, _ in local], config.trial, config.workers), strict=True):
        results.append(result)
        say(_line(result, f"local: {name}"))
        found += [Found(world, f, result, f"local: {name}") for f in result.failures]
    trials = len(results)
    out: list[Found] = []
    shrunk_classes: set[tuple[str, str]] = set()
    for item in found:
        cls = _class(item)
        if cls in shrunk_classes or len(shrunk_classes) >= config.shrink_max:
            out.append(item)
            continue
        shrunk_classes.add(cls)
        say(f"shrinking world {item.world.seed}: {item.failure.kind} ({item.failure.detail[:80]})")
        small = shrink(item.world, item.failure, lambda w: run_trial(w, None, config.trial),
                       max_trials=config.shrink_trials)  # fmt: skip
        trials += small.trials
        regression = None
        if config.regressions is not None:
            same = [f for f in small.result.failures if f.kind == item.failure.kind] or [item.failure]
            regression = write_regression(config.regressions, small.world, same[0])
            say(f"  wrote {config.regressions / regression.file} ({', '.join(small.steps) or 'no smaller world'})")
        out.append(replace(item, shrunk=small, regression=regression))
    return SearchReport(tuple(results), tuple(out), trials)


def _line(r: TrialResult, origin: str) -> str:
    kinds = sorted({f.kind for f in r.failures})
    return (f"world {r.seed:6d} {r.category:6s} {r.subject:20s} findings {len(r.findings):3d} "
            f"rank {r.rank if r.rank is not None else '-'}  {', '.join(kinds) or 'ok'}  [{origin}]")  # fmt: skip
