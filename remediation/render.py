"""The test runner's answer as a table (for people) or a dict (for JSON), and the exit code.

Exit codes follow the gate's: 0 fixed (pass), 1 harmful (fail), 3 not fixed (the incident is
still there; the gate's 3 is "cannot pass"), and bad input exits 2 before anything runs.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from remediation.runner import RunnerResult

EXIT = {"fixed": 0, "harmful": 1, "not fixed": 3}


def exit_code(verdict: str) -> int:
    """The process exit status for a verdict (anything but fixed or harmful: 3)."""
    return EXIT.get(verdict, 3)


def _num(x: float | None, unit: str) -> str:
    if x is None:
        return "-"
    return f"{x * 100:.2f} %" if unit == "ratio" else f"{x:.4g} {unit}"


def table(result: RunnerResult, title: str) -> str:
    """The verdict, its reasons, the SLOs that moved (baseline / without / with the patch), the checks."""
    ttr = "-" if result.ttr_min is None else f"{result.ttr_min:g} min"
    gates = f"gate (patched vs pre-fault): {result.gate_patched}   without the patch: {result.gate_counterfactual}"
    lines = [title, f"verdict: {result.verdict}   time to recovery: {ttr}   {gates}"]
    lines += [f"  - {r}" for r in result.reasons]
    moved = [s for s in result.slos if "fail" in (s.broken, s.recovered, s.harm) or "marginal" in (s.broken, s.harm)]
    lines.append("")
    lines.append(f"  {'operation':40s} {'metric':12s} {'baseline':>12s} {'without':>12s} {'with patch':>12s}  "
                 "broken  back   worse")  # fmt: skip
    for s in moved or result.slos[:0]:
        lines.append(f"  {s.operation[:40]:40s} {s.metric:12s} {_num(s.baseline, s.unit):>12s} "
                     f"{_num(s.counterfactual, s.unit):>12s} {_num(s.patched, s.unit):>12s}  "
                     f"{s.broken:7s} {s.recovered:6s} {s.harm}")  # fmt: skip
    if not moved:
        lines.append("  (no operation's SLO moved in either future)")
    lines.append("")
    lines.append(f"  invariants violated with the patch: {len(result.violations_patched)}, "
                 f"without: {len(result.violations_counterfactual)}")  # fmt: skip
    lines += [f"    with: {v}" for v in result.violations_patched[:5]]
    lines.append("  entry points, successful requests/min (baseline / without / with the patch):")
    lines += [f"    {ep}: {b:.1f} / {c:.1f} / {p:.1f}" for ep, (b, c, p) in result.served.items()]
    return "\n".join(lines)


def as_dict(result: RunnerResult) -> dict[str, Any]:
    """The whole result as JSON-ready data."""
    return asdict(result)
