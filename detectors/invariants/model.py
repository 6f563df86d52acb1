"""The ``Invariant`` value and its round trip through table ``invariants`` (``store.invariants``).

An invariant is a law learned from (or declared for) a window: "every checkout:PlaceOrder
server span carries payment.method", "frontend:GET / calls catalog:ListProducts". It is
identified by (kind, service, operation, span_kind, subject); ``params`` holds what the law
says (value set, range, rate), ``support`` how many observations back it and
``confidence`` how sure the learner is (1 - the rule-of-three upper bound on the rate of
exceptions).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

import duckdb
import orjson

from store import invariants as store_invariants

InvariantKind = Literal[
    "attribute_present",
    "attribute_type",
    "attribute_values",
    "attribute_range",
    "resource_attribute",
    "call_edge",
    "required_child",
    "fanout",
    "client_server",
    "never_root",
    "conservation",
    "log_template",
    "callees",
    "counter_ratio",
    "littles_law",
    "log_templates",
    "slo",
    "boundary",
]
KINDS: tuple[str, ...] = InvariantKind.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Invariant:
    """One law: what it constrains, what it says, and how well it is supported."""

    kind: str
    service: str | None
    operation: str | None = None
    span_kind: str | None = None
    subject: str | None = None
    """The attribute key, the child ``service:operation``, or the log template."""
    params: dict[str, Any] = field(default_factory=dict)
    support: int = 0
    """Observations behind the law (spans, parents, minutes or log lines)."""
    confidence: float = 1.0
    source: Literal["learned", "spec"] = "learned"

    @property
    def id(self) -> str:
        """Stable identity of the law (not of its parameters), for dedupe and spec diffs."""
        raw = "|".join(str(p) for p in (self.kind, self.service, self.operation, self.span_kind, self.subject))
        return hashlib.sha256(raw.encode()).hexdigest()[:20]

    @property
    def entity(self) -> str:
        """``service:operation`` (or the service alone)."""
        return f"{self.service}:{self.operation}" if self.operation else str(self.service)

    def label(self) -> str:
        """A short human sentence: ``checkout:PlaceOrder SERVER attribute_present payment.method``."""
        parts = [self.entity, self.span_kind or "", self.kind, self.subject or ""]
        return " ".join(p for p in parts if p)


def save_invariants(
    con: duckdb.DuckDBPyConnection, invariants: list[Invariant], learned_from_ns: int, learned_to_ns: int
) -> int:
    """Replace the stored learned invariants with ``invariants``; return how many were written."""
    rows = [
        {"id": i.id, "kind": i.kind, "service": i.service, "operation": i.operation, "span_kind": i.span_kind,
         "subject": i.subject, "params": orjson.dumps(i.params).decode(), "support": i.support,
         "confidence": i.confidence, "source": i.source}
        for i in invariants
    ]  # fmt: skip
    store_invariants.replace_learned(con, rows, learned_from_ns, learned_to_ns)
    return len(invariants)


def load_invariants(con: duckdb.DuckDBPyConnection) -> tuple[list[Invariant], int | None]:
    """The stored invariants and the end of the window they were learned on (ns; None when empty)."""
    out: list[Invariant] = []
    learned_to: int | None = None
    for row in store_invariants.load_rows(con):
        learned_to = row["learned_to"] if learned_to is None else max(learned_to, row["learned_to"] or 0)
        out.append(
            Invariant(
                kind=row["kind"], service=row["service"], operation=row["operation"], span_kind=row["span_kind"],
                subject=row["subject"], params=orjson.loads(row["params"] or "{}"), support=int(row["support"]),
                confidence=float(row["confidence"]), source=row["source"],
            )
        )  # fmt: skip
    return out, learned_to


@dataclass(frozen=True)
class Violation:
    """An invariant broken in a window: how often, how surely, and the rows that show it."""

    invariant: Invariant
    detector: str
    """Finding detector name: invariant_attribute, invariant_call_edge, invariant_conservation, ..."""
    exceptions: int
    """Counterexamples in the window (spans, parents, minutes or log lines)."""
    trials: int
    """Observations the law applied to in the window."""
    p_value: float
    change_ns: int | None
    text: str
    """What broke, in words: "payment.method missing on 3,102 of 3,102 spans"."""
    evidence: dict[str, Any] = field(default_factory=dict)
    """counterexamples (trace ids, log lines, minutes) and ``sql`` that reproduces them."""
