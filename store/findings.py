"""Table ``findings``: the one writer, the reads every stage shares, and the one severity order.

Findings are deduped by fingerprint (detector or scope + signal): while one is open or
acknowledged, seeing it again updates it; it resolves by itself once its signal has been
quiet for ``resolve_after_s`` of data time. Lifecycle: open -> acknowledged -> resolved.
A finding read back is a frozen :class:`FindingRecord` (times in ns since the epoch, UTC;
evidence parsed), whoever reads it: the API, the CLI, dispatch, reports, self-metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import duckdb
import orjson
import pyarrow as pa

from store import dialect_duckdb as sql
from store.connection import fetch_arrow

Severity = Literal["info", "warning", "critical"]
Status = Literal["open", "acknowledged", "resolved"]
SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")
"""The one severity order, most severe first; every ranking of findings uses it."""
STATUSES: tuple[Status, ...] = ("open", "acknowledged", "resolved")


def severity_rank(severity: str) -> int:
    """0 for the most severe (critical), 1, 2, ...; unknown severities rank after every known one."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)  # type: ignore[arg-type]


def at_least(severity: str, minimum: str) -> bool:
    """Whether ``severity`` is as severe as ``minimum`` or more (unknown severities never are)."""
    return severity in SEVERITIES and severity_rank(severity) <= severity_rank(minimum)


class SignalLike(Protocol):
    """What a finding is about (``detectors.base.SignalKey`` satisfies it)."""

    @property
    def kind(self) -> str: ...
    @property
    def service(self) -> str | None: ...
    @property
    def operation(self) -> str | None: ...
    @property
    def metric(self) -> str | None: ...
    @property
    def attributes(self) -> str | None: ...


