"""Verification: re-run every claim's tool call and check the number it asserts.

A claim is verified when its call succeeds again on the snapshot and, if it asserts a
number, the value at its ``path`` equals it within a relative ``tolerance`` (or an
absolute 1e-9 for values near zero). Claims without a number are verified when the call
reproduces without error. Unverified claims stay in the report, marked as such.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from investigations.report import Claim, Report
from investigations.tools import ToolResult


def lookup(data: Any, path: str) -> Any:
    """The value at dot ``path`` ("rows.0.self_ms_after") in ``data``; None when absent."""
    node = data
    for part in path.split(".") if path else []:
        if isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


def close(a: float, b: float, tolerance: float) -> bool:
    """Whether ``a`` equals ``b`` within relative ``tolerance`` (absolute 1e-9 near zero)."""
    return math.isclose(a, b, rel_tol=tolerance, abs_tol=1e-9)


def verify_claim(claim: Claim, rerun: Callable[[str, dict[str, Any]], ToolResult], tolerance: float) -> Claim:
    """``claim`` with ``verified`` and ``observed`` set from a re-run of its call."""
    result = rerun(claim.call.tool, claim.call.args)
    if result.error is not None:
        return claim.model_copy(update={"verified": False, "observed": None})
    if claim.value is None:
        return claim.model_copy(update={"verified": True})
    got = lookup(result.data, claim.path)
    if isinstance(got, bool) or not isinstance(got, int | float):
        return claim.model_copy(update={"verified": False, "observed": None})
    return claim.model_copy(update={"verified": close(float(got), claim.value, tolerance), "observed": float(got)})


def verify_report(report: Report, rerun: Callable[[str, dict[str, Any]], ToolResult], tolerance: float) -> Report:
    """``report`` with every claim verified or not."""
    return report.model_copy(update={"claims": [verify_claim(c, rerun, tolerance) for c in report.claims]})
