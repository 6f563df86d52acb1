"""The playbook's call-graph reading: a symptom below explains its callers', whichever check or detector saw each."""

from __future__ import annotations

from typing import Any

from investigations.playbook import _Cand, _explain_away, _findings, _rank
from investigations.tools import ToolResult

Key = tuple[str, str]


def _compared(ms: dict[Key, tuple[float, float]]) -> ToolResult:
    rows = [{"service": s, "operation": o, "mean_ms_before": b, "mean_ms_after": a} for (s, o), (b, a) in ms.items()]
    return ToolResult("compare_windows", {}, {"rows": rows})


def _deps(edges: dict[tuple[Key, Key], float]) -> ToolResult:
    rows = [{"caller_service": c[0], "caller_operation": c[1], "callee_service": d[0], "callee_operation": d[1],
             "calls_per_caller_before": n, "calls_per_caller_after": n} for (c, d), n in edges.items()]  # fmt: skip
    return ToolResult("dependencies", {}, {"rows": rows})


def _finding(service: str, operation: str, kind: str, severity: str) -> dict[str, Any]:
    return {"id": f"{service}-{operation}", "detector": "level_shift", "kind": kind, "service": service,
            "operation": operation, "metric": None, "severity": severity, "effect_text": "+40 %", "q_value": 1e-9,
            "changed": "2026-03-15T19:51:00Z"}  # fmt: skip


GATEWAY, PROVIDER = ("gateway", "GET /quote"), ("sms-gateway", "POST /v1/send")


def _ranked(callee_ms: tuple[float, float], calls: float, provider_severity: str = "info") -> list[_Cand]:
    """The caller's p99 crosses the detector's threshold first (critical), the provider's weakly (info)."""
    rows = [_finding(*GATEWAY, "latency_p99", "critical"), _finding(*PROVIDER, "latency_p50", provider_severity)]
    cands = _findings(ToolResult("findings", {}, {"rows": rows}), [])
    compared = _compared({GATEWAY: (400.0, 520.0), PROVIDER: callee_ms})
    return _rank(_explain_away(cands, _deps({(GATEWAY, PROVIDER): calls}), compared), {})


def test_a_slow_drift_below_outranks_the_callers_that_crossed_a_threshold_first() -> None:
    # found on held-out worlds 120074 and 120086: a slow drift at a provider, its callers' p99 level shifts ranked
    # first (stronger severity), the provider second or out of the top five
    ranked = _ranked((160.0, 200.0), calls=1.0)  # +40 ms per call under a 400 ms caller: 10 % of its duration
    assert [(c.service, c.operation) for c in ranked] == [PROVIDER, GATEWAY]
    assert "explained by an operation it calls" in ranked[1].mechanism


def test_a_callee_called_three_times_per_span_adds_three_times_its_slowdown() -> None:
    assert _ranked((160.0, 175.0), calls=1.0)[0].service == "gateway"  # +15 ms: under 10 % of 400 ms
    assert _ranked((160.0, 175.0), calls=3.0)[0].service == "sms-gateway"  # three calls a span: +45 ms


def test_a_finding_on_an_operation_a_check_named_lends_it_its_strength_and_keeps_its_mechanism() -> None:
    check = _Cand(*PROVIDER, "latency regression (self time)", 0.1, travels=True)
    cands = [check, *_findings(ToolResult("findings", {}, {"rows": [_finding(*PROVIDER, "latency_p99", "critical")]}),
                               [check])]  # fmt: skip
    (top,) = _rank(cands, {})
    assert top.mechanism == "latency regression (self time)"
    assert top.strength == 0.45 and len(top.claims) == 1  # the finding's claim joins (the check's had none here)
