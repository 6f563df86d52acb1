"""Design-time checks on the layered platform: every rule of its spec (and the built-in ones) catches its violation.

Each case is a small plan that breaks exactly the rules it names; the test asserts the
violations found are exactly those, with the contract field that carries them. The
coverage test fails when the spec gains a rule no case exercises.
"""

from __future__ import annotations

import pytest
from receipts_repo import EXAMPLE

from detectors.judge.contract import load_contract, parse_contract
from detectors.planning.design import BUILTIN_RULES, PlanError, check_design
from detectors.planning.facts import SystemFacts

NEW_WRITE = '{name: "domain-gate:POST /api/orders/{id}/cancel", added: true'
CASES: dict[str, tuple[str, set[tuple[str, str]]]] = {
    "bff-never-writes-the-database": (
        """
operations: [{name: "supabase-postgres:INSERT receipt", added: true}]
calls: {present: [{from: "web-bff:POST /orders", to: "supabase-postgres:INSERT receipt"}]}
""",
        {("bff-never-writes-the-database", "calls.present.0"), ("writes-pass-the-domain-gate", "calls.present.0")},
    ),
    "writes-pass-the-domain-gate": (
        """
operations: [{name: "supabase-storage:PutObject", added: true}]
calls:
  present:
    - {from: "domain-gate:POST /api/orders", to: "supabase-storage:PutObject"}
    - {from: "supabase-storage:PutObject", to: "supabase-postgres:UPDATE order status"}
""",
        {("writes-pass-the-domain-gate", "calls.present.1")},
    ),
    "auth-verified-on-every-write": (
        f"""
operations: [{NEW_WRITE}, span_attributes: [enduser.id]}}]
calls:
  present: [{{from: "domain-gate:POST /api/orders/{{id}}/cancel", to: "supabase-postgres:UPDATE order status"}}]
""",
        {("auth-verified-on-every-write", "operations.0")},
    ),
    "writes-name-the-end-user": (
        f"""
operations: [{NEW_WRITE}, span_attributes: [order.id]}}]
calls:
  present:
    - {{from: "domain-gate:POST /api/orders/{{id}}/cancel", to: "supabase-auth:VerifyJWT"}}
    - {{from: "domain-gate:POST /api/orders/{{id}}/cancel", to: "supabase-postgres:UPDATE order status"}}
""",
        {("writes-name-the-end-user", "operations.0")},
    ),
    "every-service-has-a-layer": (
        """
operations: [{name: "pdf-renderer:Render", added: true}]
calls: {present: [{from: "domain-gate:POST /api/orders", to: "pdf-renderer:Render", mode: parallel}]}
""",
        {("every-service-has-a-layer", "operations.0.name")},
    ),
    "call-graph-stays-acyclic": (
        """
calls: {present: [{from: "order-worker:ProcessOrder", to: "temporal:StartWorkflow", optional: true}]}
""",
        {("call-graph-stays-acyclic", "calls.present.0")},
    ),
    "slo-within-the-dependency-chain": (
        """
operations: [{name: "domain-gate:POST /api/orders", slo: {latency_ms: 5, quantile: 0.99}}]
""",
        {("slo-within-the-dependency-chain", "operations.0.slo.latency_ms")},
    ),
    "invariants-kept-or-declared-removed": (
        """
calls: {removed: [{from: "domain-gate:POST /api/orders", to: "temporal:StartWorkflow"}]}
invariants: {held: ["domain-gate:POST /api/orders calls temporal:StartWorkflow"]}
""",
        {
            ("invariants-kept-or-declared-removed", "calls.removed.0"),
            ("invariants-kept-or-declared-removed", "invariants.held.0"),
        },
    ),
}


def _found(text: str, facts: SystemFacts) -> set[tuple[str, str]]:
    result = check_design(parse_contract(text), facts)
    assert result.accepted is (not result.violations)
    return {(v.rule, v.field) for v in result.violations}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_each_rule_catches_its_violation(rule: str, facts: SystemFacts) -> None:
    text, expected = CASES[rule]
    found = _found(text, facts)
    assert found == expected
    assert rule in {r for r, _ in found}


def test_every_rule_of_the_platform_spec_has_a_case(facts: SystemFacts) -> None:
    b = facts.spec.boundaries
    rules = {r.name for r in (*b.forbidden_edges, *b.required_paths, *b.requirements)} | set(BUILTIN_RULES)
    assert len(rules) == 8
    assert rules == set(CASES)


