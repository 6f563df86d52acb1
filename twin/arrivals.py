"""The arrival process of a twin: entry points, their shares, the mean rate, its day and week profile, noise.

Entry points are the operations whose server spans are mostly trace roots. Their root spans
per minute are fitted by least squares to ``m + A cos(2 pi h / 24) + B sin(2 pi h / 24)`` (``h``
the UTC hour) on weekday minutes when the window covers most of a day (shorter windows cannot
tell a daily swing from a trend, so the amplitude stays 0 and the twin keeps the window's mean):
the amplitude is sqrt(A^2 + B^2) / m, the peak hour atan2(B, A). The weekend factor is the
weekend minutes' counts over the weekday profile (1 when the window has no weekend, or no
weekday). The noise is what the per-minute log ratio to the profile (a short window: to its
straight-line trend) varies beyond Poisson counting noise (var - mean(1 / expected)), divided by
the share of a 30-minute AR(1) noise's variance that the profile or trend leaves in the residuals
(``kept_share``: the twin's noise is the simulator's AR(1), whose sigma is the stationary one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy import signal

from twin.sampling import NOISE_TAU_MIN
from twin.topology import EdgeFit

ROOT_SHARE = 0.5
END_MIN = 5
DAY_MIN = 20 * 60
"""Minutes of window a daily profile needs."""


@dataclass
class ArrivalFit:
    entrypoints: dict[str, float]
    """Entry operation -> share of root arrivals."""
    rate_per_s: float
    diurnal_amplitude: float
    peak_hour: float
    weekend_factor: float
    noise_sigma: float
    end_rate_per_s: float = 0.0
    """Root arrivals over the window's last ``END_MIN`` minutes (a surge under way shows here first)."""
    evidence: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fields(self) -> dict[str, object]:
        return {
            "rate_per_s": round(max(self.rate_per_s, 1e-6), 5),
            "diurnal_amplitude": round(self.diurnal_amplitude, 4),
            "peak_hour": round(self.peak_hour, 3) % 24,
            "weekend_factor": round(self.weekend_factor, 4),
            "noise_sigma": round(self.noise_sigma, 4),
        }


def daily_profile(counts: np.ndarray, hours: np.ndarray) -> tuple[float, float, float]:
    """(mean per minute, relative amplitude, peak hour) of ``counts`` per minute at UTC ``hours``."""
    x = 2 * np.pi * hours / 24.0
    design = np.column_stack([np.ones_like(x), np.cos(x), np.sin(x)])
    beta, *_ = np.linalg.lstsq(design, counts.astype(float), rcond=None)
    mean = float(beta[0])
    if mean <= 0:
        return max(float(counts.mean()), 0.0), 0.0, 14.0
    amp = float(np.hypot(beta[1], beta[2]) / mean)
    peak = float(math.degrees(math.atan2(beta[2], beta[1])) / 15.0) % 24.0
    return mean, min(amp, 0.95), peak


def kept_share(design: np.ndarray, tau_min: float = NOISE_TAU_MIN) -> float:
    """Share of a slow AR(1) noise's variance (correlation time ``tau_min`` minutes, one row a minute) left in the
    residuals of a least-squares fit on ``design``: E[residual^2] / sigma^2 = (T - tr((X'X)^-1 X'RX)) / T.

    The profile (or, in a short window, the trend) absorbs much of a noise that wanders over half an hour, so
    the residuals' variance understates it: an hour's straight-line trend keeps only about half."""
    x = np.asarray(design, dtype=np.float64)
    t = len(x)
    if t <= x.shape[1]:
        return 1.0
    phi = math.exp(-1.0 / tau_min)
    # R X for R_ij = phi^|i-j|: a forward and a backward first-order filter, less the diagonal counted twice
    forward = signal.lfilter([1.0], [1.0, -phi], x, axis=0)
    backward = signal.lfilter([1.0], [1.0, -phi], x[::-1], axis=0)[::-1]
    rx = forward + backward - x
    absorbed = float(np.trace(np.linalg.solve(x.T @ x, x.T @ rx)))
    return float(np.clip((t - absorbed) / t, 0.05, 1.0))


