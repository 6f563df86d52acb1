"""The observability gate's orchestration: choose the two sides, call the judge, render the answer.

Deterministic and free of statistics (those live in ``detectors.judge``): a
:class:`GateRequest` names the baseline and the candidate by ``service.version`` and/or a
time window; :func:`run_gate` resolves them to time ranges from the store, runs
``detectors.judge.judge`` and returns a :class:`GateResult`, which renders as a table,
JSON or Markdown (a pull-request comment). ``POST /api/gate`` takes a ``GateRequest`` as
JSON and answers the ``GateResult``.

Side syntax on the command line (``parse_side``): comma-separated ``key=value`` pairs,
``version=V`` and/or ``window=START/END`` with ISO-8601 times (UTC when no offset is
given), e.g. ``version=1.2.0``, ``window=2026-03-02T10:00/2026-03-02T11:00`` or
``version=2.0.0,window=2026-03-02T10:00/2026-03-02T11:00`` (the canary's hour only).
A version side covers the time that version ran; a version-only baseline is then aligned
with the candidate (``align_baseline``): the candidate's own time range for a canary serving
beside it, or the same length just before the candidate for a before/after deploy.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from detectors.judge import Contract, ContractError, MetricResult, Scope, judge, parse_contract, specs_for
from detectors.judge.contract_checks import InvariantChecker
from detectors.judge.contract_invariants import invariant_checker as store_invariant_checker
from detectors.judge.samples import version_range

__all__ = [
    "EXIT_CODES",
    "GateError",
    "GateRequest",
    "GateResult",
    "ResolvedSide",
    "SideSpec",
    "align_baseline",
    "exit_code",
    "handle_gate_request",
    "parse_side",
    "render",
    "run_gate",
]

EXIT_CODES = {"pass": 0, "fail": 1, "marginal": 2, "insufficient": 3, "usage": 4}
"""Exit status per verdict (marginal only with ``--fail-on marginal``; otherwise 0)."""
_ALL_TIME_NS = (0, 2**62)


class GateError(ValueError):
    """A gate request that cannot be run (bad side, unknown service); the message says what is wrong."""


class SideSpec(BaseModel):
    """One side of the comparison: a ``service.version``, a time window [start, end), or both."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    @model_validator(mode="after")
    def _check(self) -> SideSpec:
        if self.version is None and self.start is None:
            raise ValueError("a side needs a version or a window (start and end)")
        if (self.start is None) != (self.end is None):
            raise ValueError("a window needs both start and end")
        if self.start is not None and self.end is not None and _ns(self.end) <= _ns(self.start):
            raise ValueError("the window's end must be after its start")
        return self


