"""Scoring rules for labelled real-world series: NAB-style anomaly windows, change-point F1
and covering, false alert onsets. Pure functions of arrays; ``benchmarks/realdata.py`` runs
them over the corpus.

- NAB (Lavin & Ahmad 2015, "Evaluating real-time anomaly detection algorithms: the Numenta
  Anomaly Benchmark"; the rules of ``nab/sweeper.py``): each labelled anomaly becomes a
  window centred on it, 10 % of the series divided by the number of anomalies wide (never
  narrower than the label itself); the first ``min(15 %, 750)`` points are probationary and
  not scored. The first detection in a window earns a scaled sigmoid of its position
  (about 0.99 at the window's left edge, 0 at its right edge); a detection outside every
  window costs the profile's FP weight times a sigmoid of its distance past the previous
  window (the full weight when far away or before any window); a window without a
  detection costs the FN weight. One threshold over the ``score`` column is swept for the
  whole corpus, as NAB's optimiser does, and the best total is normalised so that no
  alerts score 0 and a perfect detector 100.
- Change points (van den Burg & Williams 2020, "An evaluation of change point detection
  algorithms", the TCPD metrics): F1 with a margin of 5 points (each annotated point
  matched to at most one prediction; point 0 counts as a change point on both sides) and
  the covering metric of the segmentation the predictions induce.
- ``ignore_windows``: points in them are neither hits nor false alarms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

PROFILES: dict[str, tuple[float, float, float]] = {
    "standard": (1.0, 0.11, 1.0),
    "reward_low_FP_rate": (1.0, 0.22, 1.0),
    "reward_low_FN_rate": (1.0, 0.11, 2.0),
}
"""NAB application profiles: (TP weight, FP weight, FN weight)."""

WINDOW_SHARE = 0.10
PROBATION_SHARE = 0.15
PROBATION_MAX = 750
CP_MARGIN = 5


def _sigmoid(x: FloatArray) -> FloatArray:
    return np.asarray(expit(x), dtype=np.float64)


def scaled_sigmoid(position: FloatArray) -> FloatArray:
    """NAB's reward by relative position: 2 sigmoid(-5 x) - 1, and -1 from x >= 3 on."""
    return np.where(position >= 3.0, -1.0, 2.0 * _sigmoid(-5.0 * position) - 1.0)


MAX_TP = float(scaled_sigmoid(np.array([-1.0]))[0])


