"""Seeded random worlds: systems, traffic and incidents nobody tuned a detector for.

``generate_world(seed)`` draws a whole scenario from one seed: a layered topology
(``simulator.world_topology``: depth 2-6, fan-out, HTTP/RPC/database/cache/queue/workflow/
external operations, async calls, retries, timeouts), a traffic shape (1-200 requests/s,
diurnal amplitude 0-0.8 peaking at any local hour, weekend factor 0.5-1.5, slow noise,
any time zone), service-time distributions, base error rates and telemetry habits (which
services export histograms, gauges, logs; which attributes). Servers are sized from the
traffic so that each operation's peak utilisation is known (0.15-0.6 of capacity).

Each world is one of three categories, drawn with ``WorldConfig.shares``:

- ``quiet``: nothing happens; any finding is a false alarm;
- ``benign``: a perturbation that must raise nothing: a traffic surge within capacity, a
  deploy that changes nothing, a new endpoint appearing, a daylight-saving shift, a holiday,
  tracing switched on at the incident (spans without history, metrics with it);
- ``fault``: one fault of any kind on a random target, magnitude from the stated minimum
  effect (``MIN_EFFECT``) up to four times it, a step or a ramp onset, at the traffic's
  peak or trough, on a weekday or a weekend.

Timeline (scenario minutes): history ``[-history_min, 0)``, window under test ``[0,
window_end)``; the incident (fault or perturbation) starts at minute ``INCIDENT_MIN`` (60),
so the window holds an hour of normal data before it. Optionally ``hostile`` telemetry
(prompt-injection text in logs and attributes, huge attribute values, odd unicode and
quotes in names) is mixed in, for the investigations.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from simulator.labels import visits_per_request
from simulator.plan import Plan
from simulator.scenario import Scenario
from simulator.world_faults import FAULT_KINDS, MIN_EFFECT, add_batch_job, draw_fault, draw_perturbation, utilisation
from simulator.world_hostile import make_hostile
from simulator.world_topology import Topology, draw_topology

__all__ = [
    "FAULT_KINDS",
    "INCIDENT_MIN",
    "MIN_EFFECT",
    "PERTURBATIONS",
    "Category",
    "World",
    "WorldConfig",
    "generate_world",
    "utilisation",
]

INCIDENT_MIN = 60
"""Scenario minute the fault or perturbation starts: an hour of normal data precedes it in the window."""
BASE_DATE = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
"""A Monday; worlds start on any day of the week after it."""
PERTURBATIONS = ("surge", "deploy", "endpoint", "dst", "holiday", "tracing")
Category = Literal["quiet", "benign", "fault"]


@dataclass(frozen=True)
class WorldConfig:
    """Ranges the generator draws from (log-uniform for rates, uniform otherwise)."""

    rate_per_s: tuple[float, float] = (1.0, 200.0)
    """Mean root arrival rate, requests/s."""
    services: tuple[int, int] = (3, 12)
    depth: tuple[int, int] = (2, 6)
    history_h: tuple[float, float] = (6.0, 48.0)
    """Hours of history before the window."""
    incident_min: tuple[float, float] = (60.0, 180.0)
    """Minutes the window runs after the incident starts."""
    shares: tuple[float, float, float] = (0.2, 0.3, 0.5)
    """Probabilities of the quiet, benign and fault categories."""
    hostile: float = 0.2
    """Probability that a world carries hostile telemetry."""
    spans_max: float | None = None
    """Cap on the spans a world simulates (history + window); the rate is lowered to fit and the world
    says so (``rate_capped``). None: no cap."""
    fault_kinds: tuple[str, ...] = FAULT_KINDS
    perturbations: tuple[str, ...] = PERTURBATIONS


@dataclass(frozen=True)
class World:
    """One generated world: the scenario to simulate and what it is meant to test."""

    seed: int
    scenario: Scenario
    category: Category
    perturbation: str | None
    """Benign worlds: surge, deploy, endpoint, dst, holiday or tracing."""
    history_min: int
    window_end_min: int
    """The window under test is [0, window_end_min) in scenario minutes."""
    hostile: bool
    rate_capped: bool
    notes: tuple[str, ...] = field(default_factory=tuple)
    """What the generator chose, in words (timing, peak or trough, weekday or weekend)."""

    @property
    def fault(self) -> str | None:
        return self.scenario.faults[0].kind if self.scenario.faults else None

    @property
    def incident_min(self) -> int:
        return INCIDENT_MIN

    def start_ns(self) -> int:
        """Scenario minute 0 in ns since the epoch."""
        return self.scenario.start_ns(0)

    def with_scenario(self, scenario: Scenario, **changes: object) -> World:
        """This world with another scenario (its timeline read from the scenario's hours and history)."""
        timeline = {"history_min": round(scenario.history_days * 1440), "window_end_min": round(scenario.hours * 60)}
        return replace(self, scenario=scenario, **{**timeline, **changes})  # type: ignore[arg-type]

    @classmethod
    def from_scenario(
        cls, scenario: Scenario, *, seed: int, category: Category, perturbation: str | None = None
    ) -> World:
        """A world around a scenario read from a file (window under test: its ``hours``; history: ``history_days``)."""
        return cls(
            seed=seed,
            scenario=scenario,
            category=category,
            perturbation=perturbation,
            history_min=round(scenario.history_days * 1440),
            window_end_min=round(scenario.hours * 60),
            hostile=False,
            rate_capped=False,
        )


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high)))) if high > low else low


