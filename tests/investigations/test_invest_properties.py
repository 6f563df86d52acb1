"""Property tests of the numeric and safety cores: verification tolerance, paths, redaction, budgets."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from investigations.budget import Budget, BudgetExhausted, Limits
from investigations.redact import MASK, Redactor
from investigations.verify import close, lookup

finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False)


@given(finite, st.floats(min_value=0.0, max_value=0.5))
def test_close_accepts_values_within_tolerance_and_rejects_beyond(x: float, tol: float) -> None:
    assert close(x, x, tol)
    assert close(x * (1 + tol / 2), x, tol) or abs(x) < 1e-9
    if abs(x) > 1e-6:
        assert not close(x * (1 + 2 * tol + 1e-3), x, tol)


json_leaf = st.one_of(st.integers(-(2**63), 2**63 - 1), finite, st.text(max_size=8), st.booleans(), st.none())
json_tree = st.recursive(
    json_leaf,
    lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.text("abc.", max_size=4), kids, max_size=4)),
    max_leaves=20,
)


def _paths(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out = [(prefix, node)]
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for k, v in items:
        if "." not in str(k) and str(k):
            out += _paths(v, f"{prefix}.{k}" if prefix else str(k))
    return out


@given(json_tree)
def test_lookup_finds_every_path_of_a_tree(tree: Any) -> None:
    for path, value in _paths(tree):
        assert lookup(tree, path) == value
    assert lookup({"rows": [tree]}, "rows.1") is None and lookup({"rows": []}, "rows.x") is None


def _strings(node: Any) -> Any:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield k
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


secret = st.text("xyz0123456789-", min_size=3, max_size=10)


@given(st.lists(st.tuples(st.sampled_from(["user.id", "user.email", "route", "n"]), secret), max_size=12), json_tree)
def test_redacted_values_never_survive(pairs: list[tuple[str, str]], noise: Any) -> None:
    keys = ("user.id", "user.email")
    attrs = dict(pairs)
    secrets = {v for k, v in attrs.items() if k in keys}
    doc = {"attributes": orjson.dumps(attrs).decode(), "raw": attrs, "rows": [[v] for v in secrets], "noise": noise}
    redacted = Redactor(keys, secrets).value(doc)
    texts = list(_strings(redacted))  # every string (keys too) the model could see
    assert not [s for s in secrets for t in texts if s in t]
    out = orjson.dumps(redacted).decode()
    for k in keys:
        if k in attrs:
            assert f'"{k}":"{MASK}"' in out


@given(st.lists(st.sampled_from(["step", "usage"]), max_size=40), st.integers(1, 10), st.integers(1, 500))
def test_budget_never_allows_more_than_its_limits(ops: list[str], steps: int, tokens: int) -> None:
    budget = Budget(Limits(steps=steps, tokens=tokens, cost_usd=1e9, wall_s=1e9), clock=lambda: 0.0)
    for op in ops:
        try:
            if op == "step":
                budget.charge_step()
            else:
                budget.charge_usage(37, 0.0)
        except BudgetExhausted as exc:
            assert exc.what in ("steps", "tokens")
            with pytest.raises(BudgetExhausted):
                budget.check()
        assert budget.steps <= steps
