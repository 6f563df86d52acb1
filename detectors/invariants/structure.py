"""Trace structure: the call graph, required children, fan-out, client/server pairing, roots.

One join of child spans to their parents over a window (children may start up to
``CHILD_MARGIN_NS`` after the window so late children of its last parents count) gives,
per (parent operation, child operation): parents, successful parents, parents having the
child, children, and the fan-out range. From a baseline that yields the laws:

- ``callees``: the closed set of operations a parent operation calls (a new edge breaks it);
- ``call_edge``: an edge and its rate (children per successful parent; a vanished edge breaks it:
  a parent that failed, or was shed by an overflowing queue, may never have made the call);
- ``required_child``: every successful parent has this child ("every POST /checkout has a
  child span charge"); ``client_server``: every CLIENT span is matched by a SERVER child;
- ``fanout``: the range of children per parent;
- ``never_root``: a server operation that always has a parent (a root means context lost).

The two call-graph laws (``callees``, ``call_edge``) are proposed from ``stats.EDGE_MIN_SUPPORT``
parents, the others from ``stats.MIN_SUPPORT``.
"""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl

from detectors.invariants.model import Invariant, Violation
from detectors.invariants.sqltext import fetch_rows, op_sql, sampled_spans_sql, window_sql
from detectors.invariants.stats import (
    ALPHA,
    EDGE_MIN_SUPPORT,
    MIN_COUNTEREXAMPLES,
    MIN_SUPPORT,
    confidence,
    drop_p_value,
    exception_p_value,
)
from store.connection import fetch_arrow

CHILD_MARGIN_NS = 120 * 10**9
"""Children of a window's parents may start this long after the window's end, or the last parent's end when
later (async work, queues)."""
KINDS = ("callees", "call_edge", "required_child", "client_server", "fanout", "never_root")

_EDGES_SQL = """
WITH p AS (
    SELECT trace_id, span_id, service_name, span_name, span_kind, status_code, start_time FROM {sample}
), c AS (
    SELECT trace_id, parent_span_id, service_name, span_name, span_kind FROM spans
    WHERE {cw} AND parent_span_id IS NOT NULL
), pc AS (
    SELECT p.service_name AS ps, p.span_name AS po, p.span_kind AS pk, p.status_code != 'ERROR' AS ok,
           p.start_time AS pt, c.service_name AS cs, c.span_name AS co, c.span_kind AS ck, count(*) AS k
    FROM p JOIN c ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id
    GROUP BY p.trace_id, p.span_id, ps, po, pk, ok, pt, cs, co, ck
), e AS (
    SELECT ps AS service, po AS operation, pk AS span_kind, cs || ':' || co AS child, ck AS child_kind,
           count(*) AS with_child, count(*) FILTER (ok) AS ok_with_child, sum(k)::BIGINT AS children,
           coalesce(sum(k) FILTER (ok), 0)::BIGINT AS ok_children, min(k) AS fan_lo, max(k) AS fan_hi,
           epoch_ns(max(pt) FILTER (ok)) AS last_call_ns
    FROM pc GROUP BY ALL
)
SELECT e.*,
       (SELECT count(*) FROM p WHERE p.service_name = e.service AND p.span_name = e.operation
        AND p.span_kind = e.span_kind AND p.status_code != 'ERROR'
        AND epoch_ns(p.start_time) > coalesce(e.last_call_ns, 0)) AS ok_parents_after
FROM e
"""
"""Per parent -> child operation pair; ``last_call_ns`` is the start of the last successful parent that had
the child, ``ok_parents_after`` the successful parents since (the tail over which a vanished edge has been
silent)."""

_PARENTS_SQL = """
SELECT service_name AS service, span_name AS operation, span_kind, count(*) AS parents,
       count(*) FILTER (status_code != 'ERROR') AS ok_parents, count(*) FILTER (parent_span_id IS NULL) AS roots
FROM {sample} GROUP BY ALL
"""


