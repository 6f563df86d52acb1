"""Edits of a world that keep it valid: the moves of the local search and of the shrinker.

Each function returns a new ``World`` (worlds and scenarios are immutable): another
magnitude for its fault or perturbation, another rate (servers scaled alike, so the
utilisation and with it the world's behaviour stay), a shorter history or window, the
incident at another time of day, or fewer services (a service is removed with every call
to it; the fault's target and the entry points stay).
"""

from __future__ import annotations

import datetime as dt
import math

from simulator.scenario import Scenario
from simulator.world_faults import stated_minimum
from simulator.worlds import INCIDENT_MIN, World

MIN_HISTORY_MIN = 180
"""The shortest history a world is shrunk to (3 hours: the baselines' trailing hour, twice over, and more)."""
MIN_AFTER_MIN = 45
"""The shortest window after the incident (an alert fires 15 minutes in and looks 40 minutes on)."""


def _data(scenario: Scenario) -> dict[str, object]:
    return scenario.model_dump()


def with_magnitude(world: World, factor: float) -> World:
    """The world with its fault's magnitude (or its surge's or holiday's distance from 1) times ``factor``."""
    data = _data(world.scenario)
    faults = data["faults"]
    assert isinstance(faults, list)
    for f in faults:
        kind = f["kind"]
        if kind == "capacity_saturation":
            f["magnitude"] = round(f["magnitude"] * factor, 4)
        elif kind in ("attribute_change",) or (kind == "call_edge" and f.get("change") == "remove"):
            continue  # categorical: no size to change
        else:
            cap = 1.0 if kind in ("error_burst", "retry_storm", "broken_propagation", "call_edge") else math.inf
            f["magnitude"] = round(min(cap, f["magnitude"] * factor), 5)
    arrivals = data["arrivals"]
    assert isinstance(arrivals, dict)
    for ep in arrivals.get("episodes", []):
        ep["factor"] = round(max(0.05, 1.0 + (ep["factor"] - 1.0) * factor), 4)
    return world.with_scenario(Scenario.model_validate(data))


def magnitude_of(world: World) -> float | None:
    """The fault's magnitude in units of its stated minimum effect (None without a sized fault)."""
    for f in world.scenario.faults:
        minimum = stated_minimum(world.scenario, f)
        if minimum is not None:
            return f.magnitude / minimum
    return None


def with_rate(world: World, factor: float) -> World:
    """The world at ``factor`` x its traffic with servers scaled alike (third-party providers keep theirs)."""
    sc = world.scenario
    arrivals = sc.arrivals.model_copy(update={"rate_per_s": round(sc.arrivals.rate_per_s * factor, 5)})
    services = {}
    for s_name, svc in sc.services.items():
        ops = {}
        for o_name, op in svc.operations.items():
            servers = op.servers if op.kind == "external" else max(1, math.ceil(op.servers * factor))
            ops[o_name] = op.model_copy(update={"servers": servers})
        services[s_name] = svc.model_copy(update={"operations": ops})
    return world.with_scenario(sc.model_copy(update={"arrivals": arrivals, "services": services}))


def with_history(world: World, minutes: int) -> World:
    """The world with ``minutes`` of history (at least ``MIN_HISTORY_MIN``)."""
    minutes = max(MIN_HISTORY_MIN, minutes)
    return world.with_scenario(world.scenario.model_copy(update={"history_days": minutes / 1440}))


def with_window(world: World, end_min: int) -> World:
    """The world with its window under test ending at scenario minute ``end_min`` (faults clipped to it)."""
    end_min = max(INCIDENT_MIN + MIN_AFTER_MIN, end_min)
    faults = [f.model_copy(update={"end_min": min(f.end_min, end_min)}) for f in world.scenario.faults]
    return world.with_scenario(world.scenario.model_copy(update={"hours": end_min / 60, "faults": faults}))


def with_start_shift(world: World, hours: float) -> World:
    """The world with its whole timeline ``hours`` later (the incident at another time of day or week)."""
    start = world.scenario.start or dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    return world.with_scenario(world.scenario.model_copy(update={"start": start + dt.timedelta(hours=hours)}))


def needed_services(scenario: Scenario) -> set[str]:
    """Services a shrink must keep: the entry points' and the faults' (targets and callees)."""
    keep = {e.operation.partition(":")[0] for e in scenario.entrypoints}
    for f in scenario.faults:
        keep.add(f.target.partition(":")[0])
        if f.to:
            keep.add(f.to.partition(":")[0])
        if f.kind == "batch_shift":
            keep |= {j.service for j in scenario.batch_jobs if j.name == f.target}
    keep |= {d.service for d in scenario.deploys}
    return keep


def without_service(world: World, service: str) -> World | None:
    """The world without ``service`` and every call, counter, job and episode tied to it (None if it is needed)."""
    sc = world.scenario
    if service in needed_services(sc) or service not in sc.services or len(sc.services) <= 2:
        return None
    data = sc.model_dump()
    services = data["services"]
    assert isinstance(services, dict)
    del services[service]
    for svc in services.values():
        for op in svc["operations"].values():
            op["calls"] = [c for c in op["calls"] if c["to"].partition(":")[0] != service]
    data["counters"] = [c for c in sc.model_dump()["counters"] if c["operation"].partition(":")[0] != service]
    data["batch_jobs"] = [j for j in sc.model_dump()["batch_jobs"] if j["service"] != service]
    try:
        return world.with_scenario(Scenario.model_validate(data))
    except ValueError:
        return None
