"""The adversary's pure parts: scoring rules, world edits, the manifest, and the search's seed ranges."""

from __future__ import annotations

from pathlib import Path

import pytest

from adversary import mutate, score
from adversary.mde import Cell, describe, with_multiple
from adversary.regressions import EXPECT, Regression, holds, read_manifest, write_manifest, write_regression
from adversary.search import HELD_OUT_SEARCH_SEED, world_seeds
from adversary.trial import Failure, TrialResult
from detectors.base import SignalKey
from detectors.findings import Finding
from simulator.labels import ExpectedSignal, FaultLabel
from simulator.scenario import load_scenario
from simulator.world_faults import DRIFT_LEVEL_MIN, MIN_EFFECT, utilisation, visible_share
from simulator.worlds import INCIDENT_MIN, WorldConfig, generate_world

NS_MIN = 60_000_000_000
FAULT = FaultLabel(
    kind="error_burst", root_cause_service="inventory", root_cause_operation="Reserve", start_ns=100 * NS_MIN,
    end_ns=160 * NS_MIN, start="", end="", magnitude=0.05,
    expected=[ExpectedSignal("error_ratio", "inventory", "Reserve", "up")],
    affected=[ExpectedSignal("error_ratio", "inventory", "Reserve", "up"),
              ExpectedSignal("error_ratio", "checkout", "PlaceOrder", "up")],
)  # fmt: skip


def _finding(kind: str, service: str, operation: str | None, change_min: float | None, **kw: str) -> Finding:
    return Finding(
        detector="error_rate", signal=SignalKey(kind, service, operation, kw.get("metric"), kw.get("attributes")),
        window_start_ns=40 * NS_MIN, window_end_ns=200 * NS_MIN,
        change_ns=None if change_min is None else int(change_min * NS_MIN), severity="warning", score=0.9,
        effect=1.0, effect_text="", before=0.0, after=1.0, p_value=1e-9, q_value=1e-8,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("finding", "hit", "good"),
    [
        (_finding("error_ratio", "inventory", "Reserve", 101), True, True),
        (_finding("error_ratio", "inventory", "Reserve", 96), True, True),  # 5 minutes early is in time
        (_finding("error_ratio", "inventory", "Reserve", 94), False, False),  # earlier is not
        (_finding("error_ratio", "checkout", "PlaceOrder", 102), False, True),  # a consequence: good, not a hit
        (_finding("latency_p99", "inventory", "Reserve", 101), False, False),  # another family
        (_finding("error_ratio", "inventory", "Reserve", None), True, True),  # window-level, overlapping
    ],
)
def test_findings_are_scored_like_the_library_benchmark(finding: Finding, hit: bool, good: bool) -> None:
    assert bool(score.hits([finding], FAULT)) is hit
    assert score.good(finding, [FAULT]) is good


def test_rank_names_the_first_candidate_on_the_root_cause() -> None:
    cands: list[tuple[str, str | None]] = [("checkout", "PlaceOrder"), ("inventory", "Reserve"), ("inventory", None)]
    assert score.rank_of(cands, [FAULT]) == 2
    assert score.rank_of([("inventory", None)], [FAULT]) is None  # the truth names an operation
    assert score.rank_of([], [FAULT]) is None


def test_world_edits_keep_worlds_valid_and_change_what_they_say() -> None:
    world = next(w for w in (generate_world(s) for s in range(200)) if w.fault == "latency_regression")
    size = mutate.magnitude_of(world)
    assert size is not None and size >= 1.0
    smaller = mutate.with_magnitude(world, 0.5)
    assert mutate.magnitude_of(smaller) == pytest.approx(size * 0.5, rel=1e-3)
    slower = mutate.with_rate(world, 0.5)
    assert slower.scenario.arrivals.rate_per_s == pytest.approx(world.scenario.arrivals.rate_per_s * 0.5, rel=1e-3)
    busy = max(utilisation(world.scenario, 1.0).values())
    assert max(utilisation(slower.scenario, 0.5).values()) <= busy * 1.0001  # servers scaled down with the traffic
    short = mutate.with_window(mutate.with_history(world, 10), 10)
    assert short.history_min == mutate.MIN_HISTORY_MIN
    assert short.window_end_min == INCIDENT_MIN + mutate.MIN_AFTER_MIN
    assert all(f.end_min <= short.window_end_min for f in short.scenario.faults)
    needed = mutate.needed_services(world.scenario)
    for service in world.scenario.services:
        smaller_world = mutate.without_service(world, service)
        if service in needed:
            assert smaller_world is None
        elif smaller_world is not None:
            assert service not in smaller_world.scenario.services
            refs = smaller_world.scenario.operation_refs()
            assert all(c.to in refs for r in refs for c in smaller_world.scenario.operation(r).calls)


