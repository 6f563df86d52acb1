"""Every patch kind where it fixes its fault and where it is the wrong fix, judged by the test runner.

Each world (``tiny.WORLDS``) is simulated once to the patch minute and forked per patch, so
all patches of a world share one past and one counterfactual. End-to-end (simulation,
rollups, gate, invariants): about half a minute a world.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny import TIMING, WORLDS, tiny

from remediation.whatif import whatifs
from simulator.patches import parse_patch

CASES: dict[str, list[tuple[str, str]]] = {
    "release": [
        ("{kind: rollback, service: api}", "fixed"),
        ("{kind: scale, operation: 'api:Get', factor: 4}", "not fixed"),  # capacity is not the release's bug
        ("{kind: drain, target: 'api:Get'}", "not fixed"),  # the standby runs the same release
        ("{kind: rate_limit, entrypoint: 'api:Get', rate_per_s: 2}", "harmful"),  # refuses users
    ],
    "surge": [
        ("{kind: scale, operation: 'api:Get', servers: 4}", "fixed"),
        ("{kind: rate_limit, entrypoint: 'api:Get', rate_per_s: 7}", "fixed"),  # the surge's excess only
    ],
    "provider": [
        ("{kind: call_site, caller: 'api:Get', callee: 'bank:Auth', retries: 0, fallback: true}", "fixed"),
        ("{kind: call_site, caller: 'api:Get', callee: 'bank:Auth', backoff_ms: 200}", "harmful"),
    ],
    "edge": [
        ("{kind: disable_edge, caller: 'api:Put', callee: 'bank:Auth'}", "fixed"),
        ("{kind: disable_edge, caller: 'api:Get', callee: 'store:Read'}", "harmful"),  # breaks the call graph
    ],
    "sick": [
        ("{kind: drain, target: 'store:Read'}", "fixed"),
        ("{kind: rollback, service: store, version: '3.1.0'}", "not fixed"),  # no release to undo
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("world", sorted(CASES))
def test_the_runner_tells_the_fix_from_the_wrong_fix(world: str, tmp_path: Path) -> None:
    patches = [parse_patch(f"actions: [{text}]") for text, _ in CASES[world]]
    results = whatifs(tiny(**WORLDS[world]), patches, tmp_path, timing=TIMING, rate_per_s=100)
    got = {text: r.result.verdict for (text, _), r in zip(CASES[world], results, strict=True)}
    assert got == dict(CASES[world]), [r.result.reasons for r in results]
    assert all(r.result.broken_before for r in results)  # the counterfactual shows the incident
    fixed = [r.result for r in results if r.result.verdict == "fixed"]
    assert all(f.gate_patched != "fail" and not f.violations_patched for f in fixed)
    assert all(r.minutes.patch == 66 and r.minutes.end == 84 for r in results)


def test_every_patch_kind_is_covered_both_ways() -> None:
    from simulator.patches import ACTION_KINDS

    for kind in ACTION_KINDS:
        verdicts = [v for cases in CASES.values() for text, v in cases if f"kind: {kind}," in text]
        assert "fixed" in verdicts and {"not fixed", "harmful"} & set(verdicts), kind
