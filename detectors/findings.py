"""Findings: the currency of driftscope, as detection runs produce them.

A Finding says which detector saw what change on which signal, how large (in the user's
units: "p99 +38 %", "error ratio 0.2 % -> 3.1 %"), how sure (p- and q-value), with the
evidence that reproduces it (numbers, example trace ids, the SQL). Findings are deduped
by fingerprint (detector + signal): while one is open or acknowledged, seeing it again
updates it; it resolves by itself once its signal has been quiet for ``resolve_after_s``
of data time. Lifecycle: open -> acknowledged -> resolved. The table, its one writer and
every read live in ``store.findings``.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from detectors.base import SignalKey
from store.findings import Measured


@dataclass(frozen=True, kw_only=True)
class Finding(Measured):
    """One detected change on one signal (what it measured: :class:`store.findings.Measured`)."""

    detector: str
    signal: SignalKey
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


def finding_dict(f: Finding) -> dict[str, Any]:
    """A JSON-ready view of a finding (for reports and the CLI)."""
    measured = asdict(f)
    out = {"detector": measured.pop("detector"), "signal": asdict(f.signal), **measured}
    out["fingerprint"] = f.fingerprint
    out["id"] = f.id
    return out
