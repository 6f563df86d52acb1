"""One detection run: signals -> aligned batches with baselines -> every detector ->
noise control (effect, persistence, traffic floors, Benjamini-Hochberg) -> Findings.

``detect(con, window)`` reads rollups through ``analysis`` only; it does not write (the
caller persists with ``detectors.findings.write_findings``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import duckdb
import numpy as np

from analysis import Window
from detectors.base import Detection, Detector, SeriesBatch, SignalKey, applies
from detectors.batches import SPAN_KINDS, build_batch, demand, paired
from detectors.findings import Finding, effect_text
from detectors.noise import NoiseControl, benjamini_hochberg, candidates
from detectors.registry import DETECTORS
from detectors.sparse import SparseShift
from store.findings import Severity

METRIC_KINDS = ("gauge", "histogram_p50")


@dataclass(frozen=True)
class DetectionConfig:
    history_s: int = 7 * 86_400
    """History before the window that baselines learn from, seconds."""
    resolution_s: int = 60
    kinds: tuple[str, ...] = SPAN_KINDS + METRIC_KINDS
    detectors: tuple[str, ...] = ()
    """Detector names to run (empty = all)."""
    noise: NoiseControl = field(default_factory=NoiseControl)


def _severity(kind: str, det: Detection, i: int, q: float) -> Severity:
    if kind == "error_ratio":
        size = abs(float(np.nan_to_num(det.after[i] - det.before[i])))
        big, medium = size >= 0.05, size >= 0.02
    else:
        size = abs(float(np.nan_to_num(det.effect[i])))
        big, medium = size >= 1.0, size >= 0.5
    if big and q < 1e-6:
        return "critical"
    return "warning" if medium or big else "info"


def _optional(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


@dataclass
class _Test:
    detector: str
    batch: SeriesBatch
    detection: Detection
    passing: np.ndarray
    change_points: bool = True
    """False for window-level detectors (their change_index is the window start)."""


def detect(
    con: duckdb.DuckDBPyConnection,
    window: Window,
    config: DetectionConfig | None = None,
    errors: list[str] | None = None,
) -> list[Finding]:
    """Findings for ``window`` (data time), every detector over every signal kind.

    A detector that fails on a batch costs only its own results: the failure is appended
    to ``errors`` (when given) and the run goes on with the others.
    """
    config = config or DetectionConfig()
    chosen: list[Detector] = [d for d in DETECTORS if not config.detectors or d.name in config.detectors]
    tests: list[_Test] = []
    traffic = demand(con, window, config.history_s)
    batches = {k: b for k in config.kinds if (b := build_batch(con, k, window, config.history_s, traffic)) is not None}
    for kind, batch in batches.items():
        for det in chosen:
            if not applies(det, kind):
                continue
            given = batch if det.pairs_with is None else paired(batch, batches.get(det.pairs_with))
            if given is None:
                continue
            try:
                result = det.detect(given)
            except Exception as exc:  # one detector's bug must not hide the others' findings
                if errors is not None:
                    errors.append(f"{det.name} on {kind}: {type(exc).__name__}: {exc}")
                continue
            passing = candidates(given, result, config.noise)
            tests.append(_Test(det.name, given, result, passing, not det.window_level))
        if kind in METRIC_KINDS and (not config.detectors or SparseShift.name in config.detectors):
            tests += _sparse_tests(batch, config.noise)
    if not tests:
        return []
    q_all = benjamini_hochberg(np.concatenate([t.detection.p_value for t in tests]))
    findings: list[Finding] = []
    offset = 0
    for test in tests:
        found, batch = test.detection, test.batch
        q = q_all[offset : offset + len(found.p_value)]
        offset += len(found.p_value)
        for i in np.flatnonzero(test.passing & (q <= config.noise.fdr)):
            key = batch.keys[i]
            change = int(found.change_index[i])
            before, after, effect = _optional(found.before[i]), _optional(found.after[i]), _optional(found.effect[i])
            findings.append(
                Finding(
                    detector=test.detector,
                    signal=key,
                    window_start_ns=int(batch.times_ns[batch.window_start]),
                    window_end_ns=int(batch.times_ns[-1]) + batch.resolution_s * 1_000_000_000,
                    change_ns=int(batch.times_ns[change]) if change >= 0 and test.change_points else None,
                    severity=_severity(key.kind, found, int(i), float(q[i])),
                    score=float(np.nanmax(found.score[i, batch.window_start :], initial=0.0)),
                    effect=effect,
                    effect_text=effect_text(key.kind, before, after, effect)
                    + (" at constant traffic" if key.kind == "rate" and traffic is not None else ""),
                    before=before,
                    after=after,
                    p_value=float(found.p_value[i]),
                    q_value=float(q[i]),
                    evidence={
                        "details": {k: _optional(float(v[i])) for k, v in found.details.items()},
                        "signal": key.label(),
                        "sql": _reproduce_sql(key, batch),
                    },
                    scope="performance",
                )
            )
    return consolidate(findings)


def _sparse_tests(batch: SeriesBatch, noise: NoiseControl) -> list[_Test]:
    """Series too sparse for the per-point detectors (a job every 5 or 10 minutes), judged on their observations.

    Sparse: below the floor of observations per hour, or observed at fewer than half the grid's points (a job
    every 5 minutes meets the floor, but the per-point detectors, built for a point per step, see a level in a
    few scattered points and stay quiet; the observations still say what changed)."""
    ws = batch.window_start
    hours = max((batch.shape[1] - ws) * batch.resolution_s / 3600.0, 1e-9)
    # reported points, not finite values: a gauge blanked where demand left the history's range
    # (analysis.traffic.gauges_at_seen_demand) is reported every minute and has nothing to say there
    points = (batch.samples[:, ws:] > 0).sum(axis=1) / hours
    grid_per_hour = 3600.0 / batch.resolution_s
    sparse = np.flatnonzero((points > 0) & ((points < noise.min_points_per_hour) | (points < grid_per_hour / 2)))
    if sparse.size == 0:
        return []
    judge = SparseShift(min_effect=noise.min_relative_effect)
    result = judge.detect(batch, sparse)
    passing = np.zeros(batch.shape[0], dtype=bool)
    passing[sparse] = result.change_index[sparse] >= ws
    return [_Test(judge.name, batch, result, passing)]


def consolidate(findings: list[Finding]) -> list[Finding]:
    """One finding per signal: the strongest detector's (lowest q, then highest score, then name),
    with every agreeing detector and its q-value in ``evidence["detectors"]``.

    Several methods seeing the same change is corroboration, not several problems; reporting
    each would multiply every real change by the size of the catalogue.
    """
    by_signal: dict[SignalKey, list[Finding]] = {}
    for f in findings:
        by_signal.setdefault(f.signal, []).append(f)
    out: list[Finding] = []
    for group in by_signal.values():
        best = min(group, key=lambda f: (f.q_value, -f.score, f.detector))
        agreeing = {f.detector: f.q_value for f in sorted(group, key=lambda f: f.detector)}
        timed = [f for f in group if f.change_ns is not None]
        change = min(timed, key=lambda f: (f.q_value, -f.score, f.detector)).change_ns if timed else None
        out.append(replace(best, change_ns=change, evidence={**best.evidence, "detectors": agreeing}))
    return out


def _reproduce_sql(key: SignalKey, batch: SeriesBatch) -> str:
    """SQL over the raw tables that shows the signal around the change, minute by minute."""
    start = int(batch.times_ns[0])
    service = (key.service or "").replace("'", "''")  # names are telemetry: quote them as SQL literals
    operation = (key.operation or "").replace("'", "''")
    metric = (key.metric or "").replace("'", "''")
    if key.kind in ("rate", "error_ratio") or key.kind.startswith("latency_"):
        return (
            "SELECT date_trunc('minute', start_time) AS minute, count(*) AS requests, "
            "avg((status_code = 'ERROR')::INT) AS error_ratio, quantile_cont(duration_ns, 0.5) / 1e6 AS p50_ms, "
            "quantile_cont(duration_ns, 0.99) / 1e6 AS p99_ms FROM spans "
            f"WHERE service_name = '{service}' AND span_name = '{operation}' AND span_kind = (SELECT CASE WHEN "
            f"bool_or(span_kind = 'SERVER') THEN 'SERVER' ELSE 'CLIENT' END FROM spans WHERE service_name = "
            f"'{service}' AND span_name = '{operation}') "
            f"AND epoch_ns(start_time) >= {start} GROUP BY 1 ORDER BY 1"
        )
    return (
        f"SELECT date_trunc('minute', time) AS minute, avg(value) FROM metric_points "
        f"WHERE metric_name = '{metric}' AND service_name = '{service}' AND epoch_ns(time) >= {start} "
        "GROUP BY 1 ORDER BY 1"
    )
