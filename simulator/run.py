"""Run a scenario: the engine minute by minute, rows per minute, into a sink.

``simulate`` is what ``driftscope simulate`` calls. The run starts at ``start_ns`` minus
the history, so scenario minute 0 (where fault times count from) is ``start_ns``; the
default is the scenario's ``start``, else Monday 2026-03-02 00:00 UTC, fixed so that runs
are byte-identical.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from simulator.engine import Engine
from simulator.labels import GroundTruth, ground_truth
from simulator.plan import Plan
from simulator.rows import RowBuilder
from simulator.scenario import Scenario

DEFAULT_START_NS = 1_772_409_600_000_000_000
"""2026-03-02T00:00:00Z, a Monday."""
FRAME_MINUTES = 30
"""Minutes whose rows are built together (one set of Arrow calls per frame, not per minute)."""


class Sink(Protocol):
    """Where simulated rows go: a store directly, or OTLP exporters."""

    def write(self, tables: dict[str, pa.Table]) -> None: ...

    def close(self) -> None: ...


@dataclass
class RunSummary:
    minutes: int
    rows: dict[str, int]
    truth: GroundTruth


def simulate(
    scenario: Scenario,
    sink: Sink,
    *,
    hours: float | None = None,
    history_days: float | None = None,
    seed: int = 1,
    start_ns: int | None = None,
    flush_rows: int = 200_000,
    frame_minutes: int = FRAME_MINUTES,
    from_minute: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> RunSummary:
    """Simulate history + ``hours`` of the scenario into ``sink``; return counts and truth.

    ``from_minute`` starts later than the history would (scenario minutes; the system
    starts cold there). ``progress`` is called with the number of minutes just simulated. The rows
    of ``frame_minutes`` consecutive minutes are built together.
    """
    hours = scenario.hours if hours is None else hours
    start_ns = scenario.start_ns(DEFAULT_START_NS) if start_ns is None else start_ns
    history_days = scenario.history_days if history_days is None else history_days
    plan = Plan.compile(scenario)
    engine = Engine(plan, start_ns, seed)
    rows = RowBuilder(plan, seed)
    first = -round(history_days * 1440) if from_minute is None else from_minute
    last = round(hours * 60)
    pending: dict[str, list[pa.Table]] = {}
    pending_rows = 0
    totals: dict[str, int] = {}

    def flush() -> None:
        nonlocal pending_rows
        if pending:
            sink.write({name: pa.concat_tables(parts) for name, parts in pending.items()})
        pending.clear()
        pending_rows = 0

    for lo in range(first, last, frame_minutes):
        hi = min(lo + frame_minutes, last)
        for name, table in rows.tables([engine.step(minute) for minute in range(lo, hi)]).items():
            pending.setdefault(name, []).append(table)
            totals[name] = totals.get(name, 0) + table.num_rows
            pending_rows += table.num_rows
        if pending_rows >= flush_rows:
            flush()
        if progress:
            progress(hi - lo)
    flush()
    sink.close()
    return RunSummary(last - first, totals, ground_truth(plan, start_ns, hours))
