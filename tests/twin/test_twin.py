"""``twin fit`` / ``twin check`` on real DuckDB stores the simulator wrote (the fitter never sees the scenario)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from controller.cli import main
from simulator.run import DEFAULT_START_NS, simulate
from simulator.scenario import Scenario, load_scenario, parse_scenario
from simulator.sinks import StoreSink
from store import Store, open_readonly
from twin.check import check_twin
from twin.fit import TwinError, fit_twin
from twin.recovery import edges_of, recovery
from twin.render import render

MINUTES = 30
NS_PER_MIN = 60_000_000_000


def _mini(rate: float = 8.0) -> Scenario:
    sc = load_scenario("mini")
    arrivals = sc.arrivals.model_copy(update={"rate_per_s": rate})
    return sc.model_copy(update={"arrivals": arrivals, "hours": MINUTES / 60, "history_days": 0.0})


def _store(path: Path, scenario: Scenario) -> tuple[int, int]:
    store = Store(path)
    try:
        simulate(scenario, StoreSink(store), seed=5)
    finally:
        store.close()
    start = scenario.start_ns(DEFAULT_START_NS)
    return start, start + MINUTES * NS_PER_MIN


@pytest.fixture(scope="module")
def mini_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int, Scenario]:
    path = tmp_path_factory.mktemp("twin") / "mini.duckdb"
    sc = _mini()
    start, end = _store(path, sc)
    return path, start, end, sc


def test_fit_recovers_the_call_graph_service_times_and_servers(mini_store: tuple[Path, int, int, Scenario]) -> None:
    path, start, end, truth = mini_store
    with open_readonly(path) as con:
        fit = fit_twin(con, start, end)
    rec = recovery(truth, fit)
    assert (rec.precision, rec.recall) == (1.0, 1.0), (rec.missed, rec.invented)
    assert max(rec.median_err.values()) < 0.1
    assert all(e == 0.0 for e in rec.servers_err.values())
    insert = next(e for e in fit.edges if e.callee == "db:insert")
    assert insert.fanout == (1, 3) and insert.mode == "parallel"
    post = fit.scenario.operation("api:POST /items")
    assert post.method == "POST"
    assert post.attributes == {"feature.flag": "new-form", "api.version": 2, "internal": True}
    assert post.dynamic_attributes["item.kind"] == ["book", "food", "toy"]
    get = fit.scenario.operation("api:GET /items")
    assert get.dynamic_attributes == {"item.id": "int", "user.id": "user", "request.id": "uuid"}
    assert {e.operation for e in fit.scenario.entrypoints} == {e.operation for e in truth.entrypoints}


def test_render_writes_evidence_and_reads_back_as_the_same_scenario(
    mini_store: tuple[Path, int, int, Scenario],
) -> None:
    path, start, end, _ = mini_store
    with open_readonly(path) as con:
        fit = fit_twin(con, start, end)
    text = render(fit)
    assert parse_scenario(text) == fit.scenario
    assert "# service_time: " in text and "KS distance" in text and "# servers: " in text
    assert "# calls worker:List: prob" in text


def test_check_finds_the_twin_faithful(mini_store: tuple[Path, int, int, Scenario], tmp_path: Path) -> None:
    path, start, end, _ = mini_store
    with open_readonly(path) as con:
        fit = fit_twin(con, start, end)
    result = check_twin(fit.scenario, path, start, end, tmp_path)
    assert result.verdict == "faithful", result.reasons
    assert result.behaviour_error() < 0.1


def test_check_calls_the_true_world_faithful_and_a_halved_service_time_deviating(
    mini_store: tuple[Path, int, int, Scenario], tmp_path: Path
) -> None:
    """The world itself (another seed) is only sampling noise away from its store; half the own work is not."""
    path, start, end, truth = mini_store
    itself = check_twin(truth, path, start, end, tmp_path)
    assert itself.verdict == "faithful", itself.reasons
    services = truth.model_dump()["services"]
    services["worker"]["operations"]["List"]["service_time"]["median_ms"] /= 2
    halved = Scenario.model_validate(truth.model_dump() | {"services": services})
    wrong = check_twin(halved, path, start, end, tmp_path)
    assert wrong.verdict == "deviates"
    assert any(r.startswith("worker:List: p50") for r in wrong.reasons), wrong.reasons
    assert not any(r.startswith("db:insert") for r in wrong.reasons), wrong.reasons  # not a caller of List


def test_an_operation_with_too_little_data_is_a_stub_that_says_why(tmp_path: Path) -> None:
    sc = _mini(rate=3.0)
    entry = [*sc.entrypoints]
    entry[1] = entry[1].model_copy(update={"weight": 0.004})  # POST /items: a handful of requests in 30 minutes
    path = tmp_path / "sparse.duckdb"
    start, end = _store(path, sc.model_copy(update={"entrypoints": entry}))
    with open_readonly(path) as con:
        fit = fit_twin(con, start, end)
    assert "api:POST /items" in fit.stubs
    assert "too little data" in fit.stubs["api:POST /items"]
    assert "api:GET /items" not in fit.stubs
    stub = fit.scenario.operation("api:POST /items").service_time
    assert stub.sigma == 0.01  # fixed latency
    text = render(fit)
    assert "api:POST /items: too little data" in text and "# STUB (too little data" in text


def test_an_empty_window_is_a_clear_error(mini_store: tuple[Path, int, int, Scenario]) -> None:
    path, start, _, _ = mini_store
    with open_readonly(path) as con, pytest.raises(TwinError, match="no SERVER or CLIENT spans"):
        fit_twin(con, start - 120 * NS_PER_MIN, start - 60 * NS_PER_MIN)


def test_cli_fit_then_check(mini_store: tuple[Path, int, int, Scenario], tmp_path: Path) -> None:
    path, _, _, truth = mini_store
    out = tmp_path / "world.toml"
    runner = CliRunner()
    fitted = runner.invoke(main, ["twin", "fit", "--store", str(path), "--window", f"{MINUTES}m", "--out", str(out)])
    assert fitted.exit_code == 0, fitted.output
    twin = load_scenario(out)
    assert {(a, b) for a, b in edges_of(twin)} == edges_of(truth)
    checked = runner.invoke(
        main, ["twin", "check", "--store", str(path), "--window", f"{MINUTES}m", "--twin", str(out)]
    )
    assert checked.exit_code == 0, checked.output
    assert "verdict: faithful" in checked.output
    missing = runner.invoke(main, ["twin", "fit", "--store", str(tmp_path / "none.duckdb"), "--window", "1h"])
    assert missing.exit_code != 0 and "does not exist" in missing.output
