"""A counterfactual pair: one run forked at the patch time, continued with and without the patch.

``simulate_fork`` runs the scenario once up to ``overrides.at_min`` (rounded up to the next
minute), writing every minute to both sinks, then copies the engine and the row factory
(their random generators included) and continues each copy to the end, one without the
patch and one with it. Both runs share their seed and their whole past, so the two worlds
differ only by what the patch changed from the fork on. Demand is exogenous: at the fork the
root arrivals (the rate noise and the per-minute counts) move to a generator of their own,
copied into both futures, so both see the same requests arrive (common random numbers; a
rate limit still refuses its excess of them). Everything else (service times, errors,
sampling) draws different amounts after the fork and decorrelates, as between two real futures.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pyarrow as pa

from simulator.engine import Engine
from simulator.labels import ground_truth
from simulator.patches import Overrides
from simulator.plan import Plan
from simulator.rows import RowBuilder
from simulator.run import DEFAULT_START_NS, FRAME_MINUTES, RunSummary, Sink
from simulator.scenario import Scenario


class _Buffer:
    """Minute tables gathered per sink and flushed in batches (fewer, larger commits)."""

    def __init__(self, sink: Sink, flush_rows: int) -> None:
        self.sink = sink
        self.flush_rows = flush_rows
        self.pending: dict[str, list[pa.Table]] = {}
        self.rows = 0

    def add(self, tables: dict[str, pa.Table]) -> None:
        for name, table in tables.items():
            self.pending.setdefault(name, []).append(table)
            self.rows += table.num_rows
        if self.rows >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.sink.write({name: pa.concat_tables(parts) for name, parts in self.pending.items()})
        self.pending.clear()
        self.rows = 0


class Run:
    """One simulation run that can be advanced minute by minute into sinks, and forked.

    ``advance(until, sinks)`` simulates up to (not including) scenario minute ``until`` and
    writes every minute to each sink; ``fork(overrides)`` returns an independent copy of the
    run at its current minute (generators included) with the patch set.
    """

    def __init__(self, scenario: Scenario, *, from_minute: int, seed: int = 1, start_ns: int | None = None,
                 flush_rows: int = 200_000) -> None:  # fmt: skip
        self.start_ns = scenario.start_ns(DEFAULT_START_NS) if start_ns is None else start_ns
        self.plan = Plan.compile(scenario)
        self.engine = Engine(self.plan, self.start_ns, seed)
        self.rows = RowBuilder(self.plan, seed)
        self.minute = from_minute
        self.first = from_minute
        self.flush_rows = flush_rows
        self.totals: dict[str, int] = {}

    def advance(self, until: int, sinks: list[Sink]) -> None:
        """Simulate minutes ``self.minute`` .. ``until`` - 1 into every sink (flushed before returning)."""
        buffers = [_Buffer(s, self.flush_rows) for s in sinks]
        for lo in range(self.minute, until, FRAME_MINUTES):
            tables = self.rows.tables([self.engine.step(m) for m in range(lo, min(lo + FRAME_MINUTES, until))])
            for b in buffers:
                b.add(tables)
            for name, table in tables.items():
                self.totals[name] = self.totals.get(name, 0) + table.num_rows
        for b in buffers:
            b.flush()
        self.minute = max(self.minute, until)

    def fork(self, overrides: Overrides | None) -> Run:
        """An independent copy of this run from its current minute, ``overrides`` applied in it."""
        memo = {id(self.plan): self.plan}  # the plan is immutable: both futures share it
        bits = self.engine.rng.bit_generator
        if self.engine.arrival_rng is None and isinstance(bits, np.random.PCG64):
            # an independent stream (the main one jumped ahead), nothing drawn from the main one
            self.engine.arrival_rng = np.random.Generator(bits.jumped())
        twin = copy.copy(self)
        twin.engine, twin.rows = copy.deepcopy(self.engine, memo), copy.deepcopy(self.rows, memo)
        twin.totals = dict(self.totals)
        if overrides is not None:
            twin.engine.patch = overrides
        return twin

    def summary(self, hours: float) -> RunSummary:
        """Minutes and rows simulated so far, and the scenario's ground truth."""
        return RunSummary(self.minute - self.first, dict(self.totals), ground_truth(self.plan, self.start_ns, hours))


def simulate_fork(
    scenario: Scenario,
    overrides: Overrides,
    baseline_sink: Sink,
    patched_sink: Sink,
    *,
    hours: float,
    from_minute: int,
    seed: int = 1,
    start_ns: int | None = None,
    flush_rows: int = 200_000,
) -> tuple[RunSummary, RunSummary]:
    """Simulate ``from_minute`` .. ``hours`` x 60 into both sinks, the patch applied in ``patched_sink`` only.

    Returns the summaries of the unpatched and the patched run (rows each run produced; the
    ground truth is the scenario's, faults as declared).
    """
    run = Run(scenario, from_minute=from_minute, seed=seed, start_ns=start_ns, flush_rows=flush_rows)
    last = round(hours * 60)
    run.advance(min(max(math.ceil(overrides.at_min), from_minute), last), [baseline_sink, patched_sink])
    patched = run.fork(overrides)
    run.advance(last, [baseline_sink])
    patched.advance(last, [patched_sink])
    baseline_sink.close()
    patched_sink.close()
    return run.summary(hours), patched.summary(hours)