def test_a_plan_that_keeps_every_rule_is_accepted(facts: SystemFacts) -> None:
    result = check_design(load_contract(EXAMPLE / "receipts.yaml"), facts)
    assert result.accepted and result.violations == []
    assert {r.rule for r in result.rules} == set(CASES) and all(r.violations == 0 for r in result.rules)
    assert any("supabase-storage:PutObject" in n for n in result.notes)  # the spec's call graph needs the edge


def test_the_refused_example_names_the_rules_it_breaks(facts: SystemFacts) -> None:
    result = check_design(load_contract(EXAMPLE / "receipts-refused.yaml"), facts)
    assert not result.accepted
    assert {v.rule for v in result.violations} == {"bff-never-writes-the-database", "writes-pass-the-domain-gate"}
    assert all(v.subject == "web-bff:POST /orders -> supabase-postgres:INSERT receipt" for v in result.violations)


def test_requirements_apply_to_operations_losing_a_call(facts: SystemFacts) -> None:
    text = """
calls: {removed: [{from: "domain-gate:POST /api/orders", to: "supabase-auth:VerifyJWT"}]}
invariants: {removed: ["domain-gate:POST /api/orders calls supabase-auth:VerifyJWT"]}
"""
    assert _found(text, facts) == {("auth-verified-on-every-write", "calls.removed.0")}


def test_a_declared_removal_keeps_the_invariant_rule(facts: SystemFacts) -> None:
    text = """
calls: {removed: [{from: "domain-gate:POST /api/orders", to: "temporal:StartWorkflow"}]}
invariants: {removed: ["domain-gate:POST /api/orders calls temporal:StartWorkflow"]}
"""
    assert _found(text, facts) == set()


def test_slo_floor_uses_todays_latencies_and_passes_a_feasible_budget(facts: SystemFacts) -> None:
    op = facts.operations["domain-gate:POST /api/orders"]
    slowest = max(facts.operations[c].quantile_ms(0.99) or 0.0 for c in op.required)
    tight = f'operations: [{{name: "domain-gate:POST /api/orders", slo: {{latency_ms: {slowest * 0.9:.3f}}}}}]'
    loose = f'operations: [{{name: "domain-gate:POST /api/orders", slo: {{latency_ms: {slowest * 2:.3f}}}}}]'
    assert _found(tight, facts) == {("slo-within-the-dependency-chain", "operations.0.slo.latency_ms")}
    assert _found(loose, facts) == set()
    result = check_design(parse_contract(tight), facts)
    assert "ms" in result.violations[0].text and "temporal:StartWorkflow" in result.violations[0].text


def test_a_new_operation_gets_the_floor_of_its_own_calls(facts: SystemFacts) -> None:
    """An added operation has no data: its floor comes from the calls it will make."""
    floor = facts.operations["supabase-postgres:UPDATE order status"].quantile_ms(0.99)
    assert floor is not None
    text = f"""
operations:
  - {NEW_WRITE}, span_attributes: [enduser.id], slo: {{latency_ms: {floor * 0.8:.3f}}}}}
calls:
  present:
    - {{from: "domain-gate:POST /api/orders/{{id}}/cancel", to: "supabase-auth:VerifyJWT"}}
    - {{from: "domain-gate:POST /api/orders/{{id}}/cancel", to: "supabase-postgres:UPDATE order status"}}
"""
    assert _found(text, facts) == {("slo-within-the-dependency-chain", "operations.0.slo.latency_ms")}
    async_calls = text.replace(
        'to: "supabase-postgres:UPDATE order status"}', 'to: "supabase-postgres:UPDATE order status", mode: async}'
    )
    async_calls = async_calls.replace(
        'to: "supabase-auth:VerifyJWT"}', 'to: "supabase-auth:VerifyJWT", optional: true}'
    )
    assert ("slo-within-the-dependency-chain", "operations.0.slo.latency_ms") not in _found(async_calls, facts)


def test_unknown_operations_and_laws_are_usage_errors_naming_fields(facts: SystemFacts) -> None:
    text = """
operations: [{name: "domain-gate:POST /api/refunds"}]
calls: {present: [{from: "domain-gate:POST /api/orders", to: "payments:Refund"}],
        removed: [{from: "web-bff:GET /nowhere", to: "domain-gate:GET /api/orders"}]}
invariants: {held: ["domain-gate:POST /api/orders sometimes calls x:y", "ghost:Op calls domain-gate:GET /api/orders"]}
"""
    with pytest.raises(PlanError) as err:
        check_design(parse_contract(text), facts)
    message = str(err.value)
    for field in (
        "operations.0.name",
        "calls.present.0.to",
        "calls.removed.0.from",
        "invariants.held.0",
        "invariants.held.1",
    ):
        assert field in message, message
    assert "domain-gate:POST /api/refunds" in message and "added: true" in message
