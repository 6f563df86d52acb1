"""Units on every effect, and the change time reconciled with the deploy time."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from reports.build import deploy_relation
from reports.model import DeployMarker
from reports.units import effect_with_unit, metric_scale

DEPLOY_NS = 1_772_000_000 * 10**9


def test_a_histogram_metric_effect_gets_its_declared_unit() -> None:
    text = effect_with_unit("histogram_p50 +90 % (0.09216 -> 0.175)", "histogram_p50", 0.09216, 0.175, "s")
    assert text == "histogram_p50 +90 % (92.16 ms -> 175 ms)"
    assert effect_with_unit("value +10 % (100 -> 110)", "gauge", 100.0, 110.0, "By") == "value +10 % (100 B -> 110 B)"
    assert "unit not declared" in effect_with_unit("value +10 % (1 -> 1.1)", "gauge", 1.0, 1.1, None)
    span = "p99 +38 % (120.0 ms -> 165.6 ms)"
    assert effect_with_unit(span, "latency_p99", 1.2e8, 1.656e8, None) == span  # spans carry theirs already


def test_annotation_units_lose_their_braces() -> None:
    assert metric_scale("{request}") == (1.0, "request") and metric_scale("ms") == (1.0, "ms")


@given(st.integers(min_value=-6 * 3600, max_value=6 * 3600))
def test_a_change_before_its_deploy_is_within_not_after(offset_s: int) -> None:
    deploy = DeployMarker("payment", "5.2.0", "5.1.0", DEPLOY_NS)
    change = DEPLOY_NS + offset_s * 10**9
    text = deploy_relation(change, deploy, DEPLOY_NS + 3600 * 10**9)
    if offset_s > -60:  # the change point has minute resolution: within the deploy's minute is after it
        assert text.startswith("after deploy payment 5.2.0 (")
    else:
        assert text == f"within {math.ceil(-offset_s / 60)} min of deploy payment 5.2.0 (06:13 UTC)"
