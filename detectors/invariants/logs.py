"""Log templates mined with Drain, their rate per request, and new / vanished / shifted templates.

Mining is split in two so that it stays vectorised: DuckDB first masks every token that
carries a digit (ids, durations, versions, hex) to ``<*>`` and groups the masked bodies, so
a day of log lines becomes a few hundred distinct masked lines with counts; only those go
through Drain (He et al., "Drain: An Online Log Parsing Approach with Fixed Depth Tree",
ICWS 2017, via the ``drain3`` package) to merge lines differing in free-text tokens.
drain3 itself parses one line at a time in Python, which is why it never sees raw lines.

A template's law is its rate per span of its service (traffic-normalised, so the daily
cycle does not look like drift); warnings and errors are normalised by the service's error
spans instead, since they follow failures, which the error-rate detectors judge.
Violations: a masked line that matches no baseline template of its service (a new
template: its lines per span judged against the rule-of-three bound over the service's
baseline spans), a template whose expected count is large but which fell below half of it
(vanished), and a Poisson shift beyond ``SHIFT_FACTOR`` either way.
"""

from __future__ import annotations

import re
from typing import Any

import duckdb
import polars as pl
from drain3 import TemplateMiner  # type: ignore[import-untyped]
from drain3.template_miner_config import TemplateMinerConfig  # type: ignore[import-untyped]

from detectors.invariants.model import Invariant, Violation
from detectors.invariants.sqltext import fetch_rows, lit, window_sql
from detectors.invariants.stats import (
    ALPHA,
    MIN_COUNTEREXAMPLES,
    confidence,
    drop_p_value,
    exception_p_value,
    shift_p_value,
)
from store.connection import fetch_arrow

WILDCARD = "<*>"
SHIFT_FACTOR = 3.0
"""A template's rate must move beyond x3 (or /3) of its baseline to count as shifted."""
MIN_EXPECTED = 20.0
"""Vanish and shift tests need at least this many expected lines in the window."""

_MASKED_SQL = """
WITH l AS (
    SELECT service_name, severity_text, trace_id, span_id,
           regexp_replace(coalesce(body, ''), '\\S*\\d\\S*', '<*>', 'g') AS masked
    FROM logs WHERE {window}
), s AS (
    SELECT trace_id, span_id, span_name FROM spans WHERE {span_window} AND span_id IN (SELECT span_id FROM l)
)
SELECT l.service_name AS service, s.span_name AS operation, masked, any_value(severity_text) AS severity,
       count(*) AS n
FROM l LEFT JOIN s ON s.trace_id = l.trace_id AND s.span_id = l.span_id GROUP BY ALL
"""
SPAN_MARGIN_NS = 300 * 10**9
"""A log line's span may start this long before the window (a long request logging at its end)."""
_SPANS_SQL = """
SELECT service_name AS service, span_name AS operation, count(*) AS spans,
       count(*) FILTER (status_code = 'ERROR') AS error_spans, count(*) FILTER (span_kind != 'CLIENT') AS own_spans
FROM spans WHERE {window} GROUP BY GROUPING SETS ((service_name, span_name), (service_name))
"""
ERROR_SEVERITIES = frozenset({"WARN", "WARNING", "ERROR", "FATAL", "CRITICAL"})
"""Templates of these severities are normalised by the service's error spans (they follow failures)."""


