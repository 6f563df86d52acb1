"""The YAML spec: round trip, validation errors that name the field, the worked example."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.invariants.model import Invariant
from detectors.invariants.spec import Spec, dump_spec, load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[2]


def test_invariants_round_trip_through_yaml() -> None:
    laws = [
        Invariant("attribute_values", "checkout", "PlaceOrder", "SERVER", "payment.method",
                  {"values": ["card", "paypal"]}, support=9000, confidence=0.9997),
        Invariant("callees", "frontend", "GET /", "SERVER", params={"callees": ["catalog:ListProducts"]}, support=7000),
        Invariant("never_root", "cart", "GetCart", "SERVER", support=5000, confidence=0.9994),
    ]  # fmt: skip
    spec = parse_spec(dump_spec(Spec.from_invariants(laws, description="t")))
    back = {i.id: i for i in spec.to_invariants()}
    assert set(back) == {i.id for i in laws}
    for law in laws:
        got = back[law.id]
        assert (got.params, got.support, got.source) == (law.params, law.support, "spec")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("invariants:\n  - {kind: always_green, service: a}\n", "invariants.0.kind"),
        ("invariants:\n  - {kind: never_root, service: a, support: -1}\n", "invariants.0.support"),
        ("call_graph:\n  - {caller: no-colon}\n", "call_graph.0.caller"),
        ("slos:\n  - {service: a, operation: b, error_ratio_max: 2}\n", "slos.0.error_ratio_max"),
        ("bogus: 1\n", "bogus"),
        ("boundaries:\n  layers: [{name: a, services: [x]}]\n  forbidden_edges: [{name: r, from: a, to: nope}]\n",
         "unknown layer 'nope'"),
        ("boundaries:\n  layers: [{name: a, services: [x]}]\n  requirements: [{name: r, layer: a}]\n",
         "exactly one of attribute or child"),
        ("- just a list\n", "expected a mapping"),
        ("a: [unclosed\n", "not valid YAML"),
    ],
)  # fmt: skip
def test_bad_specs_are_refused_naming_the_field(text: str, needle: str) -> None:
    with pytest.raises(ValueError, match=r"spec\.yaml") as info:
        parse_spec(text, "spec.yaml")
    assert needle in str(info.value)


def test_the_platform_worked_example_validates_and_declares_its_boundaries() -> None:
    spec = load_spec(ROOT / "simulator" / "specs" / "platform.yaml")
    b = spec.boundaries
    assert {layer.name for layer in b.layers} >= {"bff", "domain", "data"}
    assert any(f.from_layer == "bff" and f.to_layer == "data" for f in b.forbidden_edges)
    assert any(r.child == "supabase-auth:VerifyJWT" for r in b.requirements)
    assert spec.call_graph and spec.invariants and spec.slos


def test_a_missing_spec_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read spec"):
        load_spec(tmp_path / "absent.yaml")
