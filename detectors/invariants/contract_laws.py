"""Invariants named in a feature contract, resolved to laws and checked with the invariant checker.

A contract names the laws a change keeps (``invariants.held``) or ends
(``invariants.removed``) in a short sentence:

- ``"checkout:PlaceOrder calls payments:Charge"``: every successful SERVER span of the
  operation has that child (``required_child``);
- ``"checkout:PlaceOrder carries payment.method"``: every SERVER span carries the attribute
  (``attribute_present``);
- ``"payments:Charge is never a root"``: it always joins its caller's trace (``never_root``);
- or any law's label as ``Invariant.label()`` writes it, e.g.
  ``"checkout:PlaceOrder SERVER fanout payments:Charge"``; laws with parameters (fan-out
  range, value set, rate) must be known (from the spec or the stored ``invariants``)
  so their parameters are taken from there.

A named law is declared, so it is checked as the spec's laws are: one counterexample
breaks it. ``check_laws`` answers per law: held (True), violated (False), or unknown
(None: nothing in the window exercised it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import duckdb

from detectors.invariants.model import KINDS, Invariant, load_invariants
from detectors.invariants.monitor import check, exercised

__all__ = ["LawError", "check_laws", "known_laws", "parse_law", "resolve_law"]

SPAN_KINDS = ("SERVER", "CLIENT", "INTERNAL", "PRODUCER", "CONSUMER")
PARAMLESS = ("attribute_present", "required_child", "never_root", "client_server", "resource_attribute")
"""Kinds whose law is complete without parameters learned from data."""


class LawError(ValueError):
    """An invariant name that does not parse or names no known law; the message says which and why."""


def _entity(text: str, name: str) -> tuple[str, str]:
    service, sep, operation = text.strip().partition(":")
    if not (sep and service and operation):
        raise LawError(f"{name!r}: {text.strip()!r} is not 'service:operation'")
    return service, operation


def parse_law(name: str) -> Invariant:
    """The law a contract names (see the module docstring); ``LawError`` when it does not parse."""
    text = " ".join(name.split())
    if " calls " in text:
        parent, _, child = text.partition(" calls ")
        _entity(child, name)
        return Invariant("required_child", *_entity(parent, name), "SERVER", child.strip(), source="spec")
    if " carries " in text:
        op, _, key = text.partition(" carries ")
        if not key.strip() or " " in key.strip():
            raise LawError(f"{name!r}: 'carries' needs one attribute key")
        return Invariant("attribute_present", *_entity(op, name), "SERVER", key.strip(), source="spec")
    if text.endswith(" is never a root"):
        return Invariant("never_root", *_entity(text.removesuffix(" is never a root"), name), "SERVER", source="spec")
    words = text.split(" ")
    at = next((i for i, w in enumerate(words) if w in KINDS and i > 0), None)
    if at is None:
        raise LawError(
            f"{name!r}: expected 'A calls B', 'A carries KEY', 'A is never a root' or a law label "
            f"'service:operation [SPAN_KIND] KIND [SUBJECT]' with KIND one of {', '.join(KINDS)}"
        )
    head, kind, subject = words[:at], words[at], " ".join(words[at + 1 :]) or None
    span_kind = head.pop() if head and head[-1] in SPAN_KINDS else None
    entity = " ".join(head)
    if ":" in entity:
        service, operation = _entity(entity, name)
        return Invariant(kind, service, operation, span_kind, subject, source="spec")
    return Invariant(kind, entity, None, span_kind, subject, source="spec")


def resolve_law(name: str, known: Iterable[Invariant] = ()) -> Invariant:
    """The named law, with parameters and support from ``known`` when it is there (else parameterless only)."""
    law = parse_law(name)
    match = next((k for k in known if k.id == law.id), None)
    if match is not None:
        return Invariant(
            match.kind, match.service, match.operation, match.span_kind, match.subject, dict(match.params),
            match.support, match.confidence, "spec",
        )  # fmt: skip
    if law.kind not in PARAMLESS:
        raise LawError(f"{name!r}: a {law.kind} law has parameters; name one the spec or the stored invariants hold")
    return law


def known_laws(con: duckdb.DuckDBPyConnection) -> list[Invariant]:
    """The stored ``invariants`` (learned or declared), or none when the store never learned any."""
    row = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name IN ('invariants', 'invariants_schema_version')"
    ).fetchone()
    if not row or int(row[0]) < 2:
        return []
    return load_invariants(con)[0]


def check_laws(
    con: duckdb.DuckDBPyConnection, laws: Sequence[Invariant], start_ns: int, end_ns: int
) -> list[bool | None]:
    """Per law: held (True), violated in [start, end) (False), or not exercised there (None)."""
    if not laws:
        return []
    broken = {v.invariant.id for v in check(con, list(laws), start_ns, end_ns)}
    seen = exercised(con, list(laws), start_ns, end_ns)
    return [None if not s else law.id not in broken for law, s in zip(laws, seen, strict=True)]
