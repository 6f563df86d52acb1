"""Learn invariants from a baseline, check a window against them, and turn violations into Findings.

``extract`` runs every family (attributes, structure, conservation, physics, logs) over
one baseline window (physics needs the per-minute rollups: ``analysis.rollup_all``);
``check`` runs the same profiles over the window under test and keeps only significant
violations (``detectors.invariants.stats``); ``detect_invariants`` is the detection job's
entry point: it learns from the history before the window (or uses the stored
``invariants`` table, or a spec file), adds the spec's boundary rules and SLOs, and
returns Findings carrying counterexamples and the SQL that reproduces them.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from analysis import Window
from detectors.base import SignalKey
from detectors.findings import Finding
from detectors.invariants import attributes, conservation, logs, physics, structure
from detectors.invariants.boundaries import check_boundaries
from detectors.invariants.model import Invariant, Violation, load_invariants
from detectors.invariants.slo import check_slos
from detectors.invariants.spec import Spec, load_spec
from store.findings import Severity
from store.timeconv import ns_from_datetime

DEFAULT_HISTORY_S = 24 * 3600
"""Baseline length learned from when no invariants are stored: the day before the window."""
REFRESH_S = 24 * 3600
"""Stored learned laws are learned again once the window starts this long (data time) after them."""
_NS = 1_000_000_000

_SEVERITY: dict[str, Severity] = {
    "invariant_trace_context": "warning",
    "invariant_attribute": "warning",
    "invariant_call_edge": "warning",
    "invariant_conservation": "critical",
    "log_template": "info",
    "boundary": "critical",
    "invariant_slo": "critical",
}


def extract(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> list[Invariant]:
    """Every invariant the window [start, end) supports, sorted by kind and entity."""
    ops = attributes.operation_counts(con, start_ns, end_ns)
    found = attributes.learn_attributes(
        attributes.attribute_profile(con, start_ns, end_ns), ops, attributes.resource_profile(con, start_ns, end_ns)
    )
    edges, parents = structure.structure_profile(con, start_ns, end_ns)
    found += structure.learn_structure(edges, parents)
    found += conservation.learn_conservation(conservation.minute_counts(con, start_ns, end_ns), edges)
    found += physics.learn_physics(
        physics.counter_minutes(con, start_ns, end_ns), physics.in_flight_minutes(con, start_ns, end_ns)
    )
    masked = logs.masked_lines(con, start_ns, end_ns)
    if not masked.is_empty():
        found += logs.learn_logs(logs.templates_frame(masked), logs.service_spans(con, start_ns, end_ns))
    return sorted(found, key=lambda i: (i.kind, i.entity, i.span_kind or "", i.subject or ""))


def check(con: duckdb.DuckDBPyConnection, invariants: list[Invariant], start_ns: int, end_ns: int) -> list[Violation]:
    """Significant violations of ``invariants`` in [start, end)."""
    out = attributes.check_attributes(con, invariants, start_ns, end_ns)
    out += structure.check_structure(con, invariants, start_ns, end_ns)
    out += conservation.check_conservation(con, invariants, start_ns, end_ns)
    out += physics.check_physics(con, invariants, start_ns, end_ns)
    out += logs.check_logs(con, invariants, start_ns, end_ns)
    return out


def exercised(con: duckdb.DuckDBPyConnection, invariants: list[Invariant], start_ns: int, end_ns: int) -> list[bool]:
    """Per invariant: did the window contain anything it applies to (its operation, service or template)?"""
    observed = extract_entities(con, start_ns, end_ns)
    service_level = ("counter_ratio", "resource_attribute", "log_templates")
    return [(inv.service, None if inv.kind in service_level else inv.operation) in observed for inv in invariants]


def extract_entities(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> set[tuple[str | None, str | None]]:
    """(service, operation) and (service, None) pairs present in [start, end) (spans and logs)."""
    ops = attributes.operation_counts(con, start_ns, end_ns)
    out: set[tuple[str | None, str | None]] = set()
    for row in ops.iter_rows(named=True):
        out.add((row["service"], row["operation"]))
        out.add((row["service"], None))
    return out


def to_finding(v: Violation, start_ns: int, end_ns: int) -> Finding:
    """A Finding for one violation: signal = (invariant kind, entity, subject)."""
    inv = v.invariant
    subject = v.evidence.get("new_callee") or inv.subject
    share = v.exceptions / v.trials if v.trials else None
    severity: Severity = _SEVERITY.get(v.detector, "warning")
    if inv.source == "spec" and v.detector != "log_template":
        severity = "critical"
    return Finding(
        detector=v.detector,
        signal=SignalKey(kind=inv.kind, service=inv.service, operation=inv.operation, metric=subject,
                         attributes=inv.span_kind),
        window_start_ns=start_ns,
        window_end_ns=end_ns,
        change_ns=v.change_ns,
        severity=severity,
        score=min(1.0, max(0.0, 1.0 - v.p_value)),
        effect=share,
        effect_text=v.text,
        before=0.0,
        after=share,
        p_value=v.p_value,
        # Invariant violations are their own family, not part of the detectors' Benjamini-Hochberg
        # family: each law is reported only below stats.ALPHA (1e-6), so a run checking L laws
        # makes a false report with probability <= L x 1e-6 (Bonferroni; 1e-3 for a thousand
        # laws). The q-value is the p-value, the per-law error rate that threshold controls.
        q_value=min(1.0, v.p_value),
        evidence={"invariant": inv.label(), "invariant_id": inv.id, "support": inv.support, "source": inv.source,
                  "exceptions": v.exceptions, "trials": v.trials, **v.evidence},
    )  # fmt: skip


def current_laws(con: duckdb.DuckDBPyConnection, start_ns: int) -> tuple[list[Invariant], bool]:
    """The learned laws a detection run from ``start_ns`` checks, and whether they are new.

    The stored ones when they were learned before ``start_ns`` and less than ``REFRESH_S``
    before it; else laws learned afresh over the ``DEFAULT_HISTORY_S`` before ``start_ns``
    (second value True: the caller persists them, so the next runs do not learn again).
    """
    stored, learned_to = load_invariants(con)
    if stored and learned_to is not None and start_ns - REFRESH_S * _NS <= learned_to <= start_ns:
        return stored, False
    return extract(con, start_ns - DEFAULT_HISTORY_S * _NS, start_ns), True


def detect_invariants(
    con: duckdb.DuckDBPyConnection, window: Window, spec_path: Path | None = None, laws: list[Invariant] | None = None
) -> list[Finding]:
    """Invariant violations in ``window`` as Findings.

    The laws come from, in order of preference: the spec file (when given), ``laws`` (when
    given), or ``current_laws`` (stored, else learned from the ``DEFAULT_HISTORY_S`` before the
    window). A spec's boundary rules and SLOs are checked too.
    """
    start_ns, end_ns = ns_from_datetime(window.start), ns_from_datetime(window.end)
    spec: Spec | None = load_spec(spec_path) if spec_path is not None else None
    if spec is not None:
        laws = spec.to_invariants()
    elif laws is None:
        laws, _ = current_laws(con, start_ns)
    violations = check(con, laws, start_ns, end_ns)
    if spec is not None:
        violations += check_boundaries(con, spec, start_ns, end_ns)
        violations += check_slos(con, spec.slos, start_ns, end_ns)
    return [to_finding(v, start_ns, end_ns) for v in violations]
