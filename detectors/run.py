"""One detection run: signals -> aligned batches with baselines -> every detector ->
noise control (effect, persistence, traffic floors, Benjamini-Hochberg) -> Findings.

``detect(con, window)`` reads rollups through ``analysis`` only; it does not write (the
caller persists with ``detectors.findings.write_findings``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta

import duckdb
import numpy as np
import polars as pl

from analysis import Window, distributions, signals
from analysis.baselines import auto_baseline
from analysis.histogram import LogHistogram
from analysis.traffic import at_constant_traffic, elasticity, traffic_factor
from detectors.base import Detection, Detector, SeriesBatch, SignalKey, applies
from detectors.findings import Finding, Severity, effect_text
from detectors.noise import NoiseControl, benjamini_hochberg, candidates
from detectors.registry import DETECTORS, RetryFeedback
from detectors.sparse import SparseShift

SPAN_KINDS = ("rate", "error_ratio", "latency_p50", "latency_p99")
METRIC_KINDS = ("gauge", "histogram_p50")
WATCHED_EMPTY = 1e-9
"""``samples`` of a rate point that is an explicit zero (a minute watched and found empty, see
``analysis.rollup``): observed, so detectors see the zero, yet adding nothing to traffic floors."""


@dataclass(frozen=True)
class DetectionConfig:
    history_s: int = 7 * 86_400
    """History before the window that baselines learn from, seconds."""
    resolution_s: int = 60
    kinds: tuple[str, ...] = SPAN_KINDS + METRIC_KINDS
    detectors: tuple[str, ...] = ()
    """Detector names to run (empty = all)."""
    noise: NoiseControl = field(default_factory=NoiseControl)


def _grid(window: Window) -> np.ndarray:
    start = np.datetime64(window.start, "ns").astype(np.int64)
    end = np.datetime64(window.end, "ns").astype(np.int64)
    step = window.resolution_s * 1_000_000_000
    return np.arange(start, end, step, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class _Raw:
    """One signal kind read from the rollups: every entity's series on one grid (history + window)."""

    keys: list[SignalKey]
    grid: np.ndarray
    values: np.ndarray
    samples: np.ndarray
    window_start: int
    full: Window


