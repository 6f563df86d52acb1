"""Faults and benign perturbations for generated worlds (see ``simulator.worlds``).

``MIN_EFFECT`` is driftscope's stated minimum effect per fault kind, in the unit of the
fault's ``magnitude`` (``simulator.scenario.Fault``) as its expected signals show it: worlds draw
magnitudes from it up to four times it (``visible_magnitude`` converts a latency fault's into the
simulator's unit), and the adversary calls a fault it misses above it a blind spot. The
README's minimum-detectable-effect table (from ``driftscope adversary mde``) shows where
detection really starts, per kind and traffic.
"""

from __future__ import annotations

import math

import numpy as np

from simulator.effects import MINUTES_PER_DAY
from simulator.engine import RTT_BASE_MS, RTT_MEAN_EXTRA_MS, episode_factor
from simulator.labels import visits_per_request
from simulator.plan import Plan, expected_hold_ms
from simulator.scenario import Call, Deploy, Entrypoint, Episode, Fault, Operation, Scenario

FAULT_KINDS = (
    "latency_regression",
    "dependency_slowdown",
    "slow_drift",
    "error_burst",
    "retry_storm",
    "capacity_saturation",
    "broken_propagation",
    "new_log_template",
    "attribute_change",
    "call_edge",
    "batch_shift",
)
INVARIANT_KINDS = ("broken_propagation", "new_log_template", "attribute_change", "call_edge")
"""Faults that break an invariant (trace context, log templates, attribute contracts, the call graph); the
others move performance signals (latency, errors, rates, gauges, batch durations)."""
MIN_EFFECT: dict[str, float] = {
    "latency_regression": 0.5,
    "dependency_slowdown": 1.0,
    "slow_drift": 3.0,
    "error_burst": 0.03,
    "retry_storm": 0.2,
    "capacity_saturation": 1.2,
    "broken_propagation": 0.3,
    "new_log_template": 5.0,
    "attribute_change": 1.0,
    "call_edge": 0.3,
    "batch_shift": 0.5,
}
"""Smallest fault magnitude driftscope claims to see: +50 % latency of the operation; a dependency
x2 slower (+100 %); a drift of +300 %/day (+12.5 %/h); +3 error percentage points; 20 % of calls
failing and retried; demand at 1.2 x the bottleneck's capacity (``capacity_saturation``: the peak
utilisation it causes, not the arrival multiplier); 30 % of requests losing trace context; 5 new log
lines a minute; an attribute vanishing or changing type; a call edge removed, or added on 30 % of
calls; a batch job 50 % slower. Latency effects are those of the latency the fault's expected signals
measure (see ``visible_magnitude``)."""
DRIFT_LEVEL_MIN = MIN_EFFECT["latency_regression"]
"""Latency a slow drift has added by the end of the window under test, at least, to count as above the
stated minimum: what a latency regression must add. A drift of +300 %/day adds +12.5 % an hour, under the
detectors' 20 % level floor for the first 96 minutes, so its rate alone does not make it visible within
a 60-180 minute window."""
MAX_MAGNITUDE = {"error_burst": 0.5, "retry_storm": 0.6, "broken_propagation": 1.0, "call_edge": 1.0}
_CLIENT_ONLY = ("db", "cache", "external")
_LATENCY_KINDS = ("latency_regression", "dependency_slowdown", "slow_drift")
_RAMPED = ("latency_regression", "dependency_slowdown", "error_burst", "retry_storm", "batch_shift")


