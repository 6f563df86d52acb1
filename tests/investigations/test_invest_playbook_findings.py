"""The playbook's candidates from detector findings: request signals on an operation, a batch job's durations."""

from __future__ import annotations

from typing import Any

from investigations.playbook import _Cand, _findings
from investigations.tools import ToolResult


def _row(service: str, operation: str | None, kind: str, metric: str | None = None) -> dict[str, Any]:
    return {"id": f"{service}-{operation}-{kind}", "detector": "sparse_shift" if metric else "level_shift",
            "kind": kind, "service": service, "operation": operation, "metric": metric, "severity": "warning",
            "effect_text": "+80 %", "q_value": 1e-6, "changed": "2026-03-15T19:51:00Z"}  # fmt: skip


def _keys(cands: list[_Cand]) -> list[tuple[str, str | None, bool]]:
    return [(c.service, c.operation, c.strength > 0) for c in cands]


def test_a_batch_jobs_slower_runs_name_its_service_when_nothing_else_does() -> None:
    # found by the adversary (dev world 21209): sparse_shift found the job 85 % slower, yet the playbook
    # read only findings on operations and named no candidate at all
    res = ToolResult("findings", {}, {"rows": [_row("billing", None, "histogram_p50", "job.duration")]})
    cands = _findings(res, [])
    assert _keys(cands) == [("billing", None, True)]
    assert "job.duration" in cands[0].mechanism and cands[0].claims


def test_a_services_histogram_adds_nothing_where_its_operations_are_named() -> None:
    rows = [_row("billing", "Charge", "latency_p50"), _row("billing", None, "histogram_p50", "http.server.duration"),
            _row("ledger", None, "histogram_p99", "job.duration")]  # fmt: skip
    named_by_check = [_Cand("ledger", "Post", "latency regression", 0.6)]
    cands = _findings(ToolResult("findings", {}, {"rows": rows}), named_by_check)
    assert _keys(cands) == [("billing", "Charge", True)]