def _scenario(topo: Topology, name: str, arrivals: dict[str, object], servers: dict[str, int]) -> Scenario:
    services: dict[str, object] = {}
    for s in topo.services:
        ops = {}
        for o in (o for o in topo.ops if o.service == s.name):
            st: dict[str, object] = {"dist": o.dist, "median_ms": o.median_ms, "sigma": o.sigma, "shape": o.shape}
            if o.tail_prob:
                st["tail_prob"] = o.tail_prob
            ops[o.name] = {
                "service_time": st,
                "servers": servers.get(o.ref, 1000),
                "error_rate": o.error_rate,
                "kind": o.kind,
                "method": o.method,
                "calls": o.calls,
                "logs": o.logs,
                "attributes": o.attributes,
                "dynamic_attributes": o.dynamic,
            }
        services[s.name] = {"version": s.version, "attributes": s.attributes, "operations": ops, "export": s.export}
    entry = [{"operation": r, "weight": w} for r, w in zip(topo.entry_refs, topo.entry_weights, strict=True)]
    return Scenario.model_validate(
        {
            "name": name,
            "description": "generated world",
            "arrivals": arrivals,
            "entrypoints": entry,
            "services": services,
        }
    )


def _size_servers(
    topo: Topology, name: str, arrivals: dict[str, object], peak_rate: float, rng: np.random.Generator
) -> Scenario:
    """The scenario with every operation's servers set for a drawn peak utilisation (0.15-0.6)."""
    draft = _scenario(topo, name, arrivals, {})
    load = utilisation(draft, peak_rate)  # at 1000 servers each
    servers = {}
    for o in topo.ops:
        busy = load[o.ref] * 1000.0  # erlangs at the peak
        target = float(rng.uniform(0.15, 0.6)) if o.kind != "external" else 0.1
        servers[o.ref] = int(min(10_000, max(1, math.ceil(busy / target))))
    return _scenario(topo, name, arrivals, servers)


def _spans_per_request(scenario: Scenario) -> float:
    plan = Plan.compile(scenario)
    visits = visits_per_request(plan)
    client_only = {"db", "cache", "external"}
    per_op = [v * ((0 if op.kind in client_only else 1) + 1) for op, v in zip(plan.ops, visits, strict=True)]
    return float(sum(per_op))


def _start(
    rng: np.random.Generator, arrivals: dict[str, object], notes: list[str], at: str | None = None
) -> dt.datetime:
    """Minute 0 (UTC) so that the incident falls at the traffic's peak, its trough or any hour, weekday or weekend."""
    peak = float(arrivals["peak_hour"])  # type: ignore[arg-type]
    timing = at or str(rng.choice(["peak", "trough", "any"]))
    local_hour = {"peak": peak, "trough": (peak + 12.0) % 24.0, "midnight": 0.0}.get(timing, float(rng.uniform(0, 24)))
    weekend = bool(rng.random() < 2 / 7)
    day = int(rng.choice([5, 6])) if weekend else int(rng.integers(0, 5))
    day += 7  # a week in, so any history fits after the base date
    offset_h = float(arrivals["utc_offset_h"])  # type: ignore[arg-type]
    incident_local = BASE_DATE + dt.timedelta(days=day, hours=local_hour)
    notes.append(f"incident at local {local_hour:04.1f} h ({timing}) on a {'weekend' if weekend else 'weekday'}")
    start = incident_local - dt.timedelta(hours=offset_h, minutes=INCIDENT_MIN)
    return start.replace(second=0, microsecond=0)