def index_ranges(times: IntArray, ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Inclusive ``[start_ts, end_ts]`` ranges as inclusive index ranges of sorted ``times`` (empty ones dropped)."""
    out = []
    for start, end in ranges:
        lo = int(np.searchsorted(times, start, side="left"))
        hi = int(np.searchsorted(times, end, side="right")) - 1
        if lo <= hi:
            out.append((lo, hi))
    return out


def nab_windows(n: int, labels: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Scoring windows (inclusive index ranges) centred on each label, merged where they overlap."""
    if not labels:
        return []
    width = int(WINDOW_SHARE * n / len(labels))
    windows: list[tuple[int, int]] = []
    for lo, hi in sorted(labels):
        pad = max(0, width - (hi - lo)) // 2
        start, end = max(0, lo - pad), min(n - 1, hi + pad)
        if windows and start <= windows[-1][1]:
            windows[-1] = (windows[-1][0], max(end, windows[-1][1]))
        else:
            windows.append((start, end))
    return windows


@dataclass(frozen=True)
class NabSeries:
    """One series prepared for the sweep: per scorable point its score and NAB weight."""

    score: FloatArray
    window: IntArray
    """Window number of each scorable point, -1 outside every window."""
    sweep: FloatArray
    """The point's contribution if it were a detection (TP reward inside, FP cost outside)."""
    n_windows: int
    """Windows with at least one scorable point (the ones a miss is charged for)."""


def nab_prepare(
    score: FloatArray,
    windows: list[tuple[int, int]],
    ignore: list[tuple[int, int]],
    profile: tuple[float, float, float],
) -> NabSeries:
    """Weights of every point of one series under ``profile``, probation and ignored points removed."""
    tp_w, fp_w, _ = profile
    n = len(score)
    idx = np.arange(n)
    window = np.full(n, -1, dtype=np.int64)
    sweep = np.zeros(n)
    prev_right = np.full(n, -1, dtype=np.int64)
    prev_width = np.ones(n)
    for w, (lo, hi) in enumerate(windows):
        width = hi - lo + 1
        window[lo : hi + 1] = w
        sweep[lo : hi + 1] = scaled_sigmoid(-(hi - idx[lo : hi + 1] + 1) / width) * tp_w / MAX_TP
        prev_right[hi + 1 :] = hi
        prev_width[hi + 1 :] = width
    outside = window < 0
    with np.errstate(divide="ignore", invalid="ignore"):
        past = np.where(prev_right >= 0, np.abs(prev_right - idx) / np.maximum(prev_width - 1, 1.0), 3.0)
    sweep[outside] = scaled_sigmoid(past[outside]) * fp_w
    ignored = np.zeros(n, dtype=bool)
    for lo, hi in ignore:
        ignored[lo : hi + 1] = True
    probation = min(math.floor(PROBATION_SHARE * n), PROBATION_MAX)
    keep = (idx >= probation) & ~(ignored & outside)
    scored_windows = np.unique(window[keep & ~outside])
    remap = np.full(max(len(windows), 1), -1, dtype=np.int64)
    remap[scored_windows] = np.arange(len(scored_windows))
    kept_window = np.where(window[keep] >= 0, remap[np.maximum(window[keep], 0)], -1)
    return NabSeries(score[keep].astype(np.float64), kept_window, sweep[keep], len(scored_windows))


@dataclass(frozen=True)
class NabResult:
    score: float
    """Normalised: 0 = no detections, 100 = every window at its left edge and no false positive."""
    threshold: float
    detected: int
    windows: int
    false_positives: int


def nab_corpus(series: list[NabSeries], profile: tuple[float, float, float]) -> NabResult:
    """The best normalised NAB score over one threshold for the whole corpus (detection = score >= threshold)."""
    tp_w, _, fn_w = profile
    n_windows = sum(s.n_windows for s in series)
    scores: list[FloatArray] = []
    deltas: list[FloatArray] = []
    hits: list[FloatArray] = []
    fps: list[FloatArray] = []
    for s in series:
        fp = s.window < 0
        scores.append(s.score[fp])
        deltas.append(s.sweep[fp])
        hits.append(np.zeros(int(fp.sum())))
        fps.append(np.ones(int(fp.sum())))
        for w in range(s.n_windows):
            inside = np.flatnonzero(s.window == w)
            order = inside[np.argsort(-s.score[inside], kind="stable")]
            best = np.maximum.accumulate(s.sweep[order])
            step = np.diff(np.concatenate([[-fn_w], best]))
            scores.append(s.score[order])
            deltas.append(step)
            first = np.zeros(len(order))
            first[0] = 1.0
            hits.append(first)
            fps.append(np.zeros(len(order)))
    null = -fn_w * n_windows
    perfect = tp_w * n_windows
    if not scores or perfect == null:
        return NabResult(0.0, math.inf, 0, n_windows, 0)
    all_scores = np.concatenate(scores)
    order = np.argsort(-all_scores, kind="stable")
    ranked = all_scores[order]
    total = null + np.cumsum(np.concatenate(deltas)[order])
    n_hits = np.cumsum(np.concatenate(hits)[order])
    n_fps = np.cumsum(np.concatenate(fps)[order])
    # A threshold admits every point scoring at least it: evaluate after the last of each tie.
    last_of_tie = np.append(ranked[1:] != ranked[:-1], True)
    candidates = np.flatnonzero(last_of_tie)
    if len(candidates) == 0 or total[candidates].max() <= null:
        return NabResult(0.0, math.inf, 0, n_windows, 0)
    best = candidates[int(np.argmax(total[candidates]))]
    normalised = 100.0 * (float(total[best]) - null) / (perfect - null)
    return NabResult(normalised, float(ranked[best]), int(n_hits[best]), n_windows, int(n_fps[best]))


def onsets(alert: BoolArray) -> IntArray:
    """Indices where ``alert`` goes from 0 to 1 (index 0 when the series starts alerting)."""
    a = np.asarray(alert, dtype=bool)
    if len(a) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(a & ~np.concatenate([[False], a[:-1]])).astype(np.int64)


def _true_positives(truth: set[int], predicted: set[int], margin: int) -> int:
    """Annotated points matched one to one to a prediction within ``margin`` (closest first)."""
    free = set(predicted)
    found = 0
    for tau in sorted(truth):
        close = sorted((abs(tau - x), x) for x in free if abs(tau - x) <= margin)
        if close:
            free.remove(close[0][1])
            found += 1
    return found


def cp_f1(truth: list[int], predicted: list[int], margin: int = CP_MARGIN) -> float:
    """F1 of predicted change points against one annotation (0 counts as a change point on both sides)."""
    t = {*truth, 0}
    x = {*predicted, 0}
    precision = _true_positives(t, x, margin) / len(x)
    recall = _true_positives(t, x, margin) / len(t)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _segments(change_points: list[int], n: int) -> IntArray:
    """Segment label of each of ``n`` points for a set of change points."""
    label = np.zeros(n, dtype=np.int64)
    for cp in sorted({c for c in change_points if 0 < c < n}):
        label[cp:] += 1
    return label


def covering(truth: list[int], predicted: list[int], n: int) -> float:
    """Covering of the true segmentation by the predicted one (Arbelaez et al. 2011; TCPD)."""
    if n == 0:
        return 1.0
    true_seg, pred_seg = _segments(truth, n), _segments(predicted, n)
    pred_bounds = np.flatnonzero(np.diff(pred_seg)) + 1
    pred_ranges = list(zip(np.r_[0, pred_bounds], np.r_[pred_bounds, n], strict=True))
    true_bounds = np.flatnonzero(np.diff(true_seg)) + 1
    total = 0.0
    for lo, hi in zip(np.r_[0, true_bounds], np.r_[true_bounds, n], strict=True):
        best = 0.0
        for plo, phi in pred_ranges:
            inter = max(0, min(hi, phi) - max(lo, plo))
            if inter:
                best = max(best, inter / (max(hi, phi) - min(lo, plo)))
        total += (hi - lo) * best
    return total / n


def false_onsets(alert: BoolArray, exclude: list[tuple[int, int]]) -> tuple[int, int]:
    """(alert onsets outside ``exclude``, points outside ``exclude``): the label-free stretches."""
    free = np.ones(len(alert), dtype=bool)
    for lo, hi in exclude:
        free[lo : hi + 1] = False
    starts = onsets(alert)
    return int(free[starts].sum()), int(free.sum())
