"""The offline drafting policy: a feature contract filled in from the touched operations and today's baselines.

``draft_contract(feature, facts, hints)`` finds the operations the feature touches (the
hints, plus operations whose name the description quotes), and fills the template:

- per touched operation an SLO from today's baseline plus the calls the feature adds
  (p99 budget 1.5 x (p99 today + each new call's p99), error ratio max(1 %, 3 x today);
  an operation without data is estimated from its service's other operations), the span
  attributes it carries today (protocol attributes left out) plus those its layer's rules
  require, and test keywords;
- for a new operation in a layer whose rules require a child call (auth on every write),
  that call, so the draft is born compliant;
- the new call edges, and the laws they must keep (``X calls Y``, ``X carries KEY``);
- telemetry: the metrics and histograms the service emits today, a duration histogram
  when the feature is batch work, logs with trace context, propagation;
- gate thresholds widened to the latency and calls the new calls add (minimum effect 3 x
  the estimate: the gate says marginal beyond 1.5 x, fail beyond 3 x), so the gate judges
  the feature against its budget rather than the 5 % default;
- tests in all three layers matched by the feature's keyword, infrastructure touched when
  the description or a new service says so, and a rollback to today's version.

Every assumption is written to ``notes``. The draft is then validated like any contract
(``design.validate_plan`` and ``design.check_design``) by the caller.
"""

from __future__ import annotations

import fnmatch
import math
import re
from dataclasses import dataclass

from detectors.judge.contract import Calls, Contract, Edge, Invariants, OperationContract, Slo, Telemetry, Threshold
from detectors.judge.contract_plan import Infrastructure, Rollback, Tests
from detectors.planning.facts import OperationFacts, SystemFacts

__all__ = ["DraftError", "Hints", "draft_contract", "feature_keywords"]

PROTOCOL_PREFIXES = ("http.", "rpc.", "db.", "server.", "url.", "network.", "messaging.", "client.", "user_agent.")
"""Semantic-convention attributes every instrumentation emits: not part of a feature's contract."""
BATCH_WORDS = frozenset(
    {
        "batch",
        "job",
        "jobs",
        "nightly",
        "cron",
        "backfill",
        "import",
        "export",
        "bulk",
        "reconcile",
        "reconciliation",
    }
)
INFRA_WORDS = frozenset(
    {
        "bucket",
        "buckets",
        "storage",
        "queue",
        "topic",
        "table",
        "tables",
        "migration",
        "schema",
        "index",
        "secret",
        "terraform",
        "infrastructure",
        "scheduler",
        "cron",
        "dns",
        "certificate",
    }
)
STOPWORDS = frozenset(
    {
        "a",
        "an",
        "the",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "for",
        "with",
        "when",
        "per",
        "each",
        "every",
        "is",
        "are",
        "be",
        "by",
        "from",
        "into",
        "as",
        "at",
        "it",
        "its",
        "this",
        "that",
        "new",
        "add",
        "adds",
        "added",
        "store",
        "stores",
        "stored",
        "feature",
        "should",
        "must",
        "can",
        "will",
    }
)


class DraftError(ValueError):
    """The feature cannot be drafted (no operation found); the message says what to give."""


@dataclass(frozen=True)
class Hints:
    """What the caller already knows: operations touched, added, and new calls (caller, callee)."""

    touch: tuple[str, ...] = ()
    add: tuple[str, ...] = ()
    calls: tuple[tuple[str, str], ...] = ()
    tests_match: tuple[str, ...] = ()


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z][a-z0-9]+", text.lower())


def feature_keywords(feature: str, facts: SystemFacts) -> list[str]:
    """The feature's own word (singular), the one its tests are expected to name: not a stopword, not a system name."""
    names = {w for op in facts.operations for w in _words(op)}
    names |= {w.rstrip("s") for w in names}
    for w in _words(feature):
        stem = w[:-1] if w.endswith("s") and len(w) > 4 else w
        if len(stem) >= 4 and w not in STOPWORDS and stem not in names and w not in names:
            return [stem]
    return []


def _mentioned(feature: str, facts: SystemFacts) -> list[str]:
    text = feature.lower()
    return [op for op in facts.operations if op.lower() in text or f" {op.partition(':')[2].lower()}" in f" {text}"]