def _frame(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    frame = pl.from_arrow(fetch_arrow(con, sql))
    assert isinstance(frame, pl.DataFrame)
    return frame


def structure_profile(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(edges, parents) of [start, end): per parent->child operation pair, and per operation.

    Parents are sampled per operation (``sqltext.sampled_spans_sql``); all their children are counted, up to
    ``CHILD_MARGIN_NS`` after the last of them ends (a parent queued for minutes calls late: a bound at the
    window's end would call its children missing).
    """
    columns = "trace_id, span_id, parent_span_id, service_name, span_name, span_kind, status_code, start_time, end_time"
    # materialised: with its true size known, the join builds on the sampled parents, not on all children
    sample = sampled_spans_sql(columns, start_ns, end_ns)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _invariant_parents AS SELECT * FROM {sample}")
    try:
        row = con.execute("SELECT epoch_ns(max(end_time)) FROM _invariant_parents").fetchone()
        last_end = int(row[0]) if row and row[0] is not None else end_ns
        cw = window_sql("start_time", start_ns, max(end_ns, last_end) + CHILD_MARGIN_NS)
        edges = _frame(con, _EDGES_SQL.format(sample="_invariant_parents", cw=cw))
        parents = _frame(con, _PARENTS_SQL.format(sample="_invariant_parents"))
    finally:
        con.execute("DROP TABLE IF EXISTS _invariant_parents")
    return edges, parents


def _base(row: dict[str, Any]) -> dict[str, Any]:
    return {"service": row["service"], "operation": row["operation"], "span_kind": row["span_kind"]}


def learn_structure(edges: pl.DataFrame, parents: pl.DataFrame) -> list[Invariant]:
    """Structural laws supported by a baseline (edges, parents) profile."""
    out: list[Invariant] = []
    joined = edges.join(parents, on=["service", "operation", "span_kind"], how="inner")
    by_parent: dict[tuple[str, str, str], list[str]] = {}
    for row in joined.iter_rows(named=True):
        by_parent.setdefault((row["service"], row["operation"], row["span_kind"]), []).append(row["child"])
        n = int(row["parents"])
        if n < EDGE_MIN_SUPPORT:
            continue
        base = _base(row)
        conf = float(confidence(n))
        ok = int(row["ok_parents"])
        rate = row["ok_children"] / ok if ok else 0.0
        pair = row["span_kind"] == "CLIENT" and row["child_kind"] == "SERVER"
        if not pair and rate > 0:  # a client's server side is judged by client_server and conservation
            out.append(
                Invariant("call_edge", **base, subject=row["child"], params={"rate": rate}, support=n, confidence=conf)
            )
        if ok >= MIN_SUPPORT and row["ok_with_child"] == ok:
            kind = "client_server" if pair else "required_child"
            out.append(Invariant(kind, **base, subject=row["child"], support=ok, confidence=float(confidence(ok))))
        if int(row["with_child"]) >= MIN_SUPPORT and row["span_kind"] != "CLIENT":
            fan = {"min": int(row["fan_lo"]), "max": int(row["fan_hi"])}
            support = int(row["with_child"])
            out.append(Invariant("fanout", **base, subject=row["child"], params=fan, support=support, confidence=conf))
    for row in parents.filter(pl.col("parents") >= EDGE_MIN_SUPPORT).iter_rows(named=True):
        base = _base(row)
        n = int(row["parents"])
        if row["span_kind"] != "CLIENT":
            callees = sorted(by_parent.get((row["service"], row["operation"], row["span_kind"]), []))
            out.append(
                Invariant("callees", **base, params={"callees": callees}, support=n, confidence=float(confidence(n)))
            )
        if n >= MIN_SUPPORT and row["roots"] == 0 and row["span_kind"] == "SERVER":
            out.append(Invariant("never_root", **base, support=n, confidence=float(confidence(n))))
    return out


def _child(subject: str | None) -> tuple[str, str]:
    service, _, operation = (subject or "").partition(":")
    return service, operation


def counterexample_sql(inv: Invariant, start_ns: int, end_ns: int, child: str | None = None, limit: int = 5) -> str:
    """The query listing up to ``limit`` spans that break structural law ``inv`` in [start, end)."""
    parent = (
        f"{op_sql(inv.service, inv.operation, inv.span_kind, 'p.')} AND {window_sql('p.start_time', start_ns, end_ns)}"
    )
    cols = "p.trace_id, p.span_id, p.service_name, p.span_name, p.start_time"
    if inv.kind == "never_root":
        roots = "p.parent_span_id IS NULL"
        return f"SELECT {cols} FROM spans p WHERE {parent} AND {roots} ORDER BY p.start_time LIMIT {limit}"
    if inv.kind in ("required_child", "client_server", "call_edge"):
        cs, co = _child(inv.subject)
        kind = " AND c.span_kind = 'SERVER'" if inv.kind == "client_server" else ""
        return (
            f"SELECT {cols} FROM spans p WHERE {parent} AND p.status_code != 'ERROR' "
            "AND NOT EXISTS (SELECT 1 FROM spans c "
            f"WHERE c.trace_id = p.trace_id AND c.parent_span_id = p.span_id AND {op_sql(cs, co, None, 'c.')}{kind}) "
            f"ORDER BY p.start_time LIMIT {limit}"
        )
    if inv.kind == "callees":
        cs, co = _child(child)
        return (
            f"SELECT {cols}, c.span_id AS child_span_id, c.service_name || ':' || c.span_name AS child FROM spans p "
            f"JOIN spans c ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id "
            f"WHERE {parent} AND {op_sql(cs, co, None, 'c.')} ORDER BY p.start_time LIMIT {limit}"
        )
    cs, co = _child(inv.subject)
    lo, hi = int(inv.params["min"]), int(inv.params["max"])
    return (
        f"SELECT {cols}, count(*) AS children FROM spans p JOIN spans c ON c.trace_id = p.trace_id "
        f"AND c.parent_span_id = p.span_id WHERE {parent} AND {op_sql(cs, co, None, 'c.')} "
        f"GROUP BY ALL HAVING count(*) NOT BETWEEN {lo} AND {hi} ORDER BY p.start_time LIMIT {limit}"
    )


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    body = sql.rsplit(" ORDER BY ", 1)[0]
    row = con.execute(f"SELECT count(*) FROM ({body})").fetchone()
    return int(row[0]) if row else 0


def check_structure(
    con: duckdb.DuckDBPyConnection, invariants: list[Invariant], start_ns: int, end_ns: int
) -> list[Violation]:
    """Violations of structural laws in [start, end), with counterexample traces and SQL."""
    laws = [i for i in invariants if i.kind in KINDS]
    if not laws:
        return []
    edges, parents = structure_profile(con, start_ns, end_ns)
    edge = {(r["service"], r["operation"], r["span_kind"], r["child"]): r for r in edges.iter_rows(named=True)}
    par = {(r["service"], r["operation"], r["span_kind"]): r for r in parents.iter_rows(named=True)}
    out: list[Violation] = []
    win = (start_ns, end_ns)
    strict_floor = {True: 1, False: MIN_COUNTEREXAMPLES}
    for inv in laws:
        op = (inv.service, inv.operation, inv.span_kind)
        p = par.get(op)
        if p is None:
            continue
        floor = strict_floor[inv.source == "spec"]
        e = edge.get((*op, inv.subject))
        if inv.kind == "never_root":
            x, m = int(p["roots"]), int(p["parents"])
            _add(con, out, inv, (x, m, floor), win, text=f"{x:,d} of {m:,d} spans start a new trace")
        elif inv.kind in ("required_child", "client_server"):
            m = int(p["ok_parents"])
            x = m - (int(e["ok_with_child"]) if e else 0)
            what = "have no SERVER child" if inv.kind == "client_server" else f"lack child {inv.subject}"
            _add(con, out, inv, (x, m, floor), win, text=f"{x:,d} of {m:,d} successful spans {what}")
        elif inv.kind == "call_edge":
            _vanished(con, out, inv, (int(p["ok_parents"]), e), win)
        elif inv.kind == "callees":
            known = set(inv.params.get("callees", []))
            for key, r in edge.items():
                if key[:3] != op or r["child"] in known:
                    continue
                x, m = int(r["with_child"]), int(p["parents"])
                sql = counterexample_sql(inv, start_ns, end_ns, child=r["child"])
                text = f"new call edge to {r['child']} on {x:,d} of {m:,d} spans"
                pv = float(exception_p_value(x, m, max(inv.support, EDGE_MIN_SUPPORT))[()])
                if x >= floor and (pv < ALPHA or inv.source == "spec"):
                    _record(con, out, inv, (x, m, pv), win, text=text, sql=sql, subject=r["child"])
        elif (
            inv.kind == "fanout"
            and e is not None
            and (e["fan_lo"] < inv.params["min"] or e["fan_hi"] > inv.params["max"])
        ):
            sql = counterexample_sql(inv, start_ns, end_ns)
            x = _count(con, sql.rsplit(" LIMIT ", 1)[0])
            text = f"fan-out to {inv.subject} outside {inv.params['min']}..{inv.params['max']} on {x:,d} spans"
            _add(con, out, inv, (x, int(e["with_child"]), floor), win, text=text, sql=sql)
    return out


def _vanished(
    con: duckdb.DuckDBPyConnection,
    out: list[Violation],
    inv: Invariant,
    observed: tuple[int, dict[str, Any] | None],
    win: tuple[int, int],
) -> None:
    """Record a vanished call edge: too few calls over the window, or none over its tail.

    Two Poisson tests against half the law's rate (``stats.drop_p_value``), Bonferroni over both:
    the window's count, and the silence since the last parent that made the call (a low-traffic
    caller's edge removed halfway through a window is seen by the second long before the first).
    """
    m, e = observed  # successful parents: a failed one may never have made the call
    rate = float(inv.params.get("rate", 0.0))
    seen = int(e["ok_children"]) if e else 0
    after = int(e["ok_parents_after"]) if e and e["last_call_ns"] is not None else m
    expected, expected_tail = rate * m, rate * after
    p_window, p_tail = float(drop_p_value(seen, expected)[()]), float(drop_p_value(0, expected_tail)[()])
    pv = min(1.0, 2 * min(p_window, p_tail))
    if max(expected, expected_tail) < 10 or pv >= ALPHA:
        return
    start_ns, end_ns = win
    if e is not None and e["last_call_ns"] is not None and p_tail < p_window:
        text = (
            f"edge {inv.subject} vanished: no call on the last {after:,d} of {m:,d} successful spans, "
            f"where {expected_tail:,.0f} were expected"
        )
        sql = counterexample_sql(inv, int(e["last_call_ns"]) + 1, end_ns)
    else:
        text = f"edge {inv.subject} vanished: {seen:,d} calls where {expected:,.0f} were expected"
        sql = counterexample_sql(inv, start_ns, end_ns)
    _record(con, out, inv, (seen, m, pv), win, text=text, sql=sql)


def _add(
    con: duckdb.DuckDBPyConnection,
    out: list[Violation],
    inv: Invariant,
    counts: tuple[int, int, int],
    win: tuple[int, int],
    *,
    text: str,
    sql: str | None = None,
) -> None:
    """Record a violation when x exceptions of m (at least ``floor``) are more than luck."""
    x, m, floor = counts
    start_ns, end_ns = win
    if x < floor or m <= 0:
        return
    pv = float(exception_p_value(x, m, max(inv.support, MIN_SUPPORT))[()])
    if pv < ALPHA or inv.source == "spec":
        _record(con, out, inv, (x, m, pv), win, text=text, sql=sql or counterexample_sql(inv, start_ns, end_ns))


def _record(
    con: duckdb.DuckDBPyConnection,
    out: list[Violation],
    inv: Invariant,
    stats_: tuple[int, int, float],
    win: tuple[int, int],
    *,
    text: str,
    sql: str,
    subject: str | None = None,
) -> None:
    """Fetch counterexamples for a violation and append it to ``out``."""
    x, m, pv = stats_
    del win
    examples = fetch_rows(con, sql)
    first = min((e["start_time"] for e in examples), default=None)
    change = int(first) if first is not None else None
    detector = "invariant_trace_context" if inv.kind in ("never_root", "client_server") else "invariant_call_edge"
    evidence: dict[str, Any] = {"law": inv.params, "trace_ids": [e["trace_id"] for e in examples], "sql": sql}
    if subject is not None:
        evidence["new_callee"] = subject
    out.append(Violation(inv, detector, x, m, pv, change, text, evidence))
