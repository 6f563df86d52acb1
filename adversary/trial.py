"""One trial: simulate a world into a real DuckDB store, detect, investigate, score.

``run_trial(world, work_dir)`` is the unit the search, the shrinker, the benchmark and the
regression tests share. It simulates the world's history and window straight into a
store (the simulator's fast path), rolls up, runs every detector over the window against
the history through the function ``driftscope detect`` and the scheduled job call
(``detectors.detection_run.run_detection``: performance detectors, noise control, the
invariant checks, the findings writer), scores the findings against the ground truth,
and, when the world has an incident (a fault or a benign perturbation), runs the offline
playbook on an alert fired ``ALERT_DELAY_MIN`` after the first change a finding dates
from the incident on (else after the incident's start), looking back ``LOOKBACK_MIN``. Every failure
the adversary looks for is listed in ``TrialResult.failures``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from adversary import score
from analysis import Window, rollup_all
from detectors.detection_run import run_detection
from detectors.findings import Finding
from investigations.config import InvestigationsConfig
from investigations.environment import Trigger
from investigations.playbook import PlaybookPolicy
from investigations.run import investigate
from investigations.snapshot import IncidentWindow
from simulator.labels import FaultLabel
from simulator.run import simulate
from simulator.sinks import StoreSink
from simulator.worlds import World
from store.connection import Store
from store.rollups import operations_between
from store.timeconv import ns_from_datetime

NS_MIN = 60_000_000_000
ALERT_DELAY_MIN = 15
LOOKBACK_MIN = 20
AFTER_MIN = 40
FAILURE_KINDS = ("missed", "false_alarm", "imprecise", "wrong_rank", "no_abstain", "budget", "error")


@dataclass(frozen=True)
class TrialConfig:
    """What a trial runs."""

    invariants: bool = False
    """Score recall on the invariant fault kinds too (trace roots, log templates, attribute contracts). The
    invariant checks always run, as in ``driftscope detect``; their findings count as alarms either way, and an
    added or removed call edge is scored on its invariant finding as on its callee's rate."""
    investigate: bool = True
    """Investigate the incident with the playbook (fault and benign worlds)."""
    sim_seed: int | None = None
    """Seed of the simulation's randomness (arrivals, durations); None: the world's seed."""


@dataclass(frozen=True)
class Failure:
    """One thing the adversary was looking for, found in a trial."""

    kind: str
    """missed, false_alarm, imprecise, wrong_rank, no_abstain, budget or error."""
    detail: str


@dataclass(frozen=True)
class TrialResult:
    """Everything one trial measured (data sizes, timings, scores, failures)."""

    seed: int
    category: str
    subject: str
    """The fault kind, the perturbation, or "quiet"."""
    spans: int
    series: int
    """Request-driven series under test: operations (with server spans, or seen only by their callers' client
    spans) x 4 kinds, as the library benchmark counts them."""
    days: float
    findings: tuple[str, ...]
    false_alarms: int
    good: int
    detected: bool | None
    """Fault worlds scored on detection: any expected signal found; None otherwise."""
    delay_min: float | None
    rank: int | None
    abstained: bool | None
    """Benign worlds: the investigation named no root cause; None otherwise."""
    top: str
    investigation_status: str | None
    failures: tuple[Failure, ...]
    wall_s: dict[str, float] = field(default_factory=dict)


def _describe(f: Finding) -> str:
    return f"{f.detector}: {f.signal.label()} {f.effect_text}"


def _series(store: Store, window: Window) -> int:
    start, end = ns_from_datetime(window.start), ns_from_datetime(window.end)
    return 4 * operations_between(store.cursor(), start, end)


def alert_time(world: World, found: list[Finding]) -> int:
    """When the incident's alert fires (ns): ``ALERT_DELAY_MIN`` after the first change a finding dates from the
    incident on (driftscope dispatches investigations from findings), else that long after the incident starts
    (an alert from elsewhere). The end of the data bounds it."""
    incident_ns = world.start_ns() + world.incident_min * NS_MIN
    changes = [f.change_ns for f in found if f.change_ns is not None and f.change_ns >= incident_ns - 5 * NS_MIN]
    first = min(changes, default=incident_ns)
    latest = world.start_ns() + world.window_end_min * NS_MIN - (AFTER_MIN - ALERT_DELAY_MIN) * NS_MIN
    return min(first + ALERT_DELAY_MIN * NS_MIN, max(latest, incident_ns + ALERT_DELAY_MIN * NS_MIN))


def _investigate(
    store: Store, world: World, truth: list[FaultLabel], work: Path, alert_ns: int
) -> tuple[int | None, bool, str, str, int]:
    """(rank, abstained, top candidate, status, candidates) of the playbook on the incident's alert."""
    start_ns = world.start_ns()
    window_start = alert_ns - LOOKBACK_MIN * NS_MIN
    end_ns = min(alert_ns + (AFTER_MIN - ALERT_DELAY_MIN) * NS_MIN, start_ns + world.window_end_min * NS_MIN)
    history_start = start_ns - world.history_min * NS_MIN
    config = InvestigationsConfig()
    baseline_s = min(config.baseline_s, (window_start - history_start) / 1e9)
    window = IncidentWindow.around(window_start, end_ns, baseline_s)
    trigger = Trigger("adversary", f"world {world.seed}: alert {ALERT_DELAY_MIN} min into the incident",
                      fingerprint=f"world:{world.seed}")  # fmt: skip
    outcome = investigate(store, trigger, window, PlaybookPolicy(), config, out_dir=work / "investigations")
    cands = outcome.report.candidates
    rank = score.rank_of([(c.service, c.operation) for c in cands], truth)
    top = f"{cands[0].service} {cands[0].operation or ''} ({cands[0].mechanism})" if cands else "-"
    return rank, not cands, top, outcome.status, len(cands)


