"""`driftscope gate` end to end on simulated deploys in real DuckDB stores: verdicts, exit codes, output."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import requests
from click.testing import CliRunner
from serverproc import start_server

from controller.cli_gate import gate
from controller.gate import GateRequest, SideSpec, align_baseline, parse_side, run_gate
from detectors.judge import Scope
from simulator.run import simulate
from simulator.scenario import Deploy, Fault, Scenario, load_scenario
from simulator.sinks import StoreSink
from store.connection import Store

DEPLOY_MIN = 60
VERSIONS = ["--baseline", "version=1.0.0", "--candidate", "version=1.1.0", "--service", "api"]


def _mini(faults: list[Fault]) -> Scenario:
    """The mini scenario with api 1.0.0 -> 1.1.0 at minute 60, plus ``faults`` (which may carry the deploy)."""
    scenario = load_scenario("mini")
    deploys = (
        [] if any(f.deploy_version for f in faults) else [Deploy(service="api", version="1.1.0", at_min=DEPLOY_MIN)]
    )
    return scenario.model_copy(update={"deploys": deploys, "faults": faults})


def _store(directory: Path, name: str, faults: list[Fault], seed: int) -> Path:
    path = directory / f"{name}.duckdb"
    store = Store(path)
    simulate(_mini(faults), StoreSink(store), hours=2.0, from_minute=0, seed=seed)
    store.close()
    return path


def _fault(kind: str, target: str, magnitude: float, **extra: object) -> Fault:
    """A fault that starts with the deploy of api 1.1.0 and lasts to the end of the run."""
    fields = {"start_min": DEPLOY_MIN, "end_min": 180, "deploy_version": "1.1.0", **extra}
    return Fault.model_validate({"kind": kind, "target": target, "magnitude": magnitude, **fields})


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("gate")
    template = "fraud check timed out for order {id} after {ms} ms"
    return {
        "benign": _store(d, "benign", [], seed=3),
        "slow": _store(d, "slow", [_fault("latency_regression", "api:GET /items", 0.2)], 4),
        "errors": _store(d, "errors", [_fault("error_burst", "api:GET /items", 0.01)], 5),
        "physics": _store(
            d,
            "physics",
            [
                _fault("broken_propagation", "worker", 0.6),
                _fault("new_log_template", "worker", 10, template=template, severity="ERROR", deploy_version=None),
            ],
            6,
        ),
    }


def _run(store: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(gate, ["--store", str(store), *args])
    return result.exit_code, result.output


def test_benign_deploy_passes(stores: dict[str, Path]) -> None:
    code, out = _run(stores["benign"], *VERSIONS)
    assert code == 0, out
    assert out.startswith("gate: PASS")
    assert "latency api:GET /items" in out and "error_ratio api:GET /items" in out


def test_latency_regression_fails_with_the_numbers(stores: dict[str, Path]) -> None:
    code, out = _run(stores["slow"], *VERSIONS, "--format", "json")
    assert code == 1, out
    result = json.loads(out)
    assert result["verdict"] == "fail"
    latency = next(m for m in result["metrics"] if m["name"] == "latency api:GET /items")
    assert latency["outcome"] == "fail" and latency["critical"]
    assert latency["ci_low"] < 0.2 < latency["ci_high"] or abs(latency["effect"] - 0.2) < 0.08
    assert min(latency["n_baseline"], latency["n_candidate"]) >= 300
    other = next(m for m in result["metrics"] if m["name"] == "latency api:POST /items")
    assert other["outcome"] == "pass"


def test_error_regression_fails(stores: dict[str, Path]) -> None:
    code, out = _run(stores["errors"], *VERSIONS)
    assert code == 1, out
    line = next(x for x in out.splitlines() if "error_ratio api:GET /items" in x)
    assert line.startswith("fail") and " pp [" in line


def test_the_same_store_and_arguments_give_the_same_verdict(stores: dict[str, Path]) -> None:
    first = _run(stores["slow"], *VERSIONS, "--format", "json")
    second = _run(stores["slow"], *VERSIONS, "--format", "json")
    assert first == second


def test_too_few_requests_is_insufficient_data(stores: dict[str, Path]) -> None:
    code, out = _run(
        stores["benign"],
        "--baseline",
        "window=2026-03-02T00:00/2026-03-02T01:00",
        "--candidate",
        "window=2026-03-02T01:00/2026-03-02T01:01",
        "--service",
        "api",
    )
    assert code == 3, out
    assert "insufficient data:" in out and "need 300" in out


def test_marginal_exit_code_only_when_asked(stores: dict[str, Path]) -> None:
    # A contract override makes every latency shift at least 'marginal'-sized: any significant one.
    con = Store(stores["slow"]).cursor()
    req = GateRequest(
        baseline=SideSpec(version="1.0.0"),
        candidate=SideSpec(version="1.1.0"),
        service="api",
        contract="thresholds:\n  latency: {critical: false}\n  latency_p99: {critical: false}\n",
    )
    result = run_gate(con, req)
    con.close()
    assert result.verdict == "marginal", result.summary
    spec = json.dumps({"latency": {"critical": False}, "latency_p99": {"critical": False}})
    contract = stores["slow"].parent / "noncritical.yaml"
    contract.write_text(f"thresholds: {spec}\n", encoding="utf-8")
    assert _run(stores["slow"], *VERSIONS, "--contract", str(contract))[0] == 0
    assert _run(stores["slow"], *VERSIONS, "--contract", str(contract), "--fail-on", "marginal")[0] == 2


def test_markdown_fits_a_pull_request_comment(stores: dict[str, Path]) -> None:
    code, out = _run(stores["slow"], *VERSIONS, "--format", "markdown")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("### driftscope gate: **FAIL**")
    table = [x for x in lines if x.startswith("|")]
    assert table[0] == "| outcome | metric | result | n (base / cand) |"
    assert any("fail (critical)" in x and "latency api:GET /items" in x for x in table)
    assert "<details>" in out and "</details>" in out


@pytest.mark.parametrize(
    "args",
    [
        ["--baseline", "version=1.0.0"],  # missing --candidate
        ["--baseline", "verson=1.0.0", "--candidate", "version=1.1.0", "--service", "api"],
        ["--baseline", "window=2026-03-02T02:00/2026-03-02T01:00", "--candidate", "version=1.1.0", "--service", "api"],
        ["--baseline", "version=1.0.0", "--candidate", "version=1.1.0"],  # versions need --service
        [*VERSIONS, "--format", "yaml"],
        [*VERSIONS, "--alpha", "0.7"],
        [*VERSIONS, "--contract", "/nonexistent/contract.yaml"],
    ],
)
def test_usage_errors_exit_4(stores: dict[str, Path], args: list[str]) -> None:
    code, out = _run(stores["benign"], *args)
    assert code == 4, out
    assert "Error" in out


def test_missing_store_is_a_usage_error(tmp_path: Path) -> None:
    code, out = _run(tmp_path / "absent.duckdb", *VERSIONS)
    assert code == 4 and "does not exist" in out


CONTRACT = """
change: "api: list items from the worker"
service: api
operations:
  - name: "api:GET /items"
    slo: {latency_ms: 1000, quantile: 0.99, error_ratio: 0.05}
    span_attributes: [user.id, item.id]
