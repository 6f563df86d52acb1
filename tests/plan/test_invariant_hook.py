"""A contract's invariants, checked by the invariant checker through the gate's hook, on the simulated deploy."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from conftest import DEPLOY_MIN, FROM_MIN, NS_MIN, TO_MIN

from controller.cli import main
from detectors.invariants.contract_laws import LawError, check_laws, parse_law, resolve_law
from detectors.judge.contract import parse_contract
from detectors.judge.contract_invariants import contract_law_errors, invariant_checker
from detectors.judge.samples import Scope
from detectors.planning.facts import SystemFacts
from simulator.run import DEFAULT_START_NS

BEFORE = (DEFAULT_START_NS + FROM_MIN * NS_MIN, DEFAULT_START_NS + DEPLOY_MIN * NS_MIN)
AFTER = (DEFAULT_START_NS + DEPLOY_MIN * NS_MIN, DEFAULT_START_NS + TO_MIN * NS_MIN)


def test_the_short_forms_parse_to_laws() -> None:
    law = parse_law("domain-gate:POST /api/orders  calls supabase-auth:VerifyJWT")
    assert (law.kind, law.service, law.operation, law.span_kind, law.subject) == (
        "required_child", "domain-gate", "POST /api/orders", "SERVER", "supabase-auth:VerifyJWT",
    )  # fmt: skip
    assert parse_law("a:b carries order.id").kind == "attribute_present"
    assert parse_law("a:b is never a root").kind == "never_root"
    label = parse_law("domain-gate:POST /api/orders SERVER fanout supabase-auth:VerifyJWT")
    assert (label.kind, label.operation, label.span_kind, label.subject) == (
        "fanout", "POST /api/orders", "SERVER", "supabase-auth:VerifyJWT",
    )  # fmt: skip
    for bad, needle in [("orders are fast", "expected 'A calls B'"), ("nocolon calls a:b", "not 'service:operation'"),
                        ("a:b carries two words", "one attribute key")]:  # fmt: skip
        with pytest.raises(LawError, match=needle):
            parse_law(bad)


def test_laws_with_parameters_take_them_from_the_spec(facts: SystemFacts) -> None:
    name = "domain-gate:POST /api/orders SERVER fanout supabase-auth:VerifyJWT"
    assert resolve_law(name, facts.laws).params == {"min": 1, "max": 1}
    with pytest.raises(LawError, match="has parameters"):
        resolve_law(name, ())
    contract = parse_contract(f"invariants: {{held: ['{name}'], removed: ['ghost']}}")
    assert contract_law_errors(contract, facts.laws) == [contract_law_errors(contract, facts.laws)[0]]
    assert contract_law_errors(contract, facts.laws)[0].startswith("invariants.removed.0:")


def test_held_violated_and_unknown_on_both_sides_of_the_deploy(platform_store: Path) -> None:
    laws = [
        parse_law("domain-gate:POST /api/orders calls supabase-storage:PutObject"),
        parse_law("domain-gate:POST /api/orders calls supabase-auth:VerifyJWT"),
        parse_law("supabase-storage:PutObject carries order.id"),
        parse_law("supabase-storage:PutObject carries receipt.id"),
    ]
    con = duckdb.connect(str(platform_store), read_only=True)
    try:
        assert check_laws(con, laws, *BEFORE) == [False, True, None, None]
        assert check_laws(con, laws, *AFTER) == [True, True, True, False]
        hook = invariant_checker(con, [])
        assert hook(laws[0].label(), Scope(("domain-gate",), "3.4.0", *BEFORE)) is False  # the label form too
        fanout = "domain-gate:POST /api/orders SERVER fanout supabase-auth:VerifyJWT"
        assert hook(fanout, Scope((), None, *AFTER)) is None  # a law with parameters nobody knows: unknown
        assert hook("domain-gate:POST /api/orders calls supabase-storage:PutObject", Scope((), None, *AFTER)) is True
        assert hook("not a law", Scope((), None, *AFTER)) is None
    finally:
        con.close()


def test_the_gate_checks_a_contracts_invariants(platform_store: Path, tmp_path: Path) -> None:
    contract = tmp_path / "c.yaml"
    contract.write_text(
        "service: domain-gate\ninvariants:\n  held:\n"
        "    - 'domain-gate:POST /api/orders calls supabase-storage:PutObject'\n"
        "    - 'domain-gate:POST /api/orders calls supabase-auth:VerifyJWT'\n",
        encoding="utf-8",
    )
    args = ["gate", "--store", str(platform_store), "--contract", str(contract), "--format", "json",
            "--baseline", "window=2026-03-02T03:20/2026-03-02T03:40",
            "--candidate", "window=2026-03-02T03:40/2026-03-02T04:00"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    rows = {m["name"]: m for m in json.loads(result.output)["metrics"] if m["kind"] == "contract"}
    put = rows["contract invariant domain-gate:POST /api/orders calls supabase-storage:PutObject"]
    assert put["outcome"] == "fail" and "violated" in put["text"]
    assert rows["contract invariant domain-gate:POST /api/orders calls supabase-auth:VerifyJWT"]["outcome"] == "pass"