def _profile(
    per_min: np.ndarray, hours: np.ndarray, weekend: np.ndarray, minutes: int, said: tuple[list[str], list[str]]
) -> tuple[float, float, float]:
    """(mean per minute, amplitude, peak hour) of the root arrivals; ``said``: (evidence, notes) to append to."""
    evidence, notes = said
    base = ~weekend if (~weekend).any() else weekend
    both = bool(weekend.any() and (~weekend).any())
    if minutes >= DAY_MIN and both:
        # a day cut by midnight into weekday and weekend hours: a cosine fitted to the weekday part alone
        # extrapolates the missing hours (amplitude 0.69 came out 0.95); fit every minute, the weekend
        # ones scaled by the weekend factor, alternating the two fits
        wf0 = 1.0
        for _ in range(8):
            scaled = np.where(weekend, per_min / wf0, per_min)
            mean, amp, peak = daily_profile(scaled, hours)
            prof = mean * (1 + amp * np.cos(2 * np.pi * (hours - peak) / 24.0))
            wf0 = float(np.clip(per_min[weekend].sum() / max(prof[weekend].sum(), 1e-9), 0.05, 2.0))
        evidence.append(
            f"daily profile: least squares on {minutes} minutes (weekend ones over the weekend factor), "
            f"amplitude {amp:.3f}, peak {peak:.2f} h UTC"
        )
    elif minutes >= DAY_MIN:
        mean, amp, peak = daily_profile(per_min[base], hours[base])
        evidence.append(
            f"daily profile: least squares on {int(base.sum())} minutes, amplitude {amp:.3f}, peak {peak:.2f} h UTC"
        )
    else:
        mean, amp, peak = float(per_min[base].mean()), 0.0, 14.0
        notes.append(
            f"window of {minutes} min (< {DAY_MIN}): no daily profile fitted; the twin runs the window's mean rate"
        )
    return mean, amp, peak


def fit_arrivals(servers: pl.DataFrame, edges: list[EdgeFit], start_ns: int, minutes: int) -> ArrivalFit:
    """Entry points and the arrival process of ``minutes`` minutes from ``start_ns``."""
    callees = {e.callee for e in edges}
    shares = servers.group_by("ref").agg(pl.col("is_root").mean().alias("share"), pl.col("is_root").sum().alias("n"))
    entry = shares.filter((pl.col("n") > 0) & ((pl.col("share") >= ROOT_SHARE) | ~pl.col("ref").is_in(sorted(callees))))
    roots = servers.filter(pl.col("is_root") & pl.col("ref").is_in(entry["ref"].implode()))
    total = max(roots.height, 1)
    weights = {str(r): float(n) / total for r, n in roots.group_by("ref").agg(pl.len()).sort("ref").rows()}
    per_min = np.zeros(minutes)
    mins = roots["minute"].to_numpy()
    mins = mins[(mins >= 0) & (mins < minutes)]
    np.add.at(per_min, mins, 1)
    t_ns = start_ns + np.arange(minutes) * 60_000_000_000 + 30_000_000_000
    hours = (t_ns / 3.6e12) % 24.0
    weekday = ((t_ns // 86_400_000_000_000) + 3) % 7
    weekend = weekday >= 5
    notes: list[str] = []
    evidence = [f"{roots.height} root requests over {minutes} minutes at {len(weights)} entry points"]
    mean, amp, peak = _profile(per_min, hours, weekend, minutes, (evidence, notes))
    profile = mean * (1 + amp * np.cos(2 * np.pi * (hours - peak) / 24.0))
    wf = 1.0
    if weekend.any() and (~weekend).any():
        wf = float(np.clip(per_min[weekend].sum() / max(profile[weekend].sum(), 1e-9), 0.05, 2.0))
        evidence.append(f"weekend factor {wf:.3f} from {int(weekend.sum())} weekend minutes")
    else:
        notes.append("the window has no weekday/weekend contrast: weekend factor 1")
    expected = profile * np.where(weekend & (~weekend).any(), wf, 1.0)
    if minutes < DAY_MIN and minutes >= 10:
        # a short window's slope is the day's swing, not noise: take it out before measuring the noise
        t = np.arange(minutes, dtype=float)
        slope, icpt = np.polyfit(t, per_min, 1)
        expected = np.maximum(icpt + slope * t, 1e-9)
    ok = expected > 0.5
    if ok.sum() >= 3:
        ratio = np.log((per_min[ok] + 0.5) / (expected[ok] + 0.5))
        var = float(np.var(ratio) - np.mean(1.0 / expected[ok]))
        t = np.arange(minutes, dtype=float)
        design = (
            np.column_stack([np.ones(minutes), t])
            if minutes < DAY_MIN
            else np.column_stack([np.ones(minutes), np.cos(2 * np.pi * hours / 24), np.sin(2 * np.pi * hours / 24)])
        )
        sigma = float(np.sqrt(max(var, 0.0) / kept_share(design[ok])))
    else:
        sigma = 0.0
    evidence.append(f"rate noise sigma {sigma:.3f} (per-minute log ratio to the profile beyond Poisson)")
    end_rate = float(per_min[-min(END_MIN, minutes) :].mean()) / 60.0
    return ArrivalFit(weights, mean / 60.0, amp, peak, wf, min(sigma, 1.0), end_rate, evidence, notes)