class Detected(Protocol):
    """A finding as a detection run produces it (``detectors.findings.Finding`` satisfies it)."""

    @property
    def id(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def detector(self) -> str: ...
    @property
    def signal(self) -> SignalLike: ...
    @property
    def window_start_ns(self) -> int: ...
    @property
    def window_end_ns(self) -> int: ...
    @property
    def change_ns(self) -> int | None: ...
    @property
    def severity(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def effect(self) -> float | None: ...
    @property
    def effect_text(self) -> str: ...
    @property
    def before(self) -> float | None: ...
    @property
    def after(self) -> float | None: ...
    @property
    def p_value(self) -> float: ...
    @property
    def q_value(self) -> float: ...
    @property
    def evidence(self) -> dict[str, Any]: ...


@dataclass(frozen=True, kw_only=True)
class Measured:
    """What a finding measured, however it travels (a detection run's :class:`detectors.findings.Finding`,
    a stored :class:`FindingRecord`): its window and change time in ns since the epoch (UTC), severity,
    score in [0, 1], the effect (relative, or None) with its text in user units, the values before
    and after in the signal's unit, and the p- and Benjamini-Hochberg q-values."""

    window_start_ns: int
    window_end_ns: int
    change_ns: int | None
    severity: Severity
    score: float
    effect: float | None
    effect_text: str
    before: float | None
    after: float | None
    p_value: float
    q_value: float


@dataclass(frozen=True, kw_only=True)
class FindingRecord(Measured):
    """One row of ``findings``; times in ns since the epoch (UTC), ``evidence`` parsed."""

    id: str
    fingerprint: str
    detector: str
    kind: str
    service: str | None
    operation: str | None
    metric: str | None
    attributes: str | None
    evidence: dict[str, Any]
    status: str
    first_seen_ns: int
    last_seen_ns: int
    runs: int
    acknowledged_ns: int | None
    resolved_ns: int | None

    @property
    def start_ns(self) -> int:
        """When the change began: the change point, else the window start."""
        return self.change_ns if self.change_ns is not None else self.window_start_ns


_TIMES = ("window_start", "window_end", "change_time")
_LIFECYCLE = ("first_seen", "last_seen")
_SELECT = (
    "SELECT id, fingerprint, detector, kind, service, operation, metric, attributes, "
    + ", ".join(sql.epoch_ns(c) for c in _TIMES)
    + ", severity, score, effect, effect_text, before, after, p_value, q_value, evidence, status, "
    + ", ".join(sql.epoch_ns(c) for c in _LIFECYCLE)
    + f", runs, {sql.epoch_ns('acknowledged_at')}, {sql.epoch_ns('resolved_at')} FROM findings"
)
_BY_SEVERITY = sql.rank_in("severity", SEVERITIES)


_COLUMNS = (
    *("id", "fingerprint", "detector", "kind", "service", "operation", "metric", "attributes"),
    *("window_start_ns", "window_end_ns", "change_ns", "severity", "score", "effect", "effect_text"),
    *("before", "after", "p_value", "q_value", "evidence", "status", "first_seen_ns", "last_seen_ns"),
    *("runs", "acknowledged_ns", "resolved_ns"),
)
"""The fields of :class:`FindingRecord` in the order ``_SELECT`` returns them."""


def _record(row: tuple[Any, ...]) -> FindingRecord:
    values = dict(zip(_COLUMNS, row, strict=True))
    evidence = orjson.loads(values["evidence"]) if values["evidence"] else {}
    values["evidence"] = evidence if isinstance(evidence, dict) else {"value": evidence}
    return FindingRecord(**values)


def _records(con: duckdb.DuckDBPyConnection, where: str, params: dict[str, Any], order: str) -> list[FindingRecord]:
    return [_record(r) for r in con.execute(f"{_SELECT} WHERE {where} ORDER BY {order}", params).fetchall()]


def finding(con: duckdb.DuckDBPyConnection, finding_id: str) -> FindingRecord | None:
    """The finding with id ``finding_id``, or None."""
    found = _records(con, "id = $id", {"id": finding_id}, "id")
    return found[0] if found else None


def open_findings(con: duckdb.DuckDBPyConnection) -> list[FindingRecord]:
    """Findings with status ``open`` (not acknowledged, not resolved), by id."""
    return _records(con, "status = 'open'", {}, "id")


def list_findings(
    con: duckdb.DuckDBPyConnection,
    *,
    service: str | None = None,
    detector: str | None = None,
    severity: str | None = None,
    status: str | None = None,
    limit: int = 500,
    offset: int = 0,
) -> list[FindingRecord]:
    """Findings matching every filter given: unresolved first, then by severity, q-value, score (desc), id;
    ``limit`` of them from position ``offset``."""
    where, params = _filters(service=service, detector=detector, severity=severity, status=status)
    order = f"status = 'resolved', {_BY_SEVERITY}, q_value, score DESC, id LIMIT $limit OFFSET $offset"
    return _records(con, where, {**params, "limit": limit, "offset": offset}, order)


def _filters(**filters: str | None) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {k: v for k, v in filters.items() if v is not None}
    return " AND ".join(f"{k} = ${k}" for k in params) or "true", params


def count_findings(
    con: duckdb.DuckDBPyConnection,
    *,
    service: str | None = None,
    detector: str | None = None,
    severity: str | None = None,
    status: str | None = None,
) -> int:
    """How many findings match every filter given (as ``list_findings`` filters them)."""
    where, params = _filters(service=service, detector=detector, severity=severity, status=status)
    row = con.execute(f"SELECT count(*) FROM findings WHERE {where}", params).fetchone()
    return int(row[0]) if row else 0


def facets(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """The distinct services and detectors findings name (sorted): the choices of a findings filter."""
    services = con.execute("SELECT DISTINCT service FROM findings WHERE service IS NOT NULL ORDER BY 1").fetchall()
    detectors = con.execute("SELECT DISTINCT detector FROM findings ORDER BY 1").fetchall()
    return {"service": [str(r[0]) for r in services], "detector": [str(r[0]) for r in detectors]}


def findings_in_window(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> list[FindingRecord]:
    """Findings whose window overlaps [start_ns, end_ns), any status: by severity, score (desc), q-value, id."""
    where = f"{sql.epoch_ns('window_end')} > $start AND {sql.epoch_ns('window_start')} < $end"
    return _records(con, where, {"start": start_ns, "end": end_ns}, f"{_BY_SEVERITY}, score DESC, q_value, id")


def findings_table(con: duckdb.DuckDBPyConnection, *, only_open: bool = False) -> pa.Table:
    """The findings listing of ``driftscope findings`` as Arrow (newest first); ``only_open`` drops resolved ones."""
    where = "WHERE status != 'resolved'" if only_open else ""
    return fetch_arrow(
        con,
        "SELECT id, status, severity, detector, kind, service, operation, metric, effect_text, q_value, change_time, "
        f"first_seen, last_seen, runs FROM findings {where} ORDER BY last_seen DESC, severity",
    )


def open_counts(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str, int]]:
    """(severity, detector, service or '', count) of unresolved findings."""
    rows = con.execute(
        "SELECT severity, detector, coalesce(service, ''), count(*) FROM findings "
        "WHERE status != 'resolved' GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    return [(str(s), str(d), str(v), int(n)) for s, d, v, n in rows]


def top_scores(con: duckdb.DuckDBPyConnection, limit: int) -> list[tuple[str, str, str, str, float]]:
    """(service, operation, kind, detector, max score) of the ``limit`` strongest unresolved findings."""
    rows = con.execute(
        "SELECT coalesce(service, ''), coalesce(operation, ''), kind, detector, max(score) FROM findings "
        "WHERE status != 'resolved' GROUP BY ALL ORDER BY 5 DESC, 1, 2, 3, 4 LIMIT ?",
        [limit],
    ).fetchall()
    return [(str(s), str(o), str(k), str(d), float(x)) for s, o, k, d, x in rows]


def write_findings(
    con: duckdb.DuckDBPyConnection, findings: Sequence[Detected], now_ns: int, resolve_after_s: float
) -> dict[str, int]:
    """Insert new findings, refresh re-seen ones, resolve quiet ones, in one transaction; return counts.

    ``now_ns`` is the data time of the run (the end of its window), never the wall clock.
    """
    counts = {"new": 0, "updated": 0, "resolved": 0}
    seen: set[str] = set()
    ts = sql.from_ns
    con.execute("BEGIN")
    try:
        for f in findings:
            seen.add(f.fingerprint)
            row = con.execute(
                "SELECT id FROM findings WHERE fingerprint = ? AND status != 'resolved'", [f.fingerprint]
            ).fetchone()
            values = {
                "score": f.score, "effect": f.effect, "effect_text": f.effect_text, "before": f.before,
                "after": f.after, "p_value": f.p_value, "q_value": f.q_value, "severity": f.severity,
                "evidence": orjson.dumps(f.evidence, default=str).decode(), "window_end": f.window_end_ns,
            }  # fmt: skip
            if row:
                sets = ", ".join(f"{k} = {ts('$' + k)}" if k == "window_end" else f"{k} = ${k}" for k in values)
                con.execute(
                    f"UPDATE findings SET {sets}, last_seen = {ts('$now')}, runs = runs + 1 WHERE id = $id",
                    {**values, "now": now_ns, "id": row[0]},
                )
                counts["updated"] += 1
                continue
            if con.execute("SELECT 1 FROM findings WHERE id = ?", [f.id]).fetchone():
                continue
            s = f.signal
            con.execute(
                "INSERT INTO findings VALUES ($id, $fp, $detector, $kind, $service, $operation, $metric, $attributes, "
                f"{ts('$ws')}, {ts('$window_end')}, {ts('$change')}, $severity, $score, $effect, $effect_text, "
                f"$before, $after, $p_value, $q_value, $evidence, 'open', {ts('$now')}, {ts('$now')}, 1, NULL, NULL)",
                {
                    **values, "id": f.id, "fp": f.fingerprint, "detector": f.detector, "kind": s.kind,
                    "service": s.service, "operation": s.operation, "metric": s.metric, "attributes": s.attributes,
                    "ws": f.window_start_ns, "change": f.change_ns, "now": now_ns,
                },
            )  # fmt: skip
            counts["new"] += 1
        quiet = con.execute(
            "SELECT id, fingerprint FROM findings "
            f"WHERE status != 'resolved' AND {sql.epoch_ns('last_seen')} < $cutoff",
            {"cutoff": now_ns - int(resolve_after_s * 1e9)},
        ).fetchall()
        for fid, fp in quiet:
            if fp not in seen:
                con.execute(
                    f"UPDATE findings SET status = 'resolved', resolved_at = {ts('$now')} WHERE id = $id",
                    {"now": now_ns, "id": fid},
                )
                counts["resolved"] += 1
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return counts


def set_status(con: duckdb.DuckDBPyConnection, finding_id: str, status: Status, now_ns: int) -> bool:
    """Acknowledge, resolve or reopen a finding by id; False when there is no such finding."""
    column = {"acknowledged": "acknowledged_at", "resolved": "resolved_at", "open": None}[status]
    stamp = f", {column} = {sql.from_ns('$now')}" if column else ""
    row = con.execute(
        f"UPDATE findings SET status = $status{stamp} WHERE id = $id RETURNING id",
        {"status": status, "id": finding_id, **({"now": now_ns} if column else {})},
    ).fetchone()
    return row is not None


def findings_of_detectors(
    con: duckdb.DuckDBPyConnection, prefixes: Sequence[str], limit: int = 500
) -> list[FindingRecord]:
    """Findings whose detector name starts with one of ``prefixes``, ordered as ``list_findings`` orders them."""
    where = " OR ".join(f"starts_with(detector, $p{i})" for i in range(len(prefixes))) or "false"
    params: dict[str, Any] = {f"p{i}": p for i, p in enumerate(prefixes)}
    order = f"status = 'resolved', {_BY_SEVERITY}, q_value, score DESC, id LIMIT $limit"
    return _records(con, f"({where})", {**params, "limit": limit}, order)