class GateRequest(BaseModel):
    """What ``driftscope gate`` and ``POST /api/gate`` take."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    baseline: SideSpec
    candidate: SideSpec
    service: str | None = None
    """The service under change; required with versions (default: the contract's ``service``)."""
    contract: str | None = None
    """The feature contract's YAML text (the CLI reads ``--contract FILE``)."""
    alpha: float = Field(0.01, gt=0, lt=0.5)
    """Family-wise significance level of the per-metric tests (Holm-adjusted)."""
    fail_score: int = Field(60, ge=0, le=100)


class ResolvedSide(BaseModel):
    """A side as judged: services, version and the time range its data came from."""

    services: list[str]
    version: str | None
    start: dt.datetime
    end: dt.datetime


class GateResult(BaseModel):
    """The gate's answer: verdict, score, the reviewer's lines and every metric."""

    verdict: Literal["pass", "marginal", "fail", "insufficient"]
    score: int
    summary: str
    reasons: list[str]
    baseline: ResolvedSide
    candidate: ResolvedSide
    change: str = ""
    metrics: list[MetricResult]


def _ns(t: dt.datetime) -> int:
    aware = t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    delta = aware - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1_000


def _time(ns: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=ns // 1_000)


def _parse_time(text: str, what: str) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise GateError(f"{what}: {text!r} is not an ISO-8601 time like 2026-03-02T10:00") from None
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo else t


def parse_side(text: str, what: str = "side") -> SideSpec:
    """``version=V``, ``window=START/END`` or both, comma-separated (see the module docstring)."""
    fields: dict[str, str] = {}
    for part in (p for p in text.split(",") if p.strip()):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in ("version", "window") or not value.strip():
            raise GateError(f"{what}: {part!r} is not version=V or window=START/END")
        if key in fields:
            raise GateError(f"{what}: {key} given twice")
        fields[key] = value.strip()
    if not fields:
        raise GateError(f"{what}: empty; give version=V and/or window=START/END")
    start = end = None
    if "window" in fields:
        a, sep, b = fields["window"].partition("/")
        if not sep:
            raise GateError(f"{what}: window {fields['window']!r} needs START/END")
        start, end = _parse_time(a, f"{what} window start"), _parse_time(b, f"{what} window end")
        if end <= start:
            raise GateError(f"{what}: the window's end {b} is not after its start {a}")
    return SideSpec(version=fields.get("version"), start=start, end=end)


def _resolve(con: duckdb.DuckDBPyConnection, side: SideSpec, services: tuple[str, ...], what: str) -> Scope:
    lo, hi = (_ns(side.start), _ns(side.end)) if side.start and side.end else _ALL_TIME_NS
    if side.version is None:
        return Scope(services, None, lo, hi)
    if len(services) != 1:
        raise GateError(f"{what}: a version side needs exactly one --service (the service that runs it)")
    first, last, n = version_range(con, services[0], side.version, lo, hi)
    if n == 0:
        return Scope(services, side.version, lo if side.start else 0, hi if side.end else 0)
    return Scope(services, side.version, first, last)


def align_baseline(baseline: Scope, candidate: Scope, request: GateRequest) -> Scope:
    """Clip a version-only baseline so both sides cover comparable time.

    A canary (the baseline version still serving while the candidate runs): the baseline
    is taken over the candidate's own time range, so both see the same load and hour.
    Before/after a deploy: the baseline is the stretch just before the candidate started,
    as long as the candidate's (a baseline version's whole history would mix in other days).
    """
    if request.baseline.start is not None or baseline.version is None or candidate.end_ns <= candidate.start_ns:
        return baseline
    if baseline.start_ns < candidate.end_ns and candidate.start_ns < baseline.end_ns:
        return Scope(baseline.services, baseline.version, candidate.start_ns, candidate.end_ns)
    length = candidate.end_ns - candidate.start_ns
    return Scope(baseline.services, baseline.version, max(baseline.start_ns, baseline.end_ns - length), baseline.end_ns)


def _side(scope: Scope) -> ResolvedSide:
    return ResolvedSide(
        services=list(scope.services), version=scope.version, start=_time(scope.start_ns), end=_time(scope.end_ns)
    )


def run_gate(
    con: duckdb.DuckDBPyConnection, request: GateRequest, invariant_checker: InvariantChecker | None = None
) -> GateResult:
    """Resolve both sides, judge the candidate against the baseline, and return the result.

    Raises :class:`GateError` (a usage error) for a request that cannot be run, and
    ``detectors.judge.ContractError`` for an invalid contract. Without ``invariant_checker``
    the contract's invariants are checked against the store's invariants
    (``detectors.judge.contract_invariants``).
    """
    contract: Contract | None = parse_contract(request.contract, "contract") if request.contract else None
    service = request.service or (contract.service if contract else None)
    services: tuple[str, ...] = (service,) if service else tuple(contract.services() if contract else ())
    baseline = _resolve(con, request.baseline, services, "baseline")
    candidate = _resolve(con, request.candidate, services, "candidate")
    baseline = align_baseline(baseline, candidate, request)
    if invariant_checker is None and contract is not None and (contract.invariants.held or contract.invariants.removed):
        names = [*contract.invariants.held, *contract.invariants.removed]
        invariant_checker = store_invariant_checker(con, names=names)  # checked by the invariant checker
    judgement = judge(
        con,
        baseline,
        candidate,
        contract=contract,
        specs=specs_for(contract),
        alpha=request.alpha,
        fail_score=request.fail_score,
        invariant_checker=invariant_checker,
    )
    v = judgement.verdict
    return GateResult(
        verdict=v.verdict,
        score=v.score,
        summary=v.summary,
        reasons=v.reasons,
        baseline=_side(baseline),
        candidate=_side(candidate),
        change=contract.change if contract else "",
        metrics=judgement.metrics,
    )


def handle_gate_request(
    con: duckdb.DuckDBPyConnection, body: bytes, invariant_checker: InvariantChecker | None = None
) -> tuple[int, dict[str, Any]]:
    """``POST /api/gate``: (200, GateResult as JSON) or (400, {"error": ...}) naming what is wrong in the body."""
    try:
        request = GateRequest.model_validate_json(body)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}" for e in exc.errors())
        return 400, {"error": f"invalid gate request: {problems}"}
    try:
        result = run_gate(con, request, invariant_checker)
    except (GateError, ContractError) as exc:
        return 400, {"error": str(exc)}
    return 200, result.model_dump(mode="json")


def exit_code(result: GateResult, fail_on: Literal["marginal", "fail"] = "fail") -> int:
    """0 pass, 1 fail, 2 marginal (only when ``fail_on`` is marginal; else 0), 3 insufficient data."""
    if result.verdict == "marginal" and fail_on != "marginal":
        return EXIT_CODES["pass"]
    return EXIT_CODES[result.verdict]


_ORDER = {"fail": 0, "insufficient": 1, "marginal": 2, "not_checked": 3, "pass": 4}


def _describe(side: ResolvedSide) -> str:
    who = ",".join(side.services) or "all services"
    version = f" {side.version}" if side.version else ""
    return f"{who}{version} [{side.start:%Y-%m-%dT%H:%M:%S} .. {side.end:%Y-%m-%dT%H:%M:%S})"


def _sorted(result: GateResult) -> list[MetricResult]:
    return sorted(result.metrics, key=lambda m: (_ORDER[m.outcome], not m.critical))


def _table(result: GateResult) -> str:
    head = [
        f"gate: {result.verdict.upper()}  score {result.score}/100  {result.summary}",
        f"baseline:  {_describe(result.baseline)}",
        f"candidate: {_describe(result.candidate)}",
    ]
    if result.change:
        head.insert(1, f"change: {result.change}")
    rows = [("outcome", "crit", "metric", "n base", "n cand", "result")]
    rows += [
        (m.outcome, "yes" if m.critical else "", m.name, str(m.n_baseline), str(m.n_candidate), m.text)
        for m in _sorted(result)
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5] for r in rows]
    return "\n".join([*head, "", *lines]) + "\n"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


