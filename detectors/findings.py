"""Findings: the currency of driftscope, their table, and the one writer that keeps it.

A Finding says which detector saw what change on which signal, how large (in the user's
units: "p99 +38 %", "error ratio 0.2 % -> 3.1 %"), how sure (p- and q-value), with the
evidence that reproduces it (numbers, example trace ids, the SQL). Findings are deduped
by fingerprint (detector + signal): while one is open or acknowledged, seeing it again
updates it; it resolves by itself once its signal has been quiet for ``resolve_after_s``
of data time. Lifecycle: open -> acknowledged -> resolved.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import duckdb
import orjson

from collector.store import migrate
from detectors.base import SignalKey

Severity = Literal["info", "warning", "critical"]
Status = Literal["open", "acknowledged", "resolved"]

_V1 = """
CREATE TABLE findings (
    id VARCHAR PRIMARY KEY,
    fingerprint VARCHAR NOT NULL,
    detector VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    service VARCHAR,
    operation VARCHAR,
    metric VARCHAR,
    attributes VARCHAR,
    window_start TIMESTAMP_NS NOT NULL,
    window_end TIMESTAMP_NS NOT NULL,
    change_time TIMESTAMP_NS,
    severity VARCHAR NOT NULL,
    score DOUBLE NOT NULL,
    effect DOUBLE,
    effect_text VARCHAR NOT NULL,
    before DOUBLE,
    after DOUBLE,
    p_value DOUBLE NOT NULL,
    q_value DOUBLE NOT NULL,
    evidence JSON,
    status VARCHAR NOT NULL,
    first_seen TIMESTAMP_NS NOT NULL,
    last_seen TIMESTAMP_NS NOT NULL,
    runs INTEGER NOT NULL,
    acknowledged_at TIMESTAMP_NS,
    resolved_at TIMESTAMP_NS
);
"""
MIGRATIONS = (_V1,)
VERSION_TABLE = "findings_schema_version"


@dataclass(frozen=True)
class Finding:
    """One detected change on one signal."""

    detector: str
    signal: SignalKey
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
    evidence: dict[str, Any] = field(default_factory=dict)
    scope: str | None = None
    """Dedupe scope instead of the detector: performance findings are merged across detectors
    per signal (scope "performance"), so the strongest detector may change between runs
    without opening a new finding."""

    @property
    def fingerprint(self) -> str:
        """Stable identity of "this detector (or scope) on this signal" for dedupe."""
        s = self.signal
        who = self.scope or self.detector
        raw = "|".join(str(p) for p in (who, s.kind, s.service, s.operation, s.metric, s.attributes))
        return hashlib.sha256(raw.encode()).hexdigest()[:20]

    @property
    def id(self) -> str:
        """Deterministic id: the fingerprint and the change (or window) start."""
        start = self.change_ns if self.change_ns is not None else self.window_start_ns
        return hashlib.sha256(f"{self.fingerprint}|{start}".encode()).hexdigest()[:24]


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    migrate(con, MIGRATIONS, VERSION_TABLE)


def _fmt(value: float | None, kind: str) -> str:
    if value is None:
        return "?"
    if kind == "error_ratio":
        return f"{value * 100:.2f} %"
    if kind.startswith("latency_"):
        return f"{value / 1e6:.1f} ms"
    if kind in ("rate", "counter_rate", "log_rate"):
        return f"{value:.3g}/s"
    return f"{value:.4g}"


def effect_text(kind: str, before: float | None, after: float | None, effect: float | None) -> str:
    """The change in user units: "p99 +38 % (120.0 ms -> 165.6 ms)", "error ratio 0.20 % -> 3.10 %"."""
    label = {"error_ratio": "error ratio", "rate": "rate", "gauge": "value"}.get(kind, kind.replace("latency_", ""))
    arrow = f"{_fmt(before, kind)} -> {_fmt(after, kind)}"
    if kind == "error_ratio" or effect is None:
        return f"{label} {arrow}"
    return f"{label} {effect * 100:+.0f} % ({arrow})"


def write_findings(
    con: duckdb.DuckDBPyConnection, findings: list[Finding], now_ns: int, resolve_after_s: float
) -> dict[str, int]:
    """Insert new findings, refresh re-seen ones, resolve quiet ones; return counts.

    ``now_ns`` is the data time of the run (the end of its window), never the wall clock.
    """
    ensure_schema(con)
    counts = {"new": 0, "updated": 0, "resolved": 0}
    seen: set[str] = set()
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
                sets = ", ".join(
                    f"{k} = make_timestamp_ns(${k})" if k == "window_end" else f"{k} = ${k}" for k in values
                )
                con.execute(
                    f"UPDATE findings SET {sets}, last_seen = make_timestamp_ns($now), runs = runs + 1 WHERE id = $id",
                    {**values, "now": now_ns, "id": row[0]},
                )
                counts["updated"] += 1
                continue
            exists = con.execute("SELECT 1 FROM findings WHERE id = ?", [f.id]).fetchone()
            if exists:
                continue
            s = f.signal
            con.execute(
                "INSERT INTO findings VALUES ($id, $fp, $detector, $kind, $service, $operation, $metric, $attributes, "
                "make_timestamp_ns($ws), make_timestamp_ns($window_end), make_timestamp_ns($change), "
                "$severity, $score, $effect, $effect_text, $before, $after, $p_value, $q_value, $evidence, 'open', "
                "make_timestamp_ns($now), make_timestamp_ns($now), 1, NULL, NULL)",
                {
                    **values, "id": f.id, "fp": f.fingerprint, "detector": f.detector, "kind": s.kind,
                    "service": s.service, "operation": s.operation, "metric": s.metric, "attributes": s.attributes,
                    "ws": f.window_start_ns, "change": f.change_ns, "now": now_ns,
                },
            )  # fmt: skip
            counts["new"] += 1
        quiet = con.execute(
            "SELECT id, fingerprint FROM findings WHERE status != 'resolved' AND epoch_ns(last_seen) < $cutoff",
            {"cutoff": now_ns - int(resolve_after_s * 1e9)},
        ).fetchall()
        for fid, fp in quiet:
            if fp not in seen:
                con.execute(
                    "UPDATE findings SET status = 'resolved', resolved_at = make_timestamp_ns($now) WHERE id = $id",
                    {"now": now_ns, "id": fid},
                )
                counts["resolved"] += 1
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return counts


def set_status(con: duckdb.DuckDBPyConnection, finding_id: str, status: Status, now_ns: int) -> bool:
    """Acknowledge or resolve a finding by id; False when there is no such finding."""
    ensure_schema(con)
    column = {"acknowledged": "acknowledged_at", "resolved": "resolved_at", "open": None}[status]
    stamp = f", {column} = make_timestamp_ns($now)" if column else ""
    row = con.execute(
        f"UPDATE findings SET status = $status{stamp} WHERE id = $id RETURNING id",
        {"status": status, "id": finding_id, "now": now_ns},
    ).fetchone()
    return row is not None


def finding_dict(f: Finding) -> dict[str, Any]:
    """A JSON-ready view of a finding (for reports and the CLI)."""
    out = asdict(f)
    out["signal"] = asdict(f.signal)
    out["fingerprint"] = f.fingerprint
    out["id"] = f.id
    return out
