"""What if, on the twin of a live store: test a remediation patch on a fitted model of the system.

``incident_twin`` fits the healthy system (``baseline_min`` minutes before the incident start)
and the incident (its start to the end of data), writes the difference as faults
(``twin.incident``) on the healthy twin, with scenario minute 0 at the incident start. The
patch is then judged exactly as the gym judges it on a library world (``remediation.whatif``:
the same patch schema, the same fork at the patch minute and the same test runner), landing
at the minute the incident has reached now. The answer holds for the system only as far as the
twin reproduces it: ``twin check`` says how far, and the incident's notes say what the twin
could not name. ``trial_runner`` is the same, one patch at a time, for an investigation's
budgeted ``what_if`` tool (the controller wires it; investigations never import the twin).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from remediation.whatif import Timing, WhatIf, whatifs
from simulator.patches import Patch
from simulator.scenario import Scenario
from twin.fit import TwinFit, fit_twin
from twin.incident import Incident, incident_faults

NS_PER_MIN = 60_000_000_000
FAULT_TAIL_MIN = 120
"""Minutes the incident's faults last on the twin after what was seen (the runner needs a post-patch window)."""


@dataclass
class IncidentTwin:
    scenario: Scenario
    """The healthy twin with the incident as faults from minute 0 (the incident start)."""
    base: TwinFit
    incident: TwinFit
    changes: Incident
    minutes_seen: int


@dataclass
class TwinWhatIf:
    twin: IncidentTwin
    results: list[WhatIf]


def incident_twin(
    con: duckdb.DuckDBPyConnection,
    incident_start_ns: int,
    end_ns: int,
    *,
    baseline_min: int = 60,
    min_samples: int = 50,
) -> IncidentTwin:
    """The twin of the system with the incident that began at ``incident_start_ns`` (``TwinError`` on no data)."""
    base = fit_twin(con, incident_start_ns - baseline_min * NS_PER_MIN, incident_start_ns, name="twin-healthy",
                    min_samples=min_samples)  # fmt: skip
    inc = fit_twin(con, incident_start_ns, end_ns, name="twin-incident", min_samples=min_samples)
    seen = max(1, round((end_ns - incident_start_ns) / NS_PER_MIN))
    changes = incident_faults(base, inc, minutes_seen=seen, end_min=seen + FAULT_TAIL_MIN)
    data = base.scenario.model_dump(exclude_defaults=True)
    data.update(
        name="twin-incident",
        description=f"twin of the healthy system with the incident seen in {seen} minutes as faults",
        start=dt.datetime.fromtimestamp(incident_start_ns / 1e9, tz=dt.UTC),
        hours=(seen + FAULT_TAIL_MIN) / 60,
        deploys=[],
        faults=changes.faults,
    )
    return IncidentTwin(Scenario.model_validate(data), base, inc, changes, seen)


def twin_whatif(
    con: duckdb.DuckDBPyConnection,
    patches: list[Patch],
    incident_start_ns: int,
    end_ns: int,
    work_dir: str | Path,
    *,
    baseline_min: int = 60,
    seed: int = 3,
    timing: Timing | None = None,
) -> TwinWhatIf:
    """Each patch applied alone to the incident twin at the incident's current minute, judged by the runner.

    ``ValueError`` when the twin names no change (nothing to remediate on it) or the patch names what the
    twin lacks (``PatchError``).
    """
    twin = incident_twin(con, incident_start_ns, end_ns, baseline_min=baseline_min)
    if not twin.changes.faults:
        raise ValueError("the twin reproduces no change between the healthy window and the incident: "
                         + "; ".join(twin.changes.notes))  # fmt: skip
    at = max(1, math.ceil(twin.minutes_seen))
    results = whatifs(twin.scenario, patches, work_dir, at_min=at, rate_per_s=math.inf, seed=seed, timing=timing)
    return TwinWhatIf(twin, results)


def trial_runner(
    connect: Callable[[], duckdb.DuckDBPyConnection],
    incident_start_ns: int,
    end_ns: int,
    work_dir: str | Path,
    *,
    baseline_min: int = 60,
    timing: Timing | None = None,
) -> Callable[[Patch], dict[str, Any]]:
    """A ``what_if`` for an investigation: judges one patch on the incident twin (fitted at the first call, through
    a cursor from ``connect``) and returns the verdict, its reasons and what the twin reproduced."""
    cache: list[IncidentTwin] = []

    def run(patch: Patch) -> dict[str, Any]:
        if not cache:
            con = connect()
            try:
                cache.append(incident_twin(con, incident_start_ns, end_ns, baseline_min=baseline_min))
            finally:
                con.close()
        twin = cache[0]
        if not twin.changes.faults:
            raise ValueError("the twin reproduces no change in the incident: " + "; ".join(twin.changes.notes))
        work = Path(work_dir) / f"trial-{len(list(Path(work_dir).glob('trial-*')))}"
        at = max(1, math.ceil(twin.minutes_seen))
        [result] = whatifs(twin.scenario, [patch], work, at_min=at, rate_per_s=math.inf, timing=timing)
        r = result.result
        return {
            "describe": patch.describe(),
            "verdict": r.verdict,
            "reasons": r.reasons[:6],
            "broken_before": r.broken_before,
            "ttr_min": r.ttr_min,
            "twin_incident": twin.changes.notes,
        }

    return run