def run_trial(world: World, work_dir: Path | None = None, config: TrialConfig | None = None) -> TrialResult:
    """Simulate, detect, investigate and score ``world`` (a temporary directory when ``work_dir`` is None; a given
    one keeps the store, replaced by each trial run in it)."""
    config = config or TrialConfig()
    own = work_dir is None
    work = Path(tempfile.mkdtemp(prefix=f"driftscope-world-{world.seed}-")) if work_dir is None else work_dir
    work.mkdir(parents=True, exist_ok=True)
    try:
        return _run(world, work, config)
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)


def _run(world: World, work: Path, config: TrialConfig) -> TrialResult:
    wall: dict[str, float] = {}
    failures: list[Failure] = []
    started = time.perf_counter()
    for stale in (work / "world.duckdb", work / "world.duckdb.wal"):  # a reused directory: simulate afresh, never
        stale.unlink(missing_ok=True)  # into a store that already holds a run (every span would count twice)
    store = Store(work / "world.duckdb")
    try:
        summary = simulate(world.scenario, StoreSink(store), hours=world.window_end_min / 60,
                           from_minute=-world.history_min, seed=world.seed if config.sim_seed is None
                           else config.sim_seed)  # fmt: skip
        wall["simulate"] = time.perf_counter() - started
        started = time.perf_counter()
        con = store.cursor()
        rollup_all(con)
        start_ns = world.start_ns()
        end_ns = start_ns + world.window_end_min * NS_MIN
        # what `driftscope detect` runs on this store, over the world's window: queued work still
        # running when arrivals stop at its end spills a few minutes of stragglers past it, and a
        # window ending at the newest of those would see every entry point fall silent
        run = run_detection(con, window_s=(end_ns - start_ns) / 1e9, history_s=world.history_min * 60,
                            resolve_after_s=1800.0, end_ns=end_ns)  # fmt: skip
        if run is None:
            raise RuntimeError(f"world {world.seed}: nothing rolled up")
        window, found = run.window, run.findings
        failures += [Failure("error", e) for e in run.failures]
        wall["detect"] = time.perf_counter() - started
        series = _series(store, window)
        truth = summary.truth.faults
        result = _score(world, found, truth, config)
        failures += result[-1]
        rank: int | None = None
        abstained: bool | None = None
        top, status = "-", None
        if config.investigate and world.category != "quiet":
            started = time.perf_counter()
            try:
                rank, abstain, top, status, _ = _investigate(store, world, truth, work, alert_time(world, found))
            except Exception as exc:  # hostile telemetry must never crash an investigation: that is a finding
                failures.append(Failure("error", f"investigation: {type(exc).__name__}: {exc}"[:300]))
                abstain = False
            wall["investigate"] = time.perf_counter() - started
            if world.category == "benign":
                abstained = abstain
                if not abstain:
                    failures.append(Failure("no_abstain", f"named {top}"))
            elif rank != 1:
                failures.append(Failure("wrong_rank", f"root cause at rank {rank}; top {top}"))
            if status not in (None, "complete"):
                failures.append(Failure("budget", f"investigation {status}"))
    finally:
        store.close()
    detected, delay, good_n, fa = result[:4]
    subject = world.fault or world.perturbation or "quiet"
    return TrialResult(
        seed=world.seed, category=world.category, subject=subject, spans=summary.rows.get("spans", 0),
        series=series, days=(world.window_end_min / 1440), findings=tuple(_describe(f) for f in found),
        false_alarms=fa, good=good_n, detected=detected, delay_min=delay, rank=rank, abstained=abstained, top=top,
        investigation_status=status, failures=tuple(failures), wall_s=wall,
    )  # fmt: skip


def _score(
    world: World, found: list[Finding], truth: list[FaultLabel], config: TrialConfig
) -> tuple[bool | None, float | None, int, int, list[Failure]]:
    """(detected, delay in minutes, good findings, false alarms, failures) of one world's findings."""
    failures: list[Failure] = []
    good = [f for f in found if score.good(f, truth)]
    bad = [f for f in found if f not in good]
    kind = "false_alarm" if world.category != "fault" else "imprecise"
    failures += [Failure(kind, _describe(f)) for f in bad]
    detected: bool | None = None
    delay: float | None = None
    for fault in truth:
        if not score.scored(fault, config.invariants):
            continue
        hit = score.hits(found, fault)
        detected = bool(hit)
        timed = [h.change_ns for h in hit if h.change_ns is not None]
        if timed:  # window-level findings (no change point) say nothing about the delay
            delay = (min(timed) - fault.start_ns) / NS_MIN
        else:
            failures.append(Failure("missed", f"{fault.kind} on {fault.root_cause_service}:"
                                    f"{fault.root_cause_operation or ''} magnitude {fault.magnitude}"))  # fmt: skip
    return detected, delay, len(good), len(bad), failures
