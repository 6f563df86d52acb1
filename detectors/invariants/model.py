"""The ``Invariant`` value, its table ``invariants`` and the one writer of that table.

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
import pyarrow as pa

from collector.store import fetch_arrow, migrate

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

_V1 = """
CREATE TABLE invariants (
    id VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL,
    service VARCHAR,
    operation VARCHAR,
    span_kind VARCHAR,
    subject VARCHAR,
    params JSON,
    support BIGINT NOT NULL,
    confidence DOUBLE NOT NULL,
    source VARCHAR NOT NULL,
    learned_from TIMESTAMP_NS,
    learned_to TIMESTAMP_NS
);
"""
MIGRATIONS = (_V1,)
VERSION_TABLE = "invariants_schema_version"


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


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create or migrate table ``invariants``."""
    migrate(con, MIGRATIONS, VERSION_TABLE)


def save_invariants(
    con: duckdb.DuckDBPyConnection, invariants: list[Invariant], learned_from_ns: int, learned_to_ns: int
) -> int:
    """Replace the stored learned invariants with ``invariants``; return how many were written."""
    ensure_schema(con)
    rows = {
        "id": [i.id for i in invariants],
        "kind": [i.kind for i in invariants],
        "service": [i.service for i in invariants],
        "operation": [i.operation for i in invariants],
        "span_kind": [i.span_kind for i in invariants],
        "subject": [i.subject for i in invariants],
        "params": [orjson.dumps(i.params).decode() for i in invariants],
        "support": [i.support for i in invariants],
        "confidence": [i.confidence for i in invariants],
        "source": [i.source for i in invariants],
    }
    table = pa.table(rows)
    con.execute("BEGIN")
    try:
        con.execute("DELETE FROM invariants WHERE source = 'learned'")
        con.register("_invariants_batch", table)
        try:
            con.execute(
                "INSERT INTO invariants SELECT DISTINCT ON (id) id, kind, service, operation, span_kind, subject, "
                "params::JSON, support, confidence, source, make_timestamp_ns($f), make_timestamp_ns($t) "
                "FROM _invariants_batch WHERE id NOT IN (SELECT id FROM invariants)",
                {"f": learned_from_ns, "t": learned_to_ns},
            )
        finally:
            con.unregister("_invariants_batch")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return len(invariants)


def load_invariants(con: duckdb.DuckDBPyConnection) -> tuple[list[Invariant], int | None]:
    """The stored invariants and the end of the window they were learned on (ns; None when empty)."""
    ensure_schema(con)
    table = fetch_arrow(
        con,
        "SELECT kind, service, operation, span_kind, subject, params::VARCHAR AS params, support, confidence, "
        "source, epoch_ns(learned_to) AS learned_to FROM invariants ORDER BY id",
    )
    out: list[Invariant] = []
    learned_to: int | None = None
    for row in table.to_pylist():
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
