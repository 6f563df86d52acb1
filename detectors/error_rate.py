"""Count tests for request signals: error ratios against a binomial baseline, rates against an overdispersed one.

One detector, ``ErrorRate`` (name ``error_rate``), for the ``error_ratio`` and ``rate`` kinds;
the model of each kind (expectation and variance) and the decision rule (window tests, effect
guards, noise floor, SLO burn rates) are separate functions and methods.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray
from scipy import special

from analysis.robust import trailing_sum
from detectors.base import Detection, Detector, FloatArray, SeriesBatch
from detectors.error_rate_model import (
    MIN_HISTORY,
    binom_sf,
    clean_history,
    expectation,
    expected_ratio,
    history_mask,
    overdispersion,
    poisson_share,
    poisson_two_sided,
    pooled_ratio,
    rate_counts,
    run_sum,
    score,
    strongest_run,
)

BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]


_SLO_PAIRS_S: tuple[tuple[int, int, float], ...] = ((3600, 300, 14.4), (21_600, 1_800, 6.0))
"""(long window s, short window s, burn-rate factor): the SRE Workbook's page-level pairs for a 30-day budget."""


class ErrorRate(Detector):
    """Return count-based alarms on request signals: error ratios up, request rates up or down.

    ``error_ratio`` (``errors`` = failed requests per point, else values * ``samples``;
    ``samples`` = requests). The expected ratio p0 is pooled over the history (points before
    ``window_start``; the whole series when that is 0 or too short) with half an error of
    Jeffreys prior so that it is never 0: p0 = (sum errors + 0.5) / (sum requests + 1),
    raised to ``baseline.center`` where a baseline is given and higher (a seasonal baseline
    teaches it a daily cycle; otherwise p0 is one constant). The points of the history's own
    alarms (an earlier incident) are left out of the pool and the series tested again, once.
    Each point t and each trailing window of w points ending at t (w in ``windows``; gaps
    add nothing) gets the one-sided exact binomial test p = P(X >= errors | requests, p0)
    (``scipy.stats.binom.sf``, here through the incomplete beta function); q = p *
    len(windows) (Bonferroni over the window sizes) must be below ``alpha``. The change
    must also matter, with confidence ``effect_confidence``: the window's errors must be
    improbable (one-sided p below 1 - effect_confidence) even at the smallest ratio that is
    both ``min_abs`` (absolute) and ``min_rel`` (relative) above p0, i.e. a one-sided
    Clopper-Pearson bound above it. And the window must carry at least ``min_requests``
    requests: long windows pool thin traffic (14 requests a minute going from 0.3 % to 3 %
    errors is found by the 15- and 60-point windows), while the run-level traffic floor of
    ``detectors.noise`` keeps a trickle of requests from paging, however its ratio jumps.
    ``before``/``after`` are ratios (p0 and the pooled ratio over the alarm run),
    ``effect`` = (after - before) / before, ``delta_pp`` in the details = 100 * (after -
    before) (percentage points), ``p0`` the pooled ratio.

    With ``slo`` (e.g. 0.999: budget 1 - slo over 30 days) error ratios also raise the
    multi-window multi-burn-rate alerts of Beyer, Murphy, Rensin, Kawahara & Thorne (eds.),
    *The Site Reliability Workbook* (O'Reilly 2018), ch. 5 "Alerting on SLOs": burn rate (window
    ratio / budget) above 14.4 over both 1 h and 5 min, or above 6 over both 6 h and 30 min
    (windows rounded to points, at least one; same noise floor). Their p is the binomial
    test of the long window against the SLO itself (ratio = budget), times 2 pairs.
    ``burn_rate_1h`` / ``burn_rate_6h`` in the details: the largest in the window under test.

    ``rate`` (values in requests/s; counts = values * ``resolution_s``). The expected count
    M is ``baseline.center`` * ``resolution_s`` where given and positive, else the history
    median (mean when the median is 0), re-estimated once without the history's alarms.
    Real traffic is overdispersed, so the test is quasi-Poisson with the negative-binomial
    (NB2) variance var = M + a M^2 (McCullagh & Nelder, *Generalized Linear Models*, 2nd ed.
    1989, ch. 9; Cameron & Trivedi, *Regression Analysis of Count Data*, 1998, ch. 3). For
    each window size w in ``rate_windows``, a is estimated robustly from the history's
    relative residuals S / M - 1 of full windows (1.4826 * MAD, squared, minus the Poisson
    share median(1 / M)), which also absorbs autocorrelation; S and M are divided by
    phi = 1 + a M and compared with an exact two-sided Poisson test (Poisson-gamma duality).
    Counts that are not whole numbers but come from whole ``samples`` are events scaled (a
    rate at constant traffic, requests / traffic factor): their Poisson share is weighted per
    point by counts / samples (``error_rate_model.poisson_share``), so a night at a fifth of
    the traffic is as noisy as its few requests make it. Counts that are no events at all (a
    derived rate) drop the Poisson share (phi = a M, a gamma-like model): scale-free. An
    alarm needs q = p * len(rate_windows) < ``alpha``, a change beyond ``rate_min_rel``
    (-30 % or +30 %) with confidence ``effect_confidence`` (the same test at M * (1 -+
    rate_min_rel)), at least half of the window's points beyond it too (a lone spike of
    heavy-tailed traffic moves a sum, not a majority) and, for event counts, at least
    ``min_requests`` events expected or seen in the window. ``before``/``after`` are the
    mean expected and observed rates (requests/s) over the alarm run; ``overdispersion``
    (a of the first window size) and ``event_counts`` (1.0 or 0.0) in the details.

    Gaps (NaN values, ``samples`` <= 0, negative rates) add nothing to a window and never
    alarm; only points from ``window_start`` on alarm. ``score`` = L / (L + L_alpha), L =
    -log10 of the point's smallest q, L_alpha = -log10(alpha): 0.5 at the threshold.
    ``p_value`` = min(1, T * q) of the strongest alarm (Bonferroni over the T present points
    under test; 1.0 without alarm). ``change_index`` is the first alarm of the run holding
    it (alarms less than max(window) points apart form one run).

    Parameters (defaults work untuned): ``alpha`` = 1e-6, the per-point false-alarm
    probability under the count model, before the effect guards (at most 0.5 false alarms
    per series-year of minutes); ``min_abs`` = 0.005 (ratio units: 0.5 percentage point);
    ``min_rel`` = 0.5 (error ratios, +50 %); ``rate_min_rel`` = 0.3 (rates, -+30 %);
    ``effect_confidence`` = 0.99; ``min_requests`` = 20 (requests per window for error
    ratios, events per window for rates); ``windows`` = (1, 5, 15, 60) points for error
    ratios, ``rate_windows`` = (5, 15) points for rates (no single points: heavy-tailed
    traffic makes one-point tests fire on spikes); ``slo`` = None (no burn-rate alerts).
    """

    name: ClassVar[str] = "error_rate"
    kinds: ClassVar[tuple[str, ...]] = ("error_ratio", "rate")

    def __init__(
        self,
        *,
        alpha: float = 1e-6,
        min_abs: float = 0.005,
        min_rel: float = 0.5,
        rate_min_rel: float = 0.3,
        min_requests: float = 20.0,
        windows: tuple[int, ...] = (1, 5, 15, 60),
        rate_windows: tuple[int, ...] = (5, 15),
        slo: float | None = None,
        effect_confidence: float = 0.99,
    ) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        if not 0.0 < effect_confidence < 1.0:
            raise ValueError(f"effect_confidence must be in (0, 1), got {effect_confidence}")
        if slo is not None and not 0.0 < slo < 1.0:
            raise ValueError(f"slo must be in (0, 1), got {slo}")
        if not windows or not rate_windows or min(windows + rate_windows) < 1:
            raise ValueError("windows and rate_windows must be non-empty tuples of sizes >= 1")
        if min_abs < 0 or min_rel < 0 or rate_min_rel < 0 or min_requests < 0:
            raise ValueError("min_abs, min_rel, rate_min_rel and min_requests must be >= 0")
        self.alpha = alpha
        self.min_abs = min_abs
        self.min_rel = min_rel
        self.rate_min_rel = rate_min_rel
        self.min_requests = min_requests
        self.windows = tuple(sorted(set(windows)))
        # Runs are merged and their ends estimated on the short windows: a long window (60) is
        # there to give thin traffic enough requests, not to stretch every run by an hour.
        self._span = max([w for w in self.windows if w <= 15] or [min(self.windows)])
        self.rate_windows = tuple(sorted(set(rate_windows)))
        self.slo = slo
        self.effect_confidence = effect_confidence
        self._guard_p = 1.0 - effect_confidence

    def detect(self, batch: SeriesBatch) -> Detection:
        """Return the detection of ``batch`` (all one kind: ``error_ratio`` or ``rate``)."""
        n, t = batch.shape
        if n == 0 or t == 0:
            return Detection.quiet((n, t))
        kinds = {k.kind for k in batch.keys}
        if kinds == {"error_ratio"}:
            return self._error_ratio(batch)
        if kinds == {"rate"}:
            return self._rate(batch)
        raise ValueError(f"error_rate handles one kind per batch among {self.kinds}, got {sorted(kinds)}")

    # error_ratio ---------------------------------------------------------------------------------

    def _error_ratio(self, batch: SeriesBatch) -> Detection:
        t = batch.shape[1]
        values = np.asarray(batch.values, dtype=np.float64)
        samples = np.asarray(batch.samples, dtype=np.float64)
        errors = values * samples if batch.errors is None else np.asarray(batch.errors, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            present = np.isfinite(values) & np.isfinite(samples) & (samples > 0) & np.isfinite(errors)
        req = np.where(present, samples, 0.0)
        err = np.where(present, np.clip(errors, 0.0, req), 0.0)
        hist = history_mask(present, batch.window_start)
        testable = present & (np.arange(t) >= batch.window_start)
        pres = present.astype(np.float64)

        # Pass 1 tests every point against the pooled history; the history's own alarms (an
        # earlier incident) are then left out of the pool and their series tested again.
        center = None if batch.baseline is None else np.asarray(batch.baseline.center, dtype=np.float64)
        p0 = pooled_ratio(err, req, hist)
        expected = expected_ratio(p0, center, t)
        q_min, q_alert = self._ratio_tests(err, req, pres, expected)
        clean = clean_history(q_alert, hist, self._span)
        redo = np.flatnonzero(
            (clean != hist).any(axis=1) & (np.where(clean, req, 0.0).sum(axis=1) >= self.min_requests)
        )
        if redo.size:
            p0[redo] = pooled_ratio(err[redo], req[redo], clean[redo])
            expected[redo] = expected_ratio(p0[redo], None if center is None else center[redo], t)
            q_min[redo], q_alert[redo] = self._ratio_tests(err[redo], req[redo], pres[redo], expected[redo])
        q_alert = np.where(testable, q_alert, np.inf)

        details: dict[str, FloatArray] = {"p0": p0}
        if self.slo is not None:
            q_burn, burn_details = self._burn_alerts(batch, (err, req, pres), testable)
            q_alert = np.minimum(q_alert, q_burn)
            details.update(burn_details)

        alert = np.isfinite(q_alert)
        start, end = strongest_run(alert, q_alert, self._span)
        with np.errstate(divide="ignore", invalid="ignore"):
            before = run_sum(req * expected, start, end) / run_sum(req, start, end)
            after = run_sum(err, start, end) / run_sum(req, start, end)
        effect = (after - before) / np.maximum(before, 1e-9)
        details["delta_pp"] = 100.0 * (after - before)
        return Detection(
            score=score(np.where(present, q_min, 1.0), self.alpha),
            alert=alert,
            p_value=self._series_p(q_alert, testable),
            change_index=start,
            effect=effect,
            before=before,
            after=after,
            details=details,
        )

    def _ratio_tests(
        self, err: FloatArray, req: FloatArray, pres: FloatArray, expected: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """(smallest q per point, smallest alarming q per point or +inf) of the binomial window tests."""
        q_min = np.ones(err.shape)
        q_alert = np.full(err.shape, np.inf)
        for w in self.windows:
            k_w, n_w = trailing_sum(err, w), trailing_sum(req, w)
            k_w = np.clip(k_w, 0.0, n_w)  # cumsum differences can be off by an ulp
            with np.errstate(divide="ignore", invalid="ignore"):
                if expected.shape[1] == 1:  # one ratio per series: no need to average it over the window
                    p_w = np.broadcast_to(expected, k_w.shape)
                else:
                    p_w = np.where(n_w > 0, np.clip(trailing_sum(req * expected, w) / n_w, 0.0, 1.0), expected)
                ratio = np.where(n_w > 0, k_w / n_w, 0.0)
            q = binom_sf(k_w, n_w, p_w) * len(self.windows)
            fire = (
                (pres > 0)
                & (q < self.alpha)
                & (ratio - p_w >= self.min_abs)
                & (ratio >= p_w * (1.0 + self.min_rel))
                & (n_w >= self.min_requests)  # in the window: long windows pool thin traffic
            )
            # The guards must hold with confidence, not only for the point estimate: the
            # window must also be improbable at the smallest ratio that passes them.
            p_guard = np.maximum(p_w[fire] + self.min_abs, p_w[fire] * (1.0 + self.min_rel))
            sure = np.zeros_like(fire)
            sure[fire] = (p_guard < 1.0) & (binom_sf(k_w[fire], n_w[fire], np.minimum(p_guard, 1.0)) < self._guard_p)
            fire &= sure
            q_min = np.minimum(q_min, q)
            q_alert = np.where(fire, np.minimum(q_alert, q), q_alert)
        return q_min, q_alert

    def _burn_alerts(
        self, batch: SeriesBatch, counts: tuple[FloatArray, FloatArray, FloatArray], testable: BoolArray
    ) -> tuple[FloatArray, dict[str, FloatArray]]:
        """(q of the SLO burn-rate alarms, +inf elsewhere; the burn-rate details), from (errors, requests, present)."""
        assert self.slo is not None
        err, req, pres = counts
        budget = 1.0 - self.slo
        q_alert = np.full(err.shape, np.inf)
        details: dict[str, FloatArray] = {}
        for long_s, short_s, factor in _SLO_PAIRS_S:
            fire = testable.copy()
            for span_s in (short_s, long_s):  # the long window last: its sums are used below
                w = max(1, round(span_s / batch.resolution_s))
                k_w, n_w = trailing_sum(err, w), trailing_sum(req, w)
                above_floor = (n_w > 0) & (n_w >= self.min_requests * trailing_sum(pres, w))
                with np.errstate(divide="ignore", invalid="ignore"):
                    burn = np.where(above_floor, k_w / n_w, np.nan) / budget
                fire &= above_floor & (burn > factor)
            best = np.max(np.where(testable & np.isfinite(burn), burn, -1.0), axis=1)
            details[f"burn_rate_{long_s // 3600}h"] = np.where(best >= 0, best, np.nan)
            p = np.full(fire.shape, np.inf)
            p[fire] = binom_sf(k_w[fire], n_w[fire], np.full(int(fire.sum()), budget))
            q_alert = np.minimum(q_alert, p * len(_SLO_PAIRS_S))
        return q_alert, details

    # rate ----------------------------------------------------------------------------------------

    def _rate(self, batch: SeriesBatch) -> Detection:
        t = batch.shape[1]
        res = float(batch.resolution_s)
        counts, present, event_counts = rate_counts(batch)
        u = poisson_share(batch, counts, present, event_counts)
        center = None if batch.baseline is None else np.asarray(batch.baseline.center, dtype=np.float64) * res
        hist = history_mask(present, batch.window_start)

        # As for error ratios: a second pass for series whose history holds alarms, without them.
        mu, modelled = expectation(counts, present, hist, center)
        q_min, q_alert, dispersion = self._rate_tests(counts, mu, modelled, hist, u)
        clean = clean_history(q_alert, hist, max(self.rate_windows))
        redo = np.flatnonzero((clean != hist).any(axis=1) & (clean.sum(axis=1) >= MIN_HISTORY))
        if redo.size:
            sub = None if center is None else center[redo]
            mu[redo], modelled[redo] = expectation(counts[redo], present[redo], clean[redo], sub)
            q_min[redo], q_alert[redo], dispersion[redo] = self._rate_tests(
                counts[redo], mu[redo], modelled[redo], clean[redo], u[redo]
            )
        testable = modelled & (np.arange(t) >= batch.window_start)
        q_alert = np.where(testable, q_alert, np.inf)

        alert = np.isfinite(q_alert)
        start, end = strongest_run(alert, q_alert, max(self.rate_windows))
        obs = np.where(modelled, counts, 0.0)
        points = run_sum(modelled.astype(np.float64), start, end) * res
        with np.errstate(divide="ignore", invalid="ignore"):
            before = run_sum(mu, start, end) / points
            after = run_sum(obs, start, end) / points
            effect = np.where(before > 0, (after - before) / before, np.nan)
        return Detection(
            score=score(np.where(modelled, q_min, 1.0), self.alpha),
            alert=alert,
            p_value=self._series_p(q_alert, testable),
            change_index=start,
            effect=effect,
            before=before,
            after=after,
            details={"overdispersion": dispersion, "event_counts": event_counts.astype(np.float64)},
        )

    def _rate_tests(
        self, counts: FloatArray, mu: FloatArray, modelled: BoolArray, hist: BoolArray, u: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(smallest q per point, smallest alarming q per point or +inf, NB2 factor of the first window size).

        ``u`` [n, t] is the Poisson share of each point's variance (``poisson_share``)."""
        obs = np.where(modelled, counts, 0.0)
        hist = hist & modelled
        counted = np.any(u > 0, axis=1, keepdims=True)  # events, or events scaled: the request floor applies
        with np.errstate(invalid="ignore", divide="ignore"):
            raw, raw_mu = np.where(u > 0, obs / u, 0.0), np.where(u > 0, mu / u, 0.0)
        up = (modelled & (obs >= (1.0 + self.rate_min_rel) * mu)).astype(np.float64)
        down = (modelled & (obs <= (1.0 - self.rate_min_rel) * mu)).astype(np.float64)
        pres = modelled.astype(np.float64)
        q_min = np.ones(counts.shape)
        q_alert = np.full(counts.shape, np.inf)
        dispersion = np.full(counts.shape[0], np.nan)
        for i, w in enumerate(self.rate_windows):
            s_w, m_w, c_w = np.maximum(trailing_sum(obs, w), 0.0), trailing_sum(mu, w), trailing_sum(pres, w)
            ok = (m_w > 0) & (c_w == w)  # a is the dispersion of full windows
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.where(ok, s_w / m_w - 1.0, np.nan)
                u_w = np.where(ok, trailing_sum(np.where(modelled, mu * u, 0.0), w) / m_w, 0.0)
            a = overdispersion(np.where(hist & ok, rel, np.nan), np.where(hist & ok, m_w, np.nan), u_w)
            if i == 0:
                dispersion = np.where(np.isfinite(a), a, np.nan)
            with np.errstate(divide="ignore", invalid="ignore"):
                phi = u_w + np.where(ok, a[:, np.newaxis] * m_w, np.inf)
                p = np.where(ok & np.isfinite(phi), poisson_two_sided(s_w / phi, m_w / phi), 1.0)
            q = p * len(self.rate_windows)
            requests = np.maximum(trailing_sum(raw, w), trailing_sum(raw_mu, w))
            big_enough = ~counted | (requests >= self.min_requests)
            surge = (rel >= self.rate_min_rel) & (2.0 * trailing_sum(up, w) >= c_w)
            drop = (rel <= -self.rate_min_rel) & (2.0 * trailing_sum(down, w) >= c_w)
            fire = ok & (q < self.alpha) & big_enough & (surge | drop)
            # As for error ratios, the change must exceed rate_min_rel with confidence.
            edge = m_w[fire] * np.where(surge[fire], 1.0 + self.rate_min_rel, 1.0 - self.rate_min_rel)
            phi_edge = u_w[fire] + a[np.nonzero(fire)[0]] * edge
            with np.errstate(divide="ignore", invalid="ignore"):
                k_edge, lam_edge = s_w[fire] / phi_edge, edge / phi_edge
                tail = np.where(
                    surge[fire],
                    special.gammainc(np.maximum(k_edge, 1e-300), lam_edge),
                    special.gammaincc(k_edge + 1.0, lam_edge),
                )
            sure = np.zeros_like(fire)
            sure[fire] = (edge > 0) & (tail < self._guard_p)
            fire &= sure
            q_min = np.minimum(q_min, q)
            q_alert = np.where(fire, np.minimum(q_alert, q), q_alert)
        return q_min, q_alert, dispersion

    # shared --------------------------------------------------------------------------------------

    @staticmethod
    def _series_p(q_alert: FloatArray, testable: BoolArray) -> FloatArray:
        """Per series: min(1, T * smallest alarming q), T = points under test (Bonferroni over time); 1 if none."""
        best = np.min(q_alert, axis=1)
        tests = np.maximum(testable.sum(axis=1), 1)
        out: FloatArray = np.where(np.isfinite(best), np.clip(best * tests, 1e-300, 1.0), 1.0)
        return out
