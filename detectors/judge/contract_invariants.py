"""The gate's invariant hook: a contract's named invariants checked by ``detectors.invariants``.

``invariant_checker(con, known)`` returns the ``InvariantChecker`` that
``check_contract`` calls per named law with the candidate's scope: the law is resolved
(``detectors.invariants.contract_laws``; parameters from ``known`` laws, i.e. the spec's
or the stored ones) and checked over the candidate's time range, so held, violated or
unknown (nothing in that range exercised it). A name that does not parse is unknown here;
``contract_law_errors`` reports it up front, naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from detectors.invariants.contract_laws import LawError, check_laws, known_laws, resolve_law
from detectors.invariants.model import Invariant
from detectors.judge.contract import Contract
from detectors.judge.contract_checks import InvariantChecker
from detectors.judge.samples import Scope

__all__ = ["contract_law_errors", "invariant_checker"]


def invariant_checker(
    con: duckdb.DuckDBPyConnection, known: Sequence[Invariant] | None = None, names: Sequence[str] = ()
) -> InvariantChecker:
    """The hook for ``judge(..., invariant_checker=...)``; ``known`` defaults to the store's invariants.

    ``names`` (the contract's invariants) are checked together in one pass of the checker
    per scope, the first time any of them is asked for; answers are cached per scope.
    """
    laws = list(known) if known is not None else known_laws(con)
    cache: dict[tuple[str, Scope], bool | None] = {}

    def resolved(batch: Sequence[str]) -> dict[str, Invariant]:
        out: dict[str, Invariant] = {}
        for n in batch:
            try:
                out[n] = resolve_law(n, laws)
            except LawError:
                continue
        return out

    def check(name: str, scope: Scope) -> bool | None:
        if (name, scope) not in cache:
            batch = resolved(list(dict.fromkeys([name, *names])))
            answers = check_laws(con, list(batch.values()), scope.start_ns, scope.end_ns)
            cache.update({(n, scope): a for n, a in zip(batch, answers, strict=True)})
            cache.setdefault((name, scope), None)  # a name that does not resolve: unknown
        return cache[(name, scope)]

    return check


def contract_law_errors(contract: Contract, known: Sequence[Invariant] = ()) -> list[str]:
    """One message per named invariant that does not resolve, prefixed with its field (``invariants.held.0``)."""
    out: list[str] = []
    for field, names in (("held", contract.invariants.held), ("removed", contract.invariants.removed)):
        for i, name in enumerate(names):
            try:
                resolve_law(name, known)
            except LawError as exc:
                out.append(f"invariants.{field}.{i}: {exc}")
    return out