def test_regressions_round_trip_through_files_and_the_manifest(tmp_path: Path) -> None:
    world = generate_world(3)
    failure = Failure("false_alarm", 'bocpd: x:y rate -25 % "quoted"')
    entry = write_regression(tmp_path, world, failure)
    assert entry.status == "open" and entry.expect == EXPECT["false_alarm"]
    assert (tmp_path / entry.file).is_file()
    back = read_manifest(tmp_path)
    assert back == [entry]
    rebuilt = back[0].world(tmp_path)
    assert rebuilt.history_min == world.history_min and rebuilt.window_end_min == world.window_end_min
    assert rebuilt.scenario.services == world.scenario.services
    assert load_scenario(tmp_path / entry.file).faults == world.scenario.faults
    fixed = Regression(**{**entry.__dict__, "status": "fixed"})
    write_manifest(tmp_path, [fixed])
    assert read_manifest(tmp_path)[0].status == "fixed"


def _result(**kw: object) -> TrialResult:
    base: dict[str, object] = dict(
        seed=1, category="fault", subject="error_burst", spans=1, series=4, days=0.1, findings=(), false_alarms=0,
        good=0, detected=None, delay_min=None, rank=None, abstained=None, top="-", investigation_status=None,
        failures=(),
    )  # fmt: skip
    return TrialResult(**{**base, **kw})  # type: ignore[arg-type]


def test_expectations_read_the_trial() -> None:
    assert holds("detected", _result(detected=True)) and not holds("detected", _result(detected=False))
    assert holds("root_cause_first", _result(rank=1)) and not holds("root_cause_first", _result(rank=2))
    assert holds("abstain", _result(abstained=True)) and not holds("abstain", _result(abstained=False))
    assert not holds("no_false_alarm", _result(failures=(Failure("false_alarm", "x"),)))
    assert holds("no_false_alarm", _result(failures=(Failure("missed", "x"),)))
    with pytest.raises(ValueError, match="unknown expectation"):
        holds("sometimes", _result())


def test_search_seeds_never_reach_the_held_out_worlds_by_accident() -> None:
    assert world_seeds(0, 3) == [0, 1, 2]
    assert world_seeds(HELD_OUT_SEARCH_SEED, 1) == [10_000]
    with pytest.raises(ValueError, match="1000 worlds"):
        world_seeds(1, 1001)
    assert set(MIN_EFFECT) >= {"latency_regression", "error_burst", "capacity_saturation"}


def test_the_mde_search_sizes_faults_in_what_their_signals_show() -> None:
    """At 1x the stated minimum a cache's slowdown shows +100 % in its callers' spans, not in its own work,
    and a slow drift has added DRIFT_LEVEL_MIN by the end of its window; the table reads the drift's level."""
    config = WorldConfig(shares=(0.0, 0.0, 1.0), fault_kinds=("dependency_slowdown",), hostile=0.0)
    cache = next(w for w in (generate_world(s, config) for s in range(300))
                 if visible_share(w.scenario, w.scenario.faults[0].target) < 0.5)  # fmt: skip
    at_minimum = with_multiple(cache, 1.0).scenario
    fault = at_minimum.faults[0]
    assert fault.magnitude * visible_share(at_minimum, fault.target) == pytest.approx(1.0, rel=1e-3)
    assert fault.magnitude > 2.0
    drift_config = WorldConfig(shares=(0.0, 0.0, 1.0), fault_kinds=("slow_drift",), hostile=0.0)
    drift = with_multiple(generate_world(7, drift_config), 1.0).scenario
    d = drift.faults[0]
    reached = d.magnitude * visible_share(drift, d.target) * (d.end_min - d.start_min) / 1440
    assert reached == pytest.approx(DRIFT_LEVEL_MIN, rel=1e-3)
    assert describe(Cell("slow_drift", 1.0, 2.0, ())) == f"{2 * DRIFT_LEVEL_MIN:g}"
    assert describe(Cell("latency_regression", 1.0, None, ())) == f"> {4 * MIN_EFFECT['latency_regression']:g}"


def test_a_trial_rerun_in_its_directory_starts_from_a_fresh_store(tmp_path: Path) -> None:
    # a reused work directory once kept the first run's store: the second simulated into it and every span,
    # edge and child count doubled (invariant checks then saw half the calls of every edge "missing")
    from adversary.trial import TrialConfig, run_trial

    world = generate_world(5, WorldConfig(history_h=(6.0, 6.0), spans_max=1e4, shares=(1, 0, 0), hostile=0.0))
    first = run_trial(world, tmp_path, TrialConfig(investigate=False))
    second = run_trial(world, tmp_path, TrialConfig(investigate=False))
    import duckdb

    with duckdb.connect(str(tmp_path / "world.duckdb"), read_only=True) as con:
        stored = con.execute("SELECT count(*) FROM spans").fetchone()
    assert first.spans > 0 and stored == (first.spans,)
    assert second.findings == first.findings and second.false_alarms == first.false_alarms
