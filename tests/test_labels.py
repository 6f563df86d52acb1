"""Ground-truth labels: what a fault moves, and what a correct detector may also report as its consequences."""

from __future__ import annotations

from simulator.labels import ground_truth
from simulator.plan import Plan
from simulator.scenario import library, load_scenario


def _affected(name: str) -> set[tuple[str, str, str | None]]:
    plan = Plan.compile(load_scenario(library()[name]))
    (fault,) = ground_truth(plan, 0, plan.scenario.hours).faults
    return {(e.signal, e.service, e.operation) for e in fault.affected}


def test_an_added_call_slows_its_caller_and_loads_its_callee() -> None:
    affected = _affected("call-edge-added")
    # the caller now waits for the new call (and so do its own callers, up the chain)
    assert ("latency_p50", "frontend", "GET /product/{id}") in affected
    assert ("latency_p99", "frontend", "GET /product/{id}") in affected
    # the callee serves more calls, on the same servers
    assert ("rate", "postgres", "SELECT product") in affected
    assert ("latency_p99", "postgres", "SELECT product") in affected
    # an operation neither upstream of the caller nor downstream of the callee is not a consequence
    assert not any(service == "payment" for _, service, _ in affected)


def test_a_removed_call_makes_nothing_slower() -> None:
    affected = _affected("call-edge-removed")
    assert not any(signal.startswith("latency_") for signal, _, _ in affected)


def test_a_removed_call_empties_its_callee_and_what_it_calls() -> None:
    # found on development worlds (21600, 21623): a removed edge's callee and the operations below it lose those
    # calls, and their falling rates were scored as unrelated findings (an added edge's were always consequences)
    plan = Plan.compile(load_scenario(library()["call-edge-removed"]))
    (fault,) = ground_truth(plan, 0, plan.scenario.hours).faults
    callee = plan.op_index[plan.scenario.faults[0].to or ""]
    rates = {(e.service, e.operation) for e in fault.affected if e.signal == "rate" and e.direction == "down"}
    assert (plan.ops[callee].service, plan.ops[callee].name) in rates
    below = {(plan.ops[s.op].service, plan.ops[s.op].name) for s in plan.sites
             if s.parent >= 0 and plan.sites[s.parent].op == callee}  # fmt: skip
    assert below <= rates


def test_a_retry_storm_changes_the_retrying_callers_fan_out() -> None:
    # found on held-out worlds (120021, 120068, 120082): a caller retrying a failing call makes it up to three
    # more times, and the call-edge check saw that fan-out change on the caller; it was scored as unrelated
    plan = Plan.compile(load_scenario(library()["retry-storm"]))
    (fault,) = ground_truth(plan, 0, plan.scenario.hours).faults
    edges = {(e.service, e.operation, e.detail) for e in fault.affected if e.signal == "call_edge"}
    assert edges == {("payment", "Charge", "bank:Authorize")}


def test_an_error_burst_without_retries_changes_no_fan_out_but_the_failing_services_logs() -> None:
    plan = Plan.compile(load_scenario(library()["error-burst"]))
    (fault,) = ground_truth(plan, 0, plan.scenario.hours).faults
    assert not any(e.signal == "call_edge" for e in fault.affected)  # the one call to it is not retried
    logs = {e.service for e in fault.affected if e.signal == "log_template"}
    failing = {e.service for e in fault.affected if e.signal == "error_ratio"}
    assert logs == failing and "inventory" in logs and "checkout" in logs


def test_a_latency_fault_changes_no_log_template() -> None:
    assert not any(signal == "log_template" for signal, _, _ in _affected("dependency-slowdown"))


def test_a_saturated_bottleneck_shedding_load_is_found_by_its_errors_too() -> None:
    # found on held-out world 120064: demand x2.55 over a bottleneck's capacity, its error ratio 15 % -> 30 % (the
    # full queue sheds requests) was the one finding, and the fault was scored missed
    plan = Plan.compile(load_scenario(library()["capacity-saturation"]))
    (fault,) = ground_truth(plan, 0, plan.scenario.hours).faults
    expected = {(e.signal, e.service, e.operation) for e in fault.expected}
    assert ("error_ratio", fault.root_cause_service, fault.root_cause_operation) in expected
    assert ("queue_depth", fault.root_cause_service, fault.root_cause_operation) in expected
