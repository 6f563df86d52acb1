"""Boundary contracts between layers: forbidden edges, required paths, required attributes or children.

Services map to layers in the spec; rules hold between layers. These are hard rules: a
single counterexample is a violation (no statistics), reported with up to five
counterexample traces and the SQL that lists them. The caller of a span is its parent's
service, or the grandparent's when the parent is in the same service (a CLIENT span that
an instrumentation attributes to the callee).
"""

from __future__ import annotations

from typing import Any

import duckdb

from detectors.invariants.model import Invariant, Violation
from detectors.invariants.spec import Spec
from detectors.invariants.sqltext import fetch_rows, lit, lits, window_sql

EXAMPLES = 5

_CALLS = """
FROM spans c JOIN spans p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
LEFT JOIN spans g ON g.trace_id = p.trace_id AND g.span_id = p.parent_span_id AND p.service_name = c.service_name
"""
_CALLER = "CASE WHEN p.service_name = c.service_name THEN g.service_name ELSE p.service_name END"
_COLS = (
    f"c.trace_id, c.span_id, {_CALLER} AS caller_service, c.service_name || ':' || c.span_name AS callee, c.start_time"
)


def _glob(column: str, patterns: list[str]) -> str:
    return "(" + " OR ".join(f"{column} GLOB {lit(p)}" for p in patterns) + ")"


def _run(
    con: duckdb.DuckDBPyConnection,
    name: str,
    layer: str,
    where: str,
    *,
    text: str,
    rule: dict[str, Any],
    cols: str = _COLS,
    frm: str = _CALLS,
) -> Violation | None:
    sql = f"SELECT {cols} {frm} WHERE {where} ORDER BY c.start_time LIMIT {EXAMPLES}"
    row = con.execute(f"SELECT count(*) {frm} WHERE {where}").fetchone()
    count = int(row[0]) if row else 0
    if count == 0:
        return None
    examples = fetch_rows(con, sql)
    first = examples[0]["start_time"]
    inv = Invariant("boundary", layer, subject=name, params=rule, source="spec")
    evidence = {"rule": rule, "trace_ids": [e["trace_id"] for e in examples], "examples": examples, "sql": sql}
    change = int(first)
    return Violation(inv, "boundary", count, count, 0.0, change, f"{name}: {count:,d} {text}", evidence)


def check_boundaries(con: duckdb.DuckDBPyConnection, spec: Spec, start_ns: int, end_ns: int) -> list[Violation]:
    """Every boundary rule of ``spec`` broken at least once in [start, end)."""
    b = spec.boundaries
    win = window_sql("c.start_time", start_ns, end_ns)
    out: list[Violation | None] = []
    rule: dict[str, Any]
    for f in b.forbidden_edges:
        where = (
            f"{win} AND {_CALLER} IN {lits(b.services(f.from_layer))} AND c.service_name IN "
            f"{lits(b.services(f.to_layer))} AND {_glob('c.span_name', f.operations)}"
        )
        rule = {"forbidden_edge": f"{f.from_layer} -> {f.to_layer}", "operations": f.operations}
        out.append(_run(con, f.name, f.from_layer, where, text=f"calls from {f.from_layer} to {f.to_layer}", rule=rule))
    for r in b.required_paths:
        allowed = [s for layer in r.via for s in b.services(layer)]
        where = (
            f"{win} AND c.service_name IN {lits(b.services(r.to_layer))} AND {_glob('c.span_name', r.operations)} "
            f"AND {_CALLER} IS NOT NULL AND {_CALLER} NOT IN {lits(allowed)}"
        )
        rule = {"required_path": f"{r.to_layer} only via {', '.join(r.via)}", "operations": r.operations}
        text = f"calls into {r.to_layer} not via {', '.join(r.via)}"
        out.append(_run(con, r.name, r.to_layer, where, text=text, rule=rule))
    for q in b.requirements:
        span = (
            f"{window_sql('c.start_time', start_ns, end_ns)} AND c.service_name IN {lits(b.services(q.layer))} "
            f"AND {_glob('c.span_name', q.operations)} AND c.span_kind = {lit(q.span_kind)} "
            "AND c.status_code != 'ERROR'"
        )
        cols = "c.trace_id, c.span_id, c.service_name || ':' || c.span_name AS operation, c.start_time"
        if q.attribute is not None:
            where = (
                f"{span} AND json_extract(c.attributes, {lit(chr(36) + '.' + chr(34) + q.attribute + chr(34))}) IS NULL"
            )
            rule = {"requirement": q.name, "attribute": q.attribute}
            what = f"spans without {q.attribute}"
        else:
            service, _, operation = (q.child or "").partition(":")
            where = (
                f"{span} AND NOT EXISTS (SELECT 1 FROM spans k WHERE k.trace_id = c.trace_id "
                f"AND k.parent_span_id = c.span_id AND k.service_name = {lit(service)} "
                f"AND k.span_name = {lit(operation)})"
            )
            rule = {"requirement": q.name, "child": q.child}
            what = f"spans without a call to {q.child}"
        out.append(_run(con, q.name, q.layer, where, text=what, rule=rule, cols=cols, frm="FROM spans c"))
    return [v for v in out if v is not None]