def demand_at(scenario: Scenario, minute: float) -> float:
    """Expected arrival multiplier (diurnal x weekly x episodes, no noise) at scenario ``minute``."""
    arr = scenario.arrivals
    offset_h = arr.utc_offset_h + (1.0 if arr.dst_shift_min is not None and minute >= arr.dst_shift_min else 0.0)
    t_s = scenario.start_ns(0) / 1e9 + minute * 60.0 + offset_h * 3600.0
    hours = (t_s / 3600.0) % 24.0
    weekday = int(t_s // 86_400 + 3) % 7
    diurnal = 1.0 + arr.diurnal_amplitude * math.cos(2 * math.pi * (hours - arr.peak_hour) / 24.0)
    weekly = arr.weekend_factor if weekday >= 5 else 1.0
    return diurnal * weekly * episode_factor(arr.episodes, minute)


def _refs(scenario: Scenario, *, called: bool = False, traced: bool = False) -> list[str]:
    """Operation refs (optionally only those with a caller, or with server spans of their own)."""
    callees = {c.to for ref in scenario.operation_refs() for c in scenario.operation(ref).calls}
    out = []
    for ref in scenario.operation_refs():
        op = scenario.operation(ref)
        if called and ref not in callees:
            continue
        if traced and op.kind in _CLIENT_ONLY:
            continue
        out.append(ref)
    return out


def visible_share(scenario: Scenario, ref: str) -> float:
    """Share of the latency ``ref``'s expected signals measure that a latency fault on it scales.

    1 for an operation with spans of its own (a fault of magnitude m makes its whole duration about
    m x longer, ``simulator.effects``). A database, cache or external provider is seen only through
    its callers' client spans, which also time the network round trip the fault leaves alone: its
    holding time over that plus the mean round trip (a 0.15 ms cache behind a 0.6 ms round trip
    shows a fifth of its slowdown).
    """
    if scenario.operation(ref).kind not in _CLIENT_ONLY:
        return 1.0
    hold = expected_hold_ms(scenario, [ref])[ref]
    return hold / (hold + RTT_BASE_MS + RTT_MEAN_EXTRA_MS)


def visible_magnitude(scenario: Scenario, kind: str, ref: str, magnitude: float, minutes: float) -> float:
    """The simulator's magnitude of a latency fault on ``ref`` whose expected signals show ``magnitude``.

    A slow drift (per day) is raised until it has added ``DRIFT_LEVEL_MIN`` by the end of its
    ``minutes``; then every latency kind is divided by ``visible_share``.
    """
    if kind == "slow_drift":
        magnitude = max(magnitude, DRIFT_LEVEL_MIN * MINUTES_PER_DAY / minutes)
    return round(magnitude / visible_share(scenario, ref), 4)


def stated_minimum(scenario: Scenario, fault: Fault) -> float | None:
    """``MIN_EFFECT`` of ``fault``'s kind in the unit of its ``magnitude`` (None: no size to compare)."""
    if fault.kind in ("attribute_change", "capacity_saturation") or fault.kind not in MIN_EFFECT:
        return None
    if fault.kind in _LATENCY_KINDS and fault.target in scenario.operation_refs():
        minutes = fault.end_min - fault.start_min
        return visible_magnitude(scenario, fault.kind, fault.target, MIN_EFFECT[fault.kind], minutes)
    return MIN_EFFECT[fault.kind]


def _magnitude(rng: np.random.Generator, kind: str) -> float:
    low = MIN_EFFECT[kind]
    value = float(np.exp(rng.uniform(math.log(low), math.log(4 * low))))
    return round(min(value, MAX_MAGNITUDE.get(kind, math.inf)), 4)


def _with_op(scenario: Scenario, ref: str, op: Operation) -> Scenario:
    service, _, name = ref.partition(":")
    svc = scenario.services[service]
    services = {**scenario.services, service: svc.model_copy(update={"operations": {**svc.operations, name: op}})}
    return scenario.model_copy(update={"services": services})


def _add_fault(scenario: Scenario, fault: dict[str, object]) -> Scenario:
    """The scenario with ``fault`` (validated as a whole: a bad fault names its key)."""
    data = scenario.model_dump()
    data["faults"] = [*data.get("faults", []), fault]
    return Scenario.model_validate(data)


def utilisation(scenario: Scenario, rate_per_s: float) -> dict[str, float]:
    """Expected utilisation of each operation's servers at ``rate_per_s`` root requests/s (< 1: within capacity).

    Holding time (own work plus synchronous calls) x visits per request x rate / servers,
    as the simulator's queues see it.
    """
    plan = Plan.compile(scenario)
    visits = visits_per_request(plan)
    return {
        op.ref: float(v * rate_per_s * op.hold_ms / 1000.0 / op.servers) for op, v in zip(plan.ops, visits, strict=True)
    }


def peak_utilisation(scenario: Scenario, minute: float) -> tuple[str, float]:
    """(operation, utilisation) of the busiest operation at ``minute``'s expected demand."""
    load = utilisation(scenario, scenario.arrivals.rate_per_s * demand_at(scenario, minute))
    ref = max(load, key=lambda r: load[r])
    return ref, load[ref]


def _pick(rng: np.random.Generator, options: list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _tighten_bottleneck(rng: np.random.Generator, scenario: Scenario, minute: int) -> tuple[Scenario, str, float]:
    """(scenario, bottleneck, its utilisation at ``minute``) with the busiest operation's servers cut so that it
    runs at 0.45-0.75 of capacity there, and at most 0.8 at the world's busiest hour of the week. A one-server
    operation that is still idle (low traffic) gets slower own work instead: a slow step with one worker."""
    ref, rho = peak_utilisation(scenario, minute)
    busiest = max(demand_at(scenario, m) for m in range(-7 * 1440, 1440, 30))
    target = min(float(rng.uniform(0.45, 0.75)), 0.8 * demand_at(scenario, minute) / busiest)
    for _ in range(3):  # holding times depend on the callees: converge in a few steps
        op = scenario.operation(ref)
        servers = max(1, math.ceil(op.servers * rho / target))
        update: dict[str, object] = {"servers": min(servers, op.servers)}
        if servers == 1 and rho * op.servers < 0.8 * target:
            st = op.service_time
            update["service_time"] = st.model_copy(update={"median_ms": round(st.median_ms * target / rho, 3)})
        scenario = _with_op(scenario, ref, op.model_copy(update=update))
        rho = rate_utilisation(scenario, minute)[ref]
    return scenario, ref, rho


def rate_utilisation(scenario: Scenario, minute: float) -> dict[str, float]:
    """Utilisation of every operation at ``minute``'s expected demand."""
    return utilisation(scenario, scenario.arrivals.rate_per_s * demand_at(scenario, minute))


def draw_fault(
    rng: np.random.Generator, scenario: Scenario, kind: str, *, start_min: int, end_min: int, notes: list[str]
) -> Scenario:
    """``scenario`` with one fault of ``kind`` from ``start_min`` to ``end_min`` (random target and magnitude)."""
    magnitude = _magnitude(rng, kind)
    fault: dict[str, object] = {"kind": kind, "start_min": start_min, "end_min": end_min, "magnitude": magnitude}
    if kind in ("latency_regression", "slow_drift", "error_burst"):
        fault["target"] = _pick(rng, _refs(scenario))
    elif kind in ("dependency_slowdown", "retry_storm"):
        fault["target"] = _pick(rng, _refs(scenario, called=True))
    elif kind == "capacity_saturation":
        scenario, ref, rho = _tighten_bottleneck(rng, scenario, start_min)
        overload = round(float(np.exp(rng.uniform(math.log(MIN_EFFECT[kind]), math.log(2 * MIN_EFFECT[kind])))), 3)
        surge = round(max(overload / rho - 1.0, 0.05), 4)
        fault.update(target="arrivals", magnitude=surge, ramp_min=round(float(rng.uniform(5, 30)), 1))
        notes.append(f"saturation: demand x{1 + surge:.2f} takes {ref} from {rho:.2f} to {overload:.2f} of capacity")
    elif kind == "broken_propagation":
        services = sorted({r.partition(":")[0] for r in _refs(scenario, called=True, traced=True)})
        fault["target"] = _pick(rng, services or sorted(scenario.services))
    elif kind == "new_log_template":
        services = [s for s in sorted({r.partition(":")[0] for r in _refs(scenario, traced=True)})
                    if scenario.services[s].export.logs]  # fmt: skip
        fault["target"] = _pick(rng, services or sorted(scenario.services))
        fault["template"] = str(rng.choice(["circuit breaker open for {id} after {ms} ms",
                                            "stale read detected on shard {n}",
                                            "token refresh failed for {user}"]))  # fmt: skip
        fault["severity"] = str(rng.choice(["WARN", "ERROR"]))
    elif kind == "attribute_change":
        refs = [r for r in _refs(scenario, traced=True) if scenario.operation(r).dynamic_attributes]
        if not refs:  # give an operation an attribute for the release to break
            refs = _refs(scenario, traced=True)[:1]
            op = scenario.operation(refs[0])
            scenario = _with_op(scenario, refs[0], op.model_copy(update={"dynamic_attributes": {"order.id": "int"}}))
        fault["target"] = ref = _pick(rng, refs)
        fault["attribute"] = _pick(rng, sorted(scenario.operation(ref).dynamic_attributes))
        fault["change"] = str(rng.choice(["vanish", "type"]))
        fault["magnitude"] = 1.0
    elif kind == "call_edge":
        fault.update(_call_edge(rng, scenario))
    elif kind == "batch_shift":  # on a job whose duration histogram is exported (spans alone: a telemetry gap)
        measured = [j.name for j in scenario.batch_jobs if scenario.services[j.service].export.histograms]
        if not measured:
            scenario = add_batch_job(rng, scenario, measured_only=True)
            measured = [scenario.batch_jobs[-1].name]
        fault["target"] = _pick(rng, measured)
    if kind in _LATENCY_KINDS:
        ref = str(fault["target"])
        fault["magnitude"] = visible_magnitude(scenario, kind, ref, magnitude, minutes=end_min - start_min)
    if kind in _RAMPED and rng.random() < 0.4:
        fault["ramp_min"] = round(float(rng.uniform(10, 45)), 1)
    released = ("latency_regression", "error_burst", "attribute_change", "call_edge", "broken_propagation")
    if kind in released and rng.random() < 0.5:
        fault["deploy_version"] = f"{int(rng.integers(10, 99))}.0.0"
    notes.append(f"fault {kind} on {fault['target']} magnitude {fault['magnitude']}"
                 + (f" ramp {fault['ramp_min']} min" if "ramp_min" in fault else " step"))  # fmt: skip
    return _add_fault(scenario, fault)


def _call_edge(rng: np.random.Generator, scenario: Scenario) -> dict[str, object]:
    edges = [(ref, c.to) for ref in _refs(scenario, traced=True) for c in scenario.operation(ref).calls
             if c.mode != "async"]  # fmt: skip
    if edges and rng.random() < 0.5:
        caller, callee = edges[int(rng.integers(len(edges)))]
        return {"target": caller, "to": callee, "change": "remove", "magnitude": 1.0}
    callers = _refs(scenario, traced=True)
    caller = callers[int(rng.integers(len(callers)))]
    existing = {c.to for c in scenario.operation(caller).calls}
    own = caller.partition(":")[0]
    options = [r for r in _refs(scenario) if r not in existing and r.partition(":")[0] != own
               and scenario.operation(r).kind in _CLIENT_ONLY]  # fmt: skip
    callee = options[int(rng.integers(len(options)))] if options else _refs(scenario)[-1]
    return {"target": caller, "to": callee, "change": "add", "magnitude": _magnitude(rng, "call_edge")}


def add_batch_job(rng: np.random.Generator, scenario: Scenario, *, measured_only: bool = False) -> Scenario:
    """``scenario`` with one more batch job in a random service (every 1-60 min, 1 s - 10 min long); with
    ``measured_only`` in a service that exports histograms (one is made to when none does)."""
    services = sorted(scenario.services)
    if measured_only:
        exporting = [s for s in services if scenario.services[s].export.histograms]
        if not exporting:
            svc = scenario.services[services[0]]
            update = {"export": svc.export.model_copy(update={"histograms": True})}
            scenario = scenario.model_copy(update={"services": {**scenario.services, services[0]: svc.model_copy(
                update=update)}})  # fmt: skip
            exporting = services[:1]
        services = exporting
    every = int(rng.choice([1, 5, 10, 15, 30, 60]))
    median_ms = float(np.exp(rng.uniform(math.log(1_000), math.log(min(600_000, every * 60_000 * 0.5)))))
    job = {
        "name": f"job-{len(scenario.batch_jobs) + 1}",
        "service": services[int(rng.integers(len(services)))],
        "every_min": every,
        "duration": {"median_ms": round(median_ms, 1), "sigma": round(float(rng.uniform(0.1, 0.4)), 2)},
        "records": {"median_ms": round(float(rng.uniform(50, 5000)), 1), "sigma": 0.5},
    }
    data = scenario.model_dump()
    data["batch_jobs"] = [*data.get("batch_jobs", []), job]
    return Scenario.model_validate(data)


def draw_perturbation(
    rng: np.random.Generator, scenario: Scenario, kind: str, *, start_min: int, end_min: int, notes: list[str]
) -> Scenario:
    """``scenario`` with one benign perturbation of ``kind`` starting at ``start_min``."""
    arr = scenario.arrivals
    if kind == "surge":
        ref, rho = peak_utilisation(scenario, start_min)
        factor = round(min(float(rng.uniform(1.3, 2.0)), max(1.05, 0.75 / rho)), 3)
        length = float(rng.uniform(30, max(31, end_min - start_min)))
        ep = Episode(kind="surge", start_min=start_min, end_min=start_min + length, factor=factor,
                     ramp_min=round(float(rng.uniform(5, 20)), 1))  # fmt: skip
        notes.append(f"surge x{factor} for {length:.0f} min (busiest {ref} at {rho * factor:.2f} of capacity)")
        return scenario.model_copy(update={"arrivals": arr.model_copy(update={"episodes": [*arr.episodes, ep]})})
    if kind == "holiday":
        factor = round(float(rng.uniform(0.4, 0.8)), 3)
        ep = Episode(kind="holiday", start_min=start_min, end_min=start_min + 1440, factor=factor)
        notes.append(f"holiday from local midnight, demand x{factor}")
        return scenario.model_copy(update={"arrivals": arr.model_copy(update={"episodes": [*arr.episodes, ep]})})
    if kind == "dst":
        notes.append("daylight saving: local clocks forward one hour at the incident")
        return scenario.model_copy(update={"arrivals": arr.model_copy(update={"dst_shift_min": float(start_min)})})
    if kind == "deploy":
        services = sorted(scenario.services)
        service = services[int(rng.integers(len(services)))]
        version = f"{scenario.services[service].version}-r{int(rng.integers(2, 9))}"
        notes.append(f"deploy {service} {version} that changes nothing")
        return scenario.model_copy(update={"deploys": [*scenario.deploys, Deploy(service=service, version=version,
                                                                                  at_min=start_min)]})  # fmt: skip
    if kind == "endpoint":
        return _new_endpoint(rng, scenario, start_min, notes)
    if kind == "tracing":
        return _tracing_starts(rng, scenario, start_min, notes)
    raise ValueError(f"unknown perturbation {kind!r}")


def _tracing_starts(rng: np.random.Generator, scenario: Scenario, start_min: int, notes: list[str]) -> Scenario:
    """Spans and logs of one service (or of all) start at ``start_min``: tracing switched on, metrics all along."""
    everything = bool(rng.random() < 0.5)
    inner = sorted({r.partition(":")[0] for r in _refs(scenario, called=True, traced=True)})
    inner = inner or sorted(scenario.services)
    chosen = list(scenario.services) if everything else [inner[int(rng.integers(len(inner)))]]
    late = {"traces_from_min": float(start_min)}
    services = {
        name: svc.model_copy(update={"export": svc.export.model_copy(update=late)}) if name in chosen else svc
        for name, svc in scenario.services.items()
    }
    notes.append(f"tracing starts at the incident for {'every service' if everything else chosen[0]}")
    return scenario.model_copy(update={"services": services})


def _new_endpoint(rng: np.random.Generator, scenario: Scenario, start_min: int, notes: list[str]) -> Scenario:
    """A new HTTP endpoint on an edge service, a few % of the traffic, reading one store operation."""
    edge_ref = scenario.entrypoints[0].operation
    service = edge_ref.partition(":")[0]
    stores = [r for r in scenario.operation_refs() if scenario.operation(r).kind in ("db", "cache")]
    calls = [Call(to=stores[int(rng.integers(len(stores)))], prob=0.5, timeout_ms=1000)] if stores else []
    op = Operation(service_time={"median_ms": 2.0, "sigma": 0.3}, servers=50, kind="http", calls=calls)  # type: ignore[arg-type]
    name = "GET /v2/preview"
    scenario = _with_op(scenario, f"{service}:{name}", op)
    total = sum(e.weight for e in scenario.entrypoints)
    weight = round(total * float(rng.uniform(0.02, 0.06)), 4)
    entry = Entrypoint(operation=f"{service}:{name}", weight=weight, start_min=float(start_min))
    notes.append(f"new endpoint {service}:{name} ({weight / (total + weight):.1%} of traffic)")
    return Scenario.model_validate(
        {**scenario.model_dump(), "entrypoints": [*(e.model_dump() for e in scenario.entrypoints), entry.model_dump()]}
    )