def _nice(value: float) -> float:
    """Round up to 2 significant digits (an SLO a team reads: 37.4 -> 38, 1234 -> 1300)."""
    if value <= 0:
        return 1.0
    step = 10 ** (math.floor(math.log10(value)) - 1)
    return float(math.ceil(value / step) * step)


def _estimate(op: str, facts: SystemFacts, level: float) -> tuple[float | None, str]:
    """(ms, how) of an operation's latency quantile: its own, else its service's slowest other operation."""
    known = facts.operations.get(op)
    value = known.quantile_ms(level) if known else None
    if value is not None:
        return value, f"{op} p{level * 100:g} {value:.3g} ms"
    service = op.partition(":")[0]
    siblings = [(o.quantile_ms(level), o.name) for o in facts.operations.values() if o.service == service]
    siblings = [(v, n) for v, n in siblings if v is not None]
    if not siblings:
        return None, f"{op}: no data, nothing to estimate from"
    v, n = max(siblings)
    assert v is not None
    return v, f"{op} estimated from {n} p{level * 100:g} {v:.3g} ms"


def _attributes(op: str, facts: SystemFacts, caller: OperationFacts | None) -> list[str]:
    known = facts.operations.get(op)
    keys = [a for a in (known.attributes if known else ()) if not a.startswith(PROTOCOL_PREFIXES)]
    if known is None and caller is not None:  # a new operation carries its caller's business ids, to join on
        keys += [a for a in caller.attributes if not a.startswith(PROTOCOL_PREFIXES) and a.endswith(".id")
                 and "user" not in a]  # fmt: skip
    layer = facts.layer_of(op.partition(":")[0])
    for q in facts.spec.boundaries.requirements:
        if q.layer == layer and q.attribute and re.fullmatch(_glob_re(q.operations), op.partition(":")[2]):
            keys.append(q.attribute)
    return sorted(set(keys))


def _glob_re(patterns: list[str]) -> str:
    return "|".join(f"(?:{fnmatch.translate(p)})" for p in patterns)


def _required_children(op: str, facts: SystemFacts) -> list[str]:
    layer = facts.layer_of(op.partition(":")[0])
    return [
        q.child
        for q in facts.spec.boundaries.requirements
        if q.layer == layer and q.child and re.fullmatch(_glob_re(q.operations), op.partition(":")[2])
    ]


def _touched(feature: str, facts: SystemFacts, hints: Hints) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    for op in hints.touch:
        if op not in facts.operations:
            raise DraftError(f"--touch {op!r}: unknown operation (use --add for an operation the feature adds)")
    added = list(dict.fromkeys(hints.add))
    calls = list(dict.fromkeys(hints.calls))
    for caller, callee in calls:
        for op in (caller, callee):
            if op not in facts.operations and op not in added:
                added.append(op)
    touched = [op for op in dict.fromkeys([*hints.touch, *_mentioned(feature, facts), *(c for c, _ in calls)])
               if op not in added]  # fmt: skip
    for op in added:  # new operations get the calls their layer requires (auth on writes)
        calls += [(op, child) for child in _required_children(op, facts) if (op, child) not in calls]
    if not touched and not added:
        raise DraftError(
            "could not tell which operations the feature touches: quote one in the description "
            "(e.g. 'POST /api/orders') or name them with --touch, --add or --call"
        )
    return touched, added, calls


def _slo(op: str, facts: SystemFacts, new_calls: list[str], notes: list[str]) -> Slo:
    if op in facts.operations or not new_calls:
        p99, how = _estimate(op, facts, 0.99)
        parts, total = [how], p99 or 0.0
    else:  # a new operation that makes calls: budgeted from them (a sibling's figure would count its calls too)
        parts, total = [], 0.0
    for callee in new_calls:
        v, h = _estimate(callee, facts, 0.99)
        parts.append(h)
        total += v or 0.0
    known = facts.operations.get(op)
    ratio = known.error_ratio if known and known.error_ratio is not None else 0.0
    if total <= 0:
        notes.append(f"{op}: no latency data to budget from; SLO left to the team")
        return Slo(error_ratio=round(max(0.01, 3 * ratio), 4), basis="no baseline")
    basis = "1.5 x (" + " + ".join(parts) + ")"
    return Slo(latency_ms=_nice(1.5 * total), quantile=0.99, error_ratio=round(max(0.01, 3 * ratio), 4), basis=basis)


