"""Sparse series judged on windows: a batch job every 10 minutes is a handful of observations an hour.

Per-point detectors need points close together: their persistence rules and their noise
floor (``NoiseControl.min_points_per_hour``) leave a series with one observation per job
run alone. ``SparseShift`` judges such a series on its observations instead of its grid:
the observations of the window from some run on against every observation of the
history, a two-sided Mann-Whitney U test (exact for small samples; Mann & Whitney 1947),
from the run where the change most likely started: the least-squares change point of the
log values (the split that explains the most variance, Hinkley 1970; a rank statistic such
as Pettitt's pulls it to an earlier run merely above the median, and calls the change
before it happened), Bonferroni-corrected over the starts from which at least ``min_run``
observations remain. The effect is the Hodges-Lehmann shift of the log values (the median
of all pairwise differences, Hodges & Lehmann 1963) as a relative change. A change needs
p < ``alpha`` after the correction and a shift of at least ``min_effect``; with few history
observations no p-value can get that low, so a job seen six times says nothing (it must say
less, not more).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.stats import mannwhitneyu

from detectors.base import Detection, Detector, FloatArray, SeriesBatch


@dataclass(frozen=True)
class SparseShift(Detector):
    """Return window-level shifts of sparse series (see the module docstring)."""

    name: ClassVar[str] = "sparse_shift"
    kinds: ClassVar[tuple[str, ...]] = ("gauge", "histogram_")
    window_level: ClassVar[bool] = False

    alpha: float = 1e-4
    """Largest Bonferroni-corrected p-value of an alarm."""
    min_effect: float = 0.2
    """Smallest relative Hodges-Lehmann shift (0.2 = 20 %)."""
    min_run: int = 3
    """Observations after the change needed before anything is said."""
    min_history: int = 8
    """History observations needed to judge at all."""

    def detect(self, batch: SeriesBatch, rows: np.ndarray | None = None) -> Detection:
        """Return the detection of ``batch``; only ``rows`` (all when None) are judged, the others stay quiet."""
        n, t = batch.shape
        out = Detection.quiet((n, t))
        values = np.where(np.isfinite(batch.values) & (batch.samples > 0), batch.values, np.nan)
        ws = batch.window_start
        for i in np.arange(n) if rows is None else rows:  # a loop over sparse series: a few per store
            self._judge(values[i], ws, int(i), out)
        return out

    def _judge(self, x: FloatArray, ws: int, i: int, out: Detection) -> None:
        hist = x[:ws][np.isfinite(x[:ws]) & (x[:ws] > 0)]
        idx = np.flatnonzero(np.isfinite(x) & (x > 0) & (np.arange(len(x)) >= ws))
        if hist.size < self.min_history or idx.size < self.min_run:
            return
        log_h = np.log(hist)
        starts = idx[: idx.size - self.min_run + 1]
        best_c = int(starts[np.argmax(_split_strength(log_h, np.log(x[idx]), len(starts)))])
        after = np.log(x[idx[idx >= best_c]])
        up = np.median(after) >= np.median(log_h)
        edge = np.quantile(log_h, 0.9 if up else 0.1)
        # a run that looks like the history is not the change yet: start at the first one beyond its band
        with np.errstate(invalid="ignore", divide="ignore"):
            logx = np.log(np.where(x > 0, x, np.nan))
        outside = logx > edge if up else logx < edge
        beyond = idx[(idx >= best_c) & outside[idx]]
        if beyond.size and idx[idx >= beyond[0]].size >= self.min_run:
            best_c = int(beyond[0])
        after = np.log(x[idx[idx >= best_c]])
        before = np.concatenate([log_h, np.log(x[idx[idx < best_c]])])
        best_p = float(mannwhitneyu(after, before, alternative="two-sided", method="auto").pvalue)
        best_shift = float(np.median(np.subtract.outer(after, log_h)))
        p_corrected = min(1.0, best_p * len(starts))
        effect = float(np.expm1(best_shift))
        out.p_value[i] = p_corrected
        after_level = float(np.exp(np.median(np.log(x[idx[idx >= best_c]]))))
        out.before[i], out.after[i], out.effect[i] = float(np.exp(np.median(log_h))), after_level, effect
        if p_corrected < self.alpha and abs(effect) >= self.min_effect:
            out.change_index[i] = best_c
            alarmed = idx[idx >= best_c]
            out.alert[i, alarmed] = True
            out.score[i, alarmed] = 1.0 - p_corrected


def _split_strength(log_history: FloatArray, log_window: FloatArray, starts: int) -> FloatArray:
    """Variance explained by a step in the mean of history + window log values at each of the first ``starts``
    window observations: n_before n_after / n (mean_after - mean_before)^2 (the least-squares change point)."""
    x = np.concatenate([log_history, log_window])
    n = x.size
    cum = np.cumsum(x)
    n_before = log_history.size + np.arange(starts)
    before_sum = cum[n_before - 1]
    mean_before = before_sum / n_before
    mean_after = (cum[-1] - before_sum) / (n - n_before)
    strength: FloatArray = n_before * (n - n_before) / n * (mean_after - mean_before) ** 2
    return strength