_BADGE = {"pass": "PASS", "marginal": "MARGINAL", "fail": "FAIL", "insufficient": "INSUFFICIENT DATA"}


def _markdown(result: GateResult) -> str:
    lines = [
        f"### driftscope gate: **{_BADGE[result.verdict]}** (score {result.score}/100)",
        "",
        f"{_md_escape(result.summary)}",
        "",
        f"- baseline: `{_describe(result.baseline)}`",
        f"- candidate: `{_describe(result.candidate)}`",
    ]
    if result.change:
        lines.append(f"- change: {_md_escape(result.change)}")
    ordered = _sorted(result)
    notable = [m for m in ordered if m.outcome != "pass"]
    header = ["", "| outcome | metric | result | n (base / cand) |", "|---|---|---|---|"]

    def row(m: MetricResult) -> str:
        crit = " (critical)" if m.critical else ""
        return (
            f"| {m.outcome}{crit} | `{_md_escape(m.name)}` | {_md_escape(m.text)} | {m.n_baseline} / {m.n_candidate} |"
        )

    if notable:
        lines += [*header, *(row(m) for m in notable)]
    passed = [m for m in ordered if m.outcome == "pass"]
    if passed:
        lines += ["", f"<details><summary>{len(passed)} metrics passed</summary>", *header, *(row(m) for m in passed)]
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def render(result: GateResult, fmt: Literal["table", "json", "markdown"]) -> str:
    """The result as an aligned text table, JSON, or Markdown for a pull-request comment."""
    if fmt == "json":
        return result.model_dump_json(indent=2) + "\n"
    if fmt == "markdown":
        return _markdown(result)
    return _table(result)