calls:
  present: [{from: "api:GET /items", to: "worker:List"}]
telemetry:
  metrics: [http.server.request.duration, queue.depth]
  logs_with_trace_context: true
  trace_propagation: true
"""


def test_a_kept_contract_passes_and_a_broken_one_fails(stores: dict[str, Path], tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(CONTRACT, encoding="utf-8")
    code, out = _run(stores["benign"], *VERSIONS, "--contract", str(good), "--format", "json")
    assert code == 0, out
    checks = {m["name"]: m["outcome"] for m in json.loads(out)["metrics"] if m["kind"] == "contract"}
    assert checks["contract edge api:GET /items -> worker:List"] == "pass"
    assert checks["contract slo latency api:GET /items"] == "pass"
    assert checks["contract span attributes api:GET /items"] == "pass"
    assert checks["contract trace propagation api"] == "pass"
    assert checks["contract logs trace context api"] == "pass"
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        CONTRACT.replace("latency_ms: 1000", "latency_ms: 1")
        .replace("[user.id, item.id]", "[user.id, payment.id]")
        .replace("present:", "removed:")
        .replace("queue.depth]", "queue.depth, orders.placed]")
        + "invariants:\n  held: ['api:GET /items calls worker:List']\n",
        encoding="utf-8",
    )
    code, out = _run(stores["benign"], *VERSIONS, "--contract", str(bad), "--format", "json")
    assert code == 1, out
    checks = {m["name"]: m for m in json.loads(out)["metrics"] if m["kind"] == "contract"}
    assert checks["contract edge api:GET /items -> worker:List"]["outcome"] == "fail"
    assert checks["contract slo latency api:GET /items"]["outcome"] == "fail"
    assert "payment.id" in checks["contract span attributes api:GET /items"]["text"]
    assert "orders.placed" in checks["contract metrics api"]["text"]
    invariant = checks["contract invariant api:GET /items calls worker:List"]
    # the contract's invariants are checked by the invariant checker (the edge still exists: the law holds)
    assert invariant["outcome"] == "pass" and "holds" in invariant["text"]


def test_a_declared_operation_without_data_is_insufficient(stores: dict[str, Path], tmp_path: Path) -> None:
    contract = tmp_path / "new.yaml"
    contract.write_text('operations:\n  - name: "api:DELETE /items"\n', encoding="utf-8")
    code, out = _run(stores["benign"], *VERSIONS, "--contract", str(contract))
    assert code == 3, out
    assert "api:DELETE /items" in out


def test_invalid_contract_names_the_field(stores: dict[str, Path], tmp_path: Path) -> None:
    contract = tmp_path / "invalid.yaml"
    contract.write_text("operations:\n  - name: GET /items\n    slo: {quantile: 2}\n", encoding="utf-8")
    code, out = _run(stores["benign"], *VERSIONS, "--contract", str(contract))
    assert code == 4
    assert "operations.0.name" in out and "operations.0.slo.quantile" in out


def test_exit_status_of_a_real_process(stores: dict[str, Path]) -> None:
    cmd = [sys.executable, "-c", "from controller.cli_gate import gate; gate(prog_name='driftscope gate')"]
    slow = subprocess.run(
        [*cmd, "--store", str(stores["slow"]), *VERSIONS], capture_output=True, text=True, check=False
    )
    assert slow.returncode == 1, slow.stderr
    bad = subprocess.run([*cmd, "--store", str(stores["slow"]), "--nope"], capture_output=True, text=True, check=False)
    assert bad.returncode == 4 and "No such option" in bad.stderr


def test_gate_through_the_service_api(stores: dict[str, Path]) -> None:
    """POST /api/gate on a real `driftscope serve` (bearer token on), rendered locally by the CLI."""
    local = _run(stores["slow"], *VERSIONS, "--format", "markdown")  # before serve takes the store's lock
    srv = start_server(stores["slow"], ("DRIFTSCOPE_AUTH__API_TOKEN", "s3cret"), ("DRIFTSCOPE_JOBS__ENABLED", "false"))
    try:
        url = srv.api_url
        result = CliRunner().invoke(gate, [*VERSIONS, "--api", url, "--api-token", "s3cret", "--format", "markdown"])
        assert result.exit_code == 1, result.output
        assert result.output.startswith("### driftscope gate: **FAIL**")
        assert result.output == local[1]  # the same verdict and numbers, locally or through the service
        denied = CliRunner().invoke(gate, [*VERSIONS, "--api", url, "--api-token", "wrong"])
        assert denied.exit_code == 4 and "401" in denied.output
        bad = requests.post(
            f"{url}/api/gate",
            data=b'{"baseline": {"version": "1.0.0"}, "candidate": {}}',
            headers={"Authorization": "Bearer s3cret"},
            timeout=30,
        )
        assert bad.status_code == 400 and "candidate" in bad.json()["error"]
    finally:
        assert srv.stop() == 0


def test_a_version_baseline_is_aligned_with_the_candidate(stores: dict[str, Path]) -> None:
    con = duckdb.connect(str(stores["benign"]), read_only=True)
    req = GateRequest(
        baseline=SideSpec(version="1.0.0"),
        candidate=parse_side("version=1.1.0,window=2026-03-02T01:00/2026-03-02T01:20"),
        service="api",
    )
    result = run_gate(con, req)
    con.close()
    # Before/after a deploy: the baseline is as long as the candidate, just before it.
    assert result.candidate.end - result.candidate.start <= dt.timedelta(minutes=20)
    assert result.baseline.end <= result.candidate.start
    span = result.baseline.end - result.baseline.start
    assert dt.timedelta(minutes=19) <= span <= dt.timedelta(minutes=20)
    # A canary beside its baseline: the baseline is read over the candidate's own time range.
    canary = align_baseline(Scope(("api",), "1.0.0", 0, 100), Scope(("api",), "1.1.0", 40, 60), req)
    assert (canary.start_ns, canary.end_ns) == (40, 60)


def test_broken_propagation_and_a_new_error_template_are_caught(stores: dict[str, Path], tmp_path: Path) -> None:
    contract = tmp_path / "physics.yaml"
    contract.write_text("service: worker\ntelemetry:\n  trace_propagation: true\n", encoding="utf-8")
    worker = ["--baseline", "version=0.3.1", "--candidate", "version=1.1.0", "--service", "worker"]
    code, out = _run(stores["physics"], *worker, "--contract", str(contract), "--format", "json")
    assert code == 1, out
    metrics = {m["name"]: m for m in json.loads(out)["metrics"]}
    assert metrics["contract trace propagation worker"]["outcome"] == "fail"
    templates = metrics["new_log_templates worker"]
    assert templates["outcome"] == "fail"
    assert "fraud check timed out for order <n> after <n> ms" in templates["text"]  # numbers masked
    # A deploy that keeps the trace context passes the same contract.
    kept = tmp_path / "kept.yaml"
    kept.write_text("service: api\ntelemetry:\n  trace_propagation: true\n", encoding="utf-8")
    code, out = _run(stores["benign"], *VERSIONS, "--contract", str(kept))
    assert code == 0, out