def _frame(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    frame = pl.from_arrow(fetch_arrow(con, sql))
    assert isinstance(frame, pl.DataFrame)
    return frame


def _log_window(start_ns: int, end_ns: int) -> str:
    return window_sql("coalesce(time, observed_time)", start_ns, end_ns)


def masked_lines(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> pl.DataFrame:
    """Distinct masked log bodies per (service, emitting operation) in [start, end), with counts and a severity.

    The emitting operation is the span the line carries the id of (NULL for uncorrelated lines).
    """
    span_window = window_sql("start_time", start_ns - SPAN_MARGIN_NS, end_ns)
    return _frame(con, _MASKED_SQL.format(window=_log_window(start_ns, end_ns), span_window=span_window))


Traffic = dict[tuple[str, str | None], tuple[int, int, int]]


def service_spans(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> Traffic:
    """(spans, error spans, own spans) per (service, operation) and per (service, None) in [start, end).

    Own spans are those the service emits itself (not CLIENT spans its callers name after it).

    The traffic a template's rate is normalised by: its emitting operation's, or its
    service's for lines that carry no span id.
    """
    frame = _frame(con, _SPANS_SQL.format(window=window_sql("start_time", start_ns, end_ns)))
    return {
        (str(r["service"]), r["operation"]): (int(r["spans"]), int(r["error_spans"]), int(r["own_spans"]))
        for r in frame.iter_rows(named=True)
    }


def _basis(severity: object) -> int:
    """0: normalise by spans; 1: by error spans (warnings and errors follow failures, not traffic)."""
    return int(str(severity).upper() in ERROR_SEVERITIES)


def mine(masked: pl.DataFrame) -> dict[tuple[str, str], str]:
    """(service, masked line) -> Drain template, one miner per service, most frequent lines first."""
    out: dict[tuple[str, str], str] = {}
    ordered = masked.sort(["service", "n", "masked"], descending=[False, True, False], nulls_last=True)
    for (service,), group in ordered.group_by(["service"], maintain_order=True):
        config = TemplateMinerConfig()
        config.profiling_enabled = False
        miner = TemplateMiner(config=config)
        lines = group["masked"].to_list()
        clusters = [miner.add_log_message(line)["cluster_id"] for line in lines]
        templates = {c.cluster_id: c.get_template() for c in miner.drain.clusters}
        for line, cid in zip(lines, clusters, strict=True):
            out[(str(service), line)] = templates[cid]
    return out


def templates_frame(masked: pl.DataFrame) -> pl.DataFrame:
    """Per (service, template): lines and severity."""
    mapping = mine(masked)
    tpl = [mapping[(str(s), m)] for s, m in zip(masked["service"], masked["masked"], strict=True)]
    with_tpl = masked.with_columns(pl.Series("template", tpl, pl.String))
    return with_tpl.group_by(["service", "operation", "template"]).agg(pl.col("n").sum(), pl.col("severity").first())


def learn_logs(templates: pl.DataFrame, spans: Traffic) -> list[Invariant]:
    """One law per (service, template): its severity and lines per span of the service.

    Plus, per service with traffic, ``log_templates``: the closed set of its templates (empty
    when it wrote no logs), against which any other template is new. A service seen only
    through its callers' client spans that wrote no line gets none: whether it does not log
    or its telemetry was not exported yet (switched on at an incident) cannot be told, and a
    claim of change needs a baseline.
    """
    out: list[Invariant] = []
    for (service, operation), (n, _, own) in sorted(spans.items(), key=str):
        if operation is not None:
            continue
        mine = templates.filter(pl.col("service") == service)
        if mine.is_empty() and own == 0:
            continue
        params = {"templates": sorted(set(mine["template"].to_list())), "lines": int(mine["n"].sum())}
        out.append(Invariant("log_templates", service, params=params, support=n, confidence=float(confidence(n))))
    for row in templates.sort(["service", "operation", "template"], nulls_last=True).iter_rows(named=True):
        n = int(row["n"])
        basis = _basis(row["severity"])
        traffic = max(spans.get((str(row["service"]), row["operation"]), (0, 0, 0))[basis], 1)
        params = {"severity": row["severity"], "per_span": n / traffic, "lines": n,
                  "basis": ("spans", "error_spans")[basis]}  # fmt: skip
        out.append(
            Invariant(
                "log_template", row["service"], row["operation"], subject=row["template"], params=params, support=n,
                confidence=float(confidence(n)),
            )
        )  # fmt: skip
    return out


def _matches(line: str, template: str) -> bool:
    a, b = line.split(), template.split()
    return len(a) == len(b) and all(t in {WILDCARD, x} for x, t in zip(a, b, strict=True))


def template_regex(template: str) -> str:
    """An RE2 pattern matching raw log bodies of ``template`` (wildcards are non-space runs)."""
    return r"\s*" + r"\s+".join(r"\S+" if t == WILDCARD else re.escape(t) for t in template.split()) + r"\s*"


def lines_sql(service: str, template: str, start_ns: int, end_ns: int, limit: int = 5) -> str:
    """The query listing log lines of ``template`` in [start, end)."""
    return (
        "SELECT time, service_name, severity_text, body, trace_id, span_id FROM logs "
        f"WHERE service_name = {lit(service)} AND {_log_window(start_ns, end_ns)} "
        f"AND regexp_full_match(coalesce(body, ''), {lit(template_regex(template))}) ORDER BY time LIMIT {limit}"
    )


def check_logs(
    con: duckdb.DuckDBPyConnection, invariants: list[Invariant], start_ns: int, end_ns: int
) -> list[Violation]:
    """New, vanished and shifted log templates in [start, end) against the template laws."""
    laws = [i for i in invariants if i.kind == "log_template"]
    closed = {str(i.service): i for i in invariants if i.kind == "log_templates"}
    if not laws and not closed:
        return []
    masked = masked_lines(con, start_ns, end_ns)
    spans = service_spans(con, start_ns, end_ns)
    known: dict[tuple[str, str | None], list[Invariant]] = {}
    for inv in laws:
        known.setdefault((str(inv.service), inv.operation), []).append(inv)
    counts = {inv.id: 0 for inv in laws}
    unknown_rows: list[dict[str, Any]] = []
    for row in masked.iter_rows(named=True):  # distinct masked lines, not log lines
        emitter = (str(row["service"]), row["operation"])
        hit = next((i for i in known.get(emitter, []) if _matches(row["masked"], i.subject or "")), None)
        if hit is not None:
            counts[hit.id] += int(row["n"])
        elif str(row["service"]) in closed and not any(
            _matches(row["masked"], t) for t in closed[str(row["service"])].params.get("templates", [])
        ):
            unknown_rows.append(row)
    out: list[Violation] = []
    if unknown_rows:
        mined = templates_frame(pl.DataFrame(unknown_rows, schema=masked.schema))
        new = mined.group_by(["service", "template"]).agg(pl.col("n").sum(), pl.col("severity").first())
        for row in new.sort(["service", "template"]).iter_rows(named=True):
            service, x = str(row["service"]), int(row["n"])
            m = max(spans.get((service, None), (0, 0, 0))[0], x)
            pv = float(exception_p_value(x, m, closed[service].support)[()])
            if x >= MIN_COUNTEREXAMPLES and pv < ALPHA:
                inv = Invariant("log_template", service, subject=row["template"], params={"severity": row["severity"]})
                text = f"new log template ({row['severity']}) on {x:,d} lines: {row['template']}"
                out.append(_violation(con, inv, x, m, pv, text=text, window=(start_ns, end_ns), change="new"))
    for inv in laws:
        x = counts[inv.id]
        basis = int(inv.params.get("basis") == "error_spans")
        expected = (
            float(inv.params.get("per_span", 0.0)) * spans.get((str(inv.service), inv.operation), (0, 0, 0))[basis]
        )
        if expected < MIN_EXPECTED and x < MIN_EXPECTED:
            continue
        pv = float(drop_p_value(x, expected)[()])
        if pv < ALPHA:
            text = f"log template vanished: {x:,d} lines where {expected:,.0f} were expected: {inv.subject}"
            out.append(
                _violation(con, inv, x, int(expected), pv, text=text, window=(start_ns, end_ns), change="vanished")
            )
            continue
        pv = float(shift_p_value(x, expected, SHIFT_FACTOR)[()])
        if pv < ALPHA:
            ratio = x / max(expected, 1e-9)
            text = f"log template rate x{ratio:.1f} ({x:,d} lines, {expected:,.0f} expected): {inv.subject}"
            out.append(
                _violation(con, inv, x, int(expected), pv, text=text, window=(start_ns, end_ns), change="shifted")
            )
    return out


def _violation(
    con: duckdb.DuckDBPyConnection,
    inv: Invariant,
    x: int,
    m: int,
    pv: float,
    *,
    text: str,
    window: tuple[int, int],
    change: str,
) -> Violation:
    start_ns, end_ns = window
    sql = lines_sql(str(inv.service), inv.subject or "", start_ns, end_ns)
    examples = fetch_rows(con, sql) if change != "vanished" else []
    first = examples[0]["time"] if examples else None
    change_ns = int(first) if first is not None else None
    evidence = {
        "change": change,
        "template": inv.subject,
        "law": inv.params,
        "log_lines": [str(e["body"]) for e in examples],
        "trace_ids": [e["trace_id"] for e in examples if e["trace_id"]],
        "sql": sql,
    }
    return Violation(inv, "log_template", x, m, pv, change_ns, text, evidence)