def _read(con: duckdb.DuckDBPyConnection, kind: str, window: Window, history_s: int) -> _Raw | None:
    full = Window(window.start - timedelta(seconds=history_s), window.end, window.resolution_s)
    frame = signals(con, kind, full)  # type: ignore[arg-type]
    if frame.height == 0:
        return None
    grid = _grid(full)
    frame = frame.with_columns(
        t=((pl.col("time").dt.epoch("ns") - int(grid[0])) // (window.resolution_s * 1_000_000_000)).cast(pl.Int64)
    ).filter(pl.col("t").is_between(0, len(grid) - 1))
    entity_cols = ["service", "operation", "metric", "attributes"]
    entities = frame.select(entity_cols).unique(maintain_order=False).sort(entity_cols, nulls_last=True)
    entities = entities.with_row_index("e")
    frame = frame.join(entities, on=entity_cols, how="left", nulls_equal=True)
    n, t = entities.height, len(grid)
    values = np.full((n, t), np.nan)
    samples = np.zeros((n, t))
    e_idx = frame["e"].to_numpy().astype(np.int64)
    t_idx = frame["t"].to_numpy()
    values[e_idx, t_idx] = frame["value"].to_numpy()
    samples[e_idx, t_idx] = frame["samples"].fill_null(0).to_numpy()
    keys = [
        SignalKey(kind, r["service"], r["operation"], r["metric"], r["attributes"])
        for r in entities.iter_rows(named=True)
    ]
    window_start = int(np.searchsorted(grid, np.datetime64(window.start, "ns").astype(np.int64)))
    return _Raw(keys, grid, values, samples, window_start, full)


def demand(con: duckdb.DuckDBPyConnection, window: Window, history_s: int) -> np.ndarray | None:
    """Per point of history + window, the traffic factor of the request rates (``analysis.traffic``)."""
    raw = _read(con, "rate", window, history_s)
    return None if raw is None else traffic_factor(raw.values, raw.window_start)


def build_batch(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    window: Window,
    history_s: int,
    traffic: np.ndarray | None = None,
) -> SeriesBatch | None:
    """Every entity's series of ``kind`` over history + window, aligned on one grid.

    Request rates are taken at constant traffic (``analysis.traffic``): divided by the factor
    by which the whole system is busier than in its history (``traffic``, else computed from
    the rates themselves), so that demand (a daily ramp a short history never showed, a
    holiday, a surge) moves no rate while a fault (one operation moving on its own) still
    does. Gauges are divided by ``traffic`` raised to their own elasticity learned from the
    history (in-flight requests follow demand; a memory gauge does not). A minute watched
    and found empty is an explicit zero rate (``analysis.rollup``), observed with
    ``WATCHED_EMPTY`` samples.
    """
    raw = _read(con, kind, window, history_s)
    if raw is None:
        return None
    keys, values, samples, window_start, full = raw.keys, raw.values, raw.samples, raw.window_start, raw.full
    if kind == "rate":
        samples = np.where(np.isfinite(values) & (samples <= 0), WATCHED_EMPTY, samples)
        factor = traffic if traffic is not None else traffic_factor(values, window_start)
        if factor is not None and len(factor) == values.shape[1]:
            values = at_constant_traffic(values, factor)
    elif kind == "gauge" and traffic is not None and len(traffic) == values.shape[1]:
        values = at_constant_traffic(values, traffic, elasticity(values, traffic, window_start))
    errors = values * samples if kind == "error_ratio" else None
    current = reference = None
    if kind.startswith("latency_"):
        current, reference = _histograms(con, keys, full, window)
    return SeriesBatch(
        keys=keys,
        times_ns=raw.grid,
        values=values,
        samples=samples,
        resolution_s=window.resolution_s,
        baseline=auto_baseline(values, resolution_s=window.resolution_s),
        errors=np.nan_to_num(errors) if errors is not None else None,
        current=current,
        reference=reference,
        window_start=window_start,
    )


def _histograms(
    con: duckdb.DuckDBPyConnection, keys: list[SignalKey], full: Window, window: Window
) -> tuple[list[LogHistogram], list[LogHistogram]]:
    """Per series, the merged latency histogram of the window and of the history."""
    hour = Window(full.start, full.end, 3600)
    current: dict[tuple[str | None, str | None], list[LogHistogram]] = {}
    reference: dict[tuple[str | None, str | None], list[LogHistogram]] = {}
    for d in distributions(con, hour):
        side = current if d.time >= window.start else reference
        side.setdefault((d.service, d.operation), []).append(d.histogram)
    empty = LogHistogram.empty()
    cur = [LogHistogram.merge_all(current.get((k.service, k.operation), [empty])) for k in keys]
    ref = [LogHistogram.merge_all(reference.get((k.service, k.operation), [empty])) for k in keys]
    return cur, ref


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
    batches: dict[str, SeriesBatch] = {}
    traffic = demand(con, window, config.history_s)
    for kind in config.kinds:
        batch = build_batch(con, kind, window, config.history_s, traffic)
        if batch is None:
            continue
        batches[kind] = batch
        for det in chosen:
            if applies(det, kind):
                try:
                    result = det.detect(batch)
                except Exception as exc:  # one detector's bug must not hide the others' findings
                    if errors is not None:
                        errors.append(f"{det.name} on {kind}: {type(exc).__name__}: {exc}")
                    continue
                passing = candidates(batch, result, config.noise)
                tests.append(_Test(det.name, batch, result, passing, not getattr(det, "window_level", False)))
        if kind in METRIC_KINDS and (not config.detectors or SparseShift.name in config.detectors):
            tests += _sparse_tests(batch, config.noise)
    feedback = next((d for d in chosen if isinstance(d, RetryFeedback)), None)
    if feedback is not None and "error_ratio" in batches and "rate" in batches:
        err, rate = _paired(batches["error_ratio"], batches["rate"])
        if err is not None and rate is not None:
            result = feedback.detect_pair(err, rate)
            tests.append(_Test(feedback.name, err, result, candidates(err, result, config.noise)))
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
    """Series too sparse for the per-point detectors (a job every 10 minutes), judged on their observations."""
    ws = batch.window_start
    hours = max((batch.shape[1] - ws) * batch.resolution_s / 3600.0, 1e-9)
    points = (np.isfinite(batch.values[:, ws:]) & (batch.samples[:, ws:] > 0)).sum(axis=1) / hours
    sparse = np.flatnonzero((points > 0) & (points < noise.min_points_per_hour))
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


def _paired(err: SeriesBatch, rate: SeriesBatch) -> tuple[SeriesBatch | None, SeriesBatch | None]:
    """The error-ratio and rate batches restricted to entities present in both, same order."""
    index = {(k.service, k.operation): i for i, k in enumerate(rate.keys)}
    pairs = [(i, index[(k.service, k.operation)]) for i, k in enumerate(err.keys) if (k.service, k.operation) in index]
    if not pairs:
        return None, None
    ei = np.array([p[0] for p in pairs])
    ri = np.array([p[1] for p in pairs])

    def take(b: SeriesBatch, idx: np.ndarray) -> SeriesBatch:
        base = b.baseline
        sub_base = None
        if base is not None:
            sub_base = type(base)(
                base.center[idx], base.spread[idx], base.lower[idx], base.upper[idx], base.support[idx], base.method
            )
        return SeriesBatch(
            keys=[b.keys[i] for i in idx], times_ns=b.times_ns, values=b.values[idx], samples=b.samples[idx],
            resolution_s=b.resolution_s, baseline=sub_base,
            errors=b.errors[idx] if b.errors is not None else None, window_start=b.window_start,
        )  # fmt: skip

    return take(err, ei), take(rate, ri)


def _reproduce_sql(key: SignalKey, batch: SeriesBatch) -> str:
    """SQL over the raw tables that shows the signal around the change, minute by minute."""
    start = int(batch.times_ns[0])
    if key.kind in ("rate", "error_ratio") or key.kind.startswith("latency_"):
        return (
            "SELECT date_trunc('minute', start_time) AS minute, count(*) AS requests, "
            "avg((status_code = 'ERROR')::INT) AS error_ratio, quantile_cont(duration_ns, 0.5) / 1e6 AS p50_ms, "
            "quantile_cont(duration_ns, 0.99) / 1e6 AS p99_ms FROM spans "
            f"WHERE service_name = '{key.service}' AND span_name = '{key.operation}' AND span_kind = 'SERVER' "
            f"AND epoch_ns(start_time) >= {start} GROUP BY 1 ORDER BY 1"
        )
    return (
        f"SELECT date_trunc('minute', time) AS minute, avg(value) FROM metric_points "
        f"WHERE metric_name = '{key.metric}' AND service_name = '{key.service}' AND epoch_ns(time) >= {start} "
        "GROUP BY 1 ORDER BY 1"
    )
