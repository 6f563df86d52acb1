"""The patch schema and its resolution against a world: bad input names the field, nothing applied."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny import WORLDS, tiny

from simulator.effects import effects_at
from simulator.fork import Run
from simulator.patches import Patch, PatchError, dump_patch, parse_patch, resolve
from simulator.plan import Plan
from simulator.scenario import load_scenario


def _error(text: str, scenario_name: str | None = None) -> str:
    with pytest.raises(PatchError) as exc:
        patch = parse_patch(text)
        resolve(patch, load_scenario(scenario_name or "webshop"), 200)
    return str(exc.value)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("actions: [{kind: scale, operation: 'payment:Charge', servers: -2}]", "actions.0.scale.servers"),
        ("actions: [{kind: scale, operation: 'payment:Charge', factor: -1}]", "actions.0.scale.factor"),
        (
            "actions: [{kind: rate_limit, entrypoint: 'frontend:GET /', rate_per_s: 0}]",
            "actions.0.rate_limit.rate_per_s",
        ),
        ("actions: [{kind: call_site, caller: a, callee: b, retries: -1}]", "actions.0.call_site.retries"),
        ("actions: [{kind: reboot, service: payment}]", "actions.0"),
        ("actions: []", "actions"),
        ("title: x", "actions"),
        ("actions: [{kind: rollback, service: payment, colour: red}]", "actions.0.rollback.colour"),
    ],
)
def test_malformed_patches_name_the_field(text: str, field: str) -> None:
    assert f"  {field}" in _error(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("actions: [{kind: rollback, service: paymnt}]", "actions.0.service: unknown service 'paymnt'"),
        ("actions: [{kind: rollback, service: payment, version: 9.9.9}]", "actions.0.version: unknown version '9.9.9'"),
        ("actions: [{kind: rollback, service: inventory}]", "actions.0.version: inventory has run only 2.2.0"),
        ("actions: [{kind: scale, operation: 'payment:Refund', factor: 2}]", "actions.0.operation: unknown operation"),
        ("actions: [{kind: scale, operation: 'pay:Charge', servers: 3}]", "actions.0.operation: unknown service"),
        ("actions: [{kind: disable_edge, caller: 'payment:Charge', callee: 'postgres:UPDATE stock'}]",
         "actions.0: unknown call site 'payment:Charge' -> 'postgres:UPDATE stock'"),
        ("actions: [{kind: call_site, caller: 'payment:Charge', callee: 'bank:Nope', retries: 0}]",
         "actions.0.callee: unknown operation"),
        ("actions: [{kind: rate_limit, entrypoint: 'payment:Charge', rate_per_s: 5}]",
         "actions.0.entrypoint: 'payment:Charge' is not an entry point"),
        ("actions: [{kind: drain, target: nowhere}]", "actions.0.target: unknown service"),
    ],
)  # fmt: skip
def test_patches_naming_what_the_world_lacks_are_refused(text: str, message: str) -> None:
    assert message in _error(text)


def test_every_problem_is_reported_at_once() -> None:
    text = "actions: [{kind: rollback, service: nope}, {kind: scale, operation: 'a:b', servers: 2}]"
    err = _error(text)
    assert "actions.0.service" in err and "actions.1.operation" in err


def test_rollback_clears_release_borne_faults_and_drain_the_environments() -> None:
    web = load_scenario("webshop")
    assert resolve(parse_patch("actions: [{kind: rollback, service: payment}]"), web, 200).cleared_faults == {0}
    assert resolve(parse_patch("actions: [{kind: rollback, service: payment}]"), web, 200).versions == {
        "payment": "5.1.2"
    }
    assert resolve(parse_patch("actions: [{kind: drain, target: payment}]"), web, 200).cleared_faults == set()
    burst = load_scenario("error-burst")
    drained = resolve(parse_patch("actions: [{kind: drain, target: 'inventory:Reserve'}]"), burst, 220)
    assert drained.cleared_faults == {0} and drained.servers == {"inventory:Reserve": 2}
    other = resolve(parse_patch("actions: [{kind: drain, target: 'inventory:GetStock'}]"), burst, 220)
    assert other.cleared_faults == set()


@settings(max_examples=60, deadline=None)
@given(servers=st.integers(1, 200), factor=st.floats(0.01, 100, allow_nan=False))
def test_scale_by_a_factor_rounds_up_and_never_reaches_zero(servers: int, factor: float) -> None:
    sc = tiny(**WORLDS["surge"])
    svc = sc.services["api"]
    ops = dict(svc.operations)
    ops["Get"] = ops["Get"].model_copy(update={"servers": servers})
    sc = sc.model_copy(update={"services": {**sc.services, "api": svc.model_copy(update={"operations": ops})}})
    patch = Patch.model_validate({"actions": [{"kind": "scale", "operation": "api:Get", "factor": factor}]})
    got = resolve(patch, sc, 61).servers["api:Get"]
    assert got >= 1 and got == max(1, math.ceil(servers * factor))


_actions = st.one_of(
    st.builds(lambda s: {"kind": "rollback", "service": s}, st.sampled_from(["api", "store"])),
    st.builds(lambda n: {"kind": "scale", "operation": "api:Get", "servers": n}, st.integers(1, 10_000)),
    st.builds(
        lambda r, b, f: {
            "kind": "call_site",
            "caller": "api:Get",
            "callee": "bank:Auth",
            "retries": r,
            "backoff_ms": b,
            "fallback": f,
        },
        st.integers(0, 5),
        st.floats(0, 1e4, allow_nan=False),
        st.booleans(),
    ),
    st.builds(
        lambda r: {"kind": "rate_limit", "entrypoint": "api:Get", "rate_per_s": r},
        st.floats(1e-3, 1e5, allow_nan=False),
    ),
    st.builds(
        lambda s: {"kind": "drain", "target": "store:Read", "standby_share": s}, st.floats(1e-3, 1.0, allow_nan=False)
    ),
)


@settings(max_examples=80, deadline=None)
@given(actions=st.lists(_actions, min_size=1, max_size=4))
def test_a_patch_survives_its_own_json(actions: list[dict[str, object]]) -> None:
    patch = Patch.model_validate({"title": "t", "actions": actions})
    assert parse_patch(dump_patch(patch)) == patch


def test_without_a_patch_the_effects_are_the_scenarios() -> None:
    sc = load_scenario("retry-storm")
    plan = Plan.compile(sc)
    ov = resolve(parse_patch("actions: [{kind: call_site, caller: 'payment:Charge', callee: 'bank:Authorize', "
                             "retries: 0, timeout_ms: 300, fallback: true}]"), sc, 200)  # fmt: skip
    before, early = effects_at(plan, 210), effects_at(plan, 199, ov)
    assert early.site_timeout_ms is None and np.array_equal(early.site_retries, before.site_retries)
    after = effects_at(plan, 210, ov)
    site = next(s.index for s in plan.sites if s.call is not None and plan.ops[s.op].ref == "bank:Authorize")
    assert before.site_retries[site] == 3 and after.site_retries[site] == 0
    assert after.site_timeout_ms is not None and after.site_timeout_ms[site] == 300
    assert after.site_fallback is not None and after.site_fallback[site]


def test_a_fork_shares_its_past_and_differs_only_after_the_patch() -> None:
    sc = tiny(**WORLDS["release"])

    class Sink:
        def __init__(self) -> None:
            self.spans: list[object] = []

        def write(self, tables: dict[str, object]) -> None:
            self.spans.append(tables["spans"])

        def close(self) -> None:
            pass

    run = Run(sc, from_minute=55, seed=5)
    run.advance(62, [])
    twin = run.fork(resolve(parse_patch("actions: [{kind: rollback, service: api}]"), sc, 62))
    same = run.fork(None)
    a, b, c = Sink(), Sink(), Sink()
    run.advance(64, [a])
    same.advance(64, [b])
    twin.advance(64, [c])
    assert a.spans[0].equals(b.spans[0])  # type: ignore[attr-defined]
    versions = set(c.spans[0].column("service_version").to_pylist())  # type: ignore[attr-defined]
    assert "1.0.0" in versions and "1.1.0" not in versions
    assert "1.1.0" in set(a.spans[0].column("service_version").to_pylist())  # type: ignore[attr-defined]


def test_both_futures_of_a_fork_see_the_same_demand() -> None:
    """Arrivals are exogenous: after the fork both runs draw the same root requests per minute and entry
    point (common random numbers), though the patch changes how much else each run draws."""
    sc = tiny(**WORLDS["provider"])  # a retry storm: turning retries off changes how much is drawn
    spans: dict[str, list[object]] = {"cf": [], "patched": []}

    class Sink:
        def __init__(self, name: str) -> None:
            self.name = name

        def write(self, tables: dict[str, object]) -> None:
            spans[self.name].append(tables["spans"])

        def close(self) -> None:
            pass

    run = Run(sc, from_minute=55, seed=5)
    run.advance(62, [])
    off = "actions: [{kind: call_site, caller: 'api:Get', callee: 'bank:Auth', retries: 0}]"
    patched = run.fork(resolve(parse_patch(off), sc, 62))
    run.advance(92, [Sink("cf")])
    patched.advance(92, [Sink("patched")])

    def roots(name: str) -> list[tuple[str, int]]:
        table = pa.concat_tables(spans[name])  # type: ignore[arg-type]
        is_root = pc.is_null(table.column("parent_span_id"))
        names = table.filter(is_root).column("span_name").to_pylist()
        return sorted((n, names.count(n)) for n in set(names))

    assert roots("cf") == roots("patched") and sum(n for _, n in roots("cf")) > 1000
    durations = [pa.concat_tables(spans[n]).column("duration_ns") for n in spans]  # type: ignore[arg-type]
    assert not durations[0].equals(durations[1])  # the rest of the world did decorrelate