def _thresholds(
    touched: list[str], calls: list[tuple[str, str]], facts: SystemFacts, notes: list[str]
) -> dict[str, Threshold]:
    worst: dict[str, float] = {}
    for op in touched:
        known = facts.operations.get(op)
        new = [c for caller, c in calls if caller == op]
        if not known or not new or not known.p50_ms or not known.p99_ms:
            continue
        typical = sum(_estimate(c, facts, 0.5)[0] or 0.0 for c in new) / known.p50_ms
        tail = sum(_estimate(c, facts, 0.99)[0] or 0.0 for c in new) / known.p99_ms
        calls_up = len(new) / max(len(known.callees), 1)
        for kind, value in (
            ("latency", typical),
            ("latency_p99", tail),
            ("histogram_metric", typical),
            ("calls_per_request", calls_up),
        ):
            worst[kind] = max(worst.get(kind, 0.0), value)
        notes.append(f"{op}: {len(new)} new call(s) add about +{typical:.0%} typical, +{tail:.0%} p99 latency")
    return {k: Threshold(min_effect=math.ceil(3 * v * 20) / 20) for k, v in worst.items() if v > 0}


def draft_contract(feature: str, facts: SystemFacts, hints: Hints = Hints()) -> Contract:
    """A complete contract for ``feature`` (see the module docstring); DraftError when no operation is found."""
    notes: list[str] = []
    touched, added, calls = _touched(feature, facts, hints)
    services = [op.partition(":")[0] for op in (*touched, *added)]
    service = max(dict.fromkeys(services), key=services.count)
    keywords = list(hints.tests_match) or feature_keywords(feature, facts)
    ops: list[OperationContract] = []
    for op in (*touched, *added):
        new = [c for caller, c in calls if caller == op]
        caller = next((facts.operations.get(c) for c, callee in calls if callee == op), None)
        ops.append(OperationContract(name=op, added=op in added, slo=_slo(op, facts, new, notes),
                                     span_attributes=_attributes(op, facts, caller), tests=keywords))  # fmt: skip
    held = [f"{op} calls {c}" for op in touched for c in facts.operations[op].required]
    held += [f"{a} calls {b}" for a, b in calls]
    held += [f"{o.name} carries {k}" for o in ops if not o.added for k in o.span_attributes]
    facts_svc = facts.services.get(service)
    histograms = list(facts_svc.histograms) if facts_svc else []
    if BATCH_WORDS & set(_words(feature)):
        name = f"{(keywords or ['feature'])[0]}.job.duration"
        histograms.append(name)
        notes.append(f"batch work: emit {name} as a histogram (one observation per run)")
    telemetry = Telemetry(metrics=list(facts_svc.metrics) if facts_svc else [], histograms=histograms,
                          logs_with_trace_context=True, trace_propagation=True, services=[service])  # fmt: skip
    new_service = any(s not in facts.services for s in services)
    infra = bool(INFRA_WORDS & set(_words(feature))) or new_service
    version = facts_svc.version if facts_svc else None
    steps = [
        f"redeploy {service} {version or '<previous version>'} through the pipeline (the previous image)",
        f"confirm with `driftscope gate --service {service} --baseline version=<new> --candidate version={version}`",
    ]
    if infra:
        steps.insert(
            1, "leave the new infrastructure in place (unused by the old version); remove it in a later change"
        )
    if version is None:
        notes.append(f"{service}: no version seen in the baseline; fill rollback.to_version")
    return Contract(
        change=feature.strip().splitlines()[0][:200] if feature.strip() else "feature",
        service=service,
        operations=ops,
        calls=Calls(present=[Edge(caller=a, callee=b) for a, b in calls]),
        invariants=Invariants(held=list(dict.fromkeys(held))),
        telemetry=telemetry,
        thresholds=_thresholds(touched, calls, facts, notes),  # type: ignore[arg-type]
        tests=Tests(match=keywords),
        infrastructure=Infrastructure(touched=infra),
        rollback=Rollback(to_version=version, steps=steps),
        notes=notes,
    )