def _runs_enough(scenario: Scenario, window_end: int, notes: list[str]) -> tuple[Scenario, int]:
    """A batch job is judged on its runs: the window is stretched to hold four after the change (5 h at most)."""
    fault = scenario.faults[0]
    if fault.kind != "batch_shift":
        return scenario, window_end
    every = next(j.every_min for j in scenario.batch_jobs if j.name == fault.target)
    longer = min(INCIDENT_MIN + 300, max(window_end, INCIDENT_MIN + 4 * every + 5))
    if longer <= window_end:
        return scenario, window_end
    notes.append(f"window stretched to {longer} min: four runs of a job every {every} min")
    faults = [fault.model_copy(update={"end_min": float(longer)})]
    return scenario.model_copy(update={"hours": longer / 60, "faults": faults}), longer


def generate_world(seed: int, config: WorldConfig | None = None) -> World:
    """The world of ``seed`` (deterministic: the same seed and config give the same world)."""
    config = config or WorldConfig()
    rng = np.random.default_rng([seed, 16])
    notes: list[str] = []
    quiet, benign, _ = config.shares
    u = rng.random()
    category: Category = "quiet" if u < quiet else "benign" if u < quiet + benign else "fault"
    depth = int(rng.integers(config.depth[0], config.depth[1] + 1))
    n_services = int(rng.integers(config.services[0], config.services[1] + 1))
    topo = draw_topology(rng, depth=depth, services=n_services)
    rate = _log_uniform(rng, *config.rate_per_s)
    arrivals: dict[str, object] = {
        "rate_per_s": round(rate, 3),
        "diurnal_amplitude": round(float(rng.uniform(0.0, 0.8)), 3),
        "peak_hour": round(float(rng.uniform(0.0, 24.0)), 2) % 24.0,  # 23.996 rounds to 24.0: midnight
        "weekend_factor": round(float(rng.uniform(0.5, 1.5)), 3),
        "noise_sigma": round(float(rng.uniform(0.0, 0.12)), 3),
        "utc_offset_h": float(rng.integers(-8, 10)),
    }
    amp, weekend, noise = (float(arrivals[k]) for k in ("diurnal_amplitude", "weekend_factor", "noise_sigma"))  # type: ignore[arg-type]
    capped = False
    history_min = round(float(rng.uniform(*config.history_h)) * 60)
    window_end = INCIDENT_MIN + round(float(rng.uniform(*config.incident_min)))
    name = f"world-{seed}"
    if config.spans_max is not None:  # fewer requests, same world: the span budget of one benchmark run
        spans = _spans_per_request(_scenario(topo, name, arrivals, {})) * rate * 60 * (history_min + window_end)
        if spans > config.spans_max:
            capped = True
            rate *= config.spans_max / spans
            arrivals["rate_per_s"] = round(rate, 4)
            notes.append(f"rate capped to {rate:.3g} req/s (span budget {config.spans_max:.3g})")
    peak_rate = rate * (1 + amp) * max(1.0, weekend) * math.exp(2.5 * noise)
    scenario = _size_servers(topo, name, arrivals, peak_rate=peak_rate, rng=rng)
    if rng.random() < 0.5:
        for _ in range(int(rng.integers(1, 3))):
            scenario = add_batch_job(rng, scenario)
    hostile = bool(rng.random() < config.hostile)
    perturbation: str | None = None
    at: str | None = None
    if category == "benign":
        perturbation = str(rng.choice(list(config.perturbations)))
        at = "midnight" if perturbation == "holiday" else None
    start = _start(rng, arrivals, notes, at)
    scenario = scenario.model_copy(
        update={"start": start, "hours": window_end / 60, "history_days": history_min / 1440}
    )
    if category == "benign" and perturbation is not None:
        scenario = draw_perturbation(
            rng, scenario, perturbation, start_min=INCIDENT_MIN, end_min=window_end, notes=notes
        )
    elif category == "fault":
        kind = str(rng.choice(list(config.fault_kinds)))
        scenario = draw_fault(rng, scenario, kind, start_min=INCIDENT_MIN, end_min=window_end, notes=notes)
        scenario, window_end = _runs_enough(scenario, window_end, notes)
    if hostile:
        scenario = make_hostile(rng, scenario, notes)
    return World(seed, scenario, category, perturbation, history_min, window_end, hostile, capped, tuple(notes))
