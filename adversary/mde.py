"""Minimum detectable effect per fault kind and traffic: what driftscope cannot see, measured.

For each fault kind and each request rate at the faulty operation, fault worlds are
generated (seeds ``MDE_SEED * 1000 + ...``, never the benchmark's), their traffic scaled
so that the target operation serves the requested rate, and the fault's magnitude set to
a multiple of the stated minimum effect (``simulator.world_faults.MIN_EFFECT``), from
small to large. The minimum detectable effect of a cell is the smallest multiple at
which at least ``detect_share`` of the worlds are detected (a finding names an expected
signal in time, ``adversary.score``); ``None`` when even the largest multiple is missed.
A batch job's traffic is its schedule, not a request rate: its rows use the world's jobs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from adversary import mutate
from adversary.trial import TrialConfig, TrialResult, run_trial
from simulator.labels import visits_per_request
from simulator.plan import Plan
from simulator.world_faults import DRIFT_LEVEL_MIN, MIN_EFFECT
from simulator.worlds import World, WorldConfig, generate_world

MDE_SEED = 20
"""Search seed of the worlds measured here (20 000 - 20 999)."""
KINDS = ("latency_regression", "dependency_slowdown", "slow_drift", "error_burst", "retry_storm", "batch_shift")
MULTIPLES = (0.25, 0.5, 1.0, 2.0, 4.0)
RATES = (0.2, 1.0, 5.0)
"""Requests per second at the faulty operation."""


@dataclass(frozen=True)
class MdeConfig:
    kinds: tuple[str, ...] = KINDS
    rates: tuple[float, ...] = RATES
    multiples: tuple[float, ...] = MULTIPLES
    worlds: int = 3
    detect_share: float = 2 / 3
    history_h: float = 8.0
    after_min: float = 90.0
    trial: TrialConfig = field(default_factory=lambda: TrialConfig(investigate=False))


@dataclass(frozen=True)
class Cell:
    kind: str
    rate_per_s: float
    mde: float | None
    """Smallest multiple of the stated minimum effect detected in ``detect_share`` of the worlds."""
    tried: tuple[tuple[float, int, int], ...]
    """(multiple, worlds detected, worlds) per level tried."""


MIN_VISITS = 0.3
"""Worlds whose faulty operation serves fewer calls per request are passed over (5 req/s at it would take
more than 17 requests/s at the edge: slow to simulate, and nothing more to learn)."""


def _worlds(kind: str, first: int, config: MdeConfig) -> list[World]:
    """``config.worlds`` fault worlds of ``kind`` whose target is busy enough, from seed ``first`` on."""
    wc = WorldConfig(shares=(0.0, 0.0, 1.0), hostile=0.0, fault_kinds=(kind,), rate_per_s=(5.0, 50.0),
                     history_h=(config.history_h, config.history_h),
                     incident_min=(config.after_min, config.after_min))  # fmt: skip
    out: list[World] = []
    seed = MDE_SEED * 1000 + first
    while len(out) < config.worlds:
        world = generate_world(seed, wc)
        seed += 1
        fault = world.scenario.faults[0]
        plan = Plan.compile(world.scenario)
        if kind == "batch_shift":  # the case: a job every 10 minutes, 45 s a run
            jobs = [j.model_copy(update={"every_min": 10, "duration": j.duration.model_copy(
                update={"median_ms": 45_000.0})}) if j.name == fault.target else j
                for j in world.scenario.batch_jobs]  # fmt: skip
            out.append(world.with_scenario(world.scenario.model_copy(update={"batch_jobs": jobs})))
        elif fault.target in plan.op_index and visits_per_request(plan)[plan.op_index[fault.target]] >= MIN_VISITS:
            out.append(world)
    return out


def at_target_rate(world: World, rate_per_s: float) -> World:
    """``world`` with its traffic scaled so that the fault's target operation serves ``rate_per_s``."""
    fault = world.scenario.faults[0]
    plan = Plan.compile(world.scenario)
    if fault.target not in plan.op_index:
        return world  # a batch job or the arrivals: no target operation
    visits = float(visits_per_request(plan)[plan.op_index[fault.target]])
    now = visits * world.scenario.arrivals.rate_per_s
    return mutate.with_rate(world, rate_per_s / now) if now > 0 else world


def with_multiple(world: World, multiple: float) -> World:
    """``world`` with its fault at ``multiple`` x the stated minimum effect."""
    size = mutate.magnitude_of(world)
    return world if size is None else mutate.with_magnitude(world, multiple / size)


def measure(config: MdeConfig, run: Callable[[list[World]], list[TrialResult]] | None = None,
            progress: Callable[[str], None] | None = None) -> list[Cell]:  # fmt: skip
    """The table: one cell per (kind, rate) (see the module docstring)."""
    runner = run or (lambda worlds: [run_trial(w, None, config.trial) for w in worlds])
    say = progress or (lambda _: None)
    cells: list[Cell] = []
    for k, kind in enumerate(config.kinds):
        bases = _worlds(kind, k * 100, config)
        for rate in config.rates if kind != "batch_shift" else (math.nan,):
            tried: list[tuple[float, int, int]] = []
            mde = None
            for multiple in config.multiples:
                worlds = [with_multiple(b if np.isnan(rate) else at_target_rate(b, rate), multiple) for b in bases]
                results = runner(worlds)
                hits = sum(1 for r in results if r.detected)
                tried.append((multiple, hits, len(results)))
                say(f"{kind:20s} {rate:6.2f} req/s  x{multiple:<5g} detected {hits}/{len(results)}")
                if hits >= config.detect_share * len(results):
                    mde = multiple
                    break
            cells.append(Cell(kind, rate, mde, tuple(tried)))
    return cells


def stated_unit(kind: str) -> float:
    """The stated minimum effect of ``kind`` in the unit the table reads: ``MIN_EFFECT``, except a slow
    drift's, which is the level it has reached by the end of the window (``DRIFT_LEVEL_MIN``)."""
    return DRIFT_LEVEL_MIN if kind == "slow_drift" else MIN_EFFECT[kind]


def describe(cell: Cell) -> str:
    """The cell as a user reads it: the effect in the unit of ``stated_unit``."""
    unit = stated_unit(cell.kind)
    if cell.mde is None:
        return f"> {MULTIPLES[-1] * unit:g}"
    return f"{cell.mde * unit:g}"
