"""The finding page's plot as inline SVG: the series, its baseline band, change points and deploys.

A pure function of arrays to text, drawn with SVG presentation attributes only (no ``style``
attributes or elements), so the page keeps a Content-Security-Policy without
``'unsafe-inline'``; every label passes ``html.escape``. Kept apart from the report's
matplotlib plots because a page must render in milliseconds, not in a second.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

WIDTH, HEIGHT = 760, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 60, 12, 16, 30


def _nice_ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    """About ``n`` round tick values covering [lo, hi]."""
    if not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _segments(x: NDArray[np.float64], y: NDArray[np.float64]) -> list[list[tuple[float, float]]]:
    """Runs of finite points (a NaN is a gap)."""
    out: list[list[tuple[float, float]]] = []
    run: list[tuple[float, float]] = []
    for xi, yi in zip(x.tolist(), y.tolist(), strict=True):
        if math.isfinite(yi):
            run.append((xi, yi))
        elif run:
            out.append(run)
            run = []
    if run:
        out.append(run)
    return out


def _points(run: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{a:.1f},{b:.1f}" for a, b in run)


def series_svg(
    times_ns: NDArray[np.int64],
    values: NDArray[np.float64],
    lower: NDArray[np.float64],
    upper: NDArray[np.float64],
    *,
    unit: str,
    change_points_ns: Sequence[int] = (),
    deploys: Sequence[tuple[str, int]] = (),
    title: str = "",
) -> str:
    """An ``<svg>`` element plotting ``values`` (already in ``unit``) over ``times_ns`` with the band
    [lower, upper], red change points and dotted, labelled deploys."""
    if len(times_ns) == 0:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="40" role="img">'
            '<text x="8" y="24">no points</text></svg>'
        )
    t0, t1 = int(times_ns[0]), int(times_ns[-1])
    span = max(t1 - t0, 1)
    finite = np.concatenate([a[np.isfinite(a)] for a in (values, lower, upper)])
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 1.0, hi + 1.0
    pad = (hi - lo) * 0.08
    lo, hi = lo - pad, hi + pad
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM

    def sx(ns: float) -> float:
        return _LEFT + (ns - t0) / span * plot_w

    def sy(v: float) -> float:
        return _TOP + (hi - v) / (hi - lo) * plot_h

    x = np.array([sx(t) for t in times_ns.tolist()])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{html.escape(title)}" class="series" font-family="sans-serif" font-size="10">',
        f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" fill="#ffffff" stroke="#cccccc"/>',
    ]
    for v in _nice_ticks(lo, hi):
        y = sy(v)
        parts.append(f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eeeeee"/>')
        parts.append(f'<text x="{_LEFT - 4}" y="{y + 3:.1f}" text-anchor="end" fill="#555555">{_fmt(v)}</text>')
    parts.append(
        f'<text x="12" y="{_TOP + plot_h / 2:.0f}" text-anchor="middle" fill="#555555" '
        f'transform="rotate(-90 12 {_TOP + plot_h / 2:.0f})">{html.escape(unit or "value")}</text>'
    )
    for i in range(6):
        ns = t0 + span * i / 5
        label = dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%H:%M")
        anchor = "start" if i == 0 else "end" if i == 5 else "middle"
        parts.append(f'<text x="{sx(ns):.1f}" y="{HEIGHT - 10}" text-anchor="{anchor}" fill="#555555">{label}</text>')
    band = np.where(np.isfinite(lower) & np.isfinite(upper), 0.0, np.nan)
    for run in _segments(x, band):
        xs = [a for a, _ in run]
        idx = [int(np.searchsorted(x, a)) for a in xs]
        top = [(a, sy(float(upper[i]))) for a, i in zip(xs, idx, strict=True)]
        bottom = [(a, sy(float(lower[i]))) for a, i in zip(xs, idx, strict=True)][::-1]
        parts.append(f'<polygon class="band" points="{_points(top + bottom)}" fill="#9ecae1" fill-opacity="0.5"/>')
    for run in _segments(x, values):
        parts.append(
            f'<polyline class="signal" points="{_points([(a, sy(b)) for a, b in run])}" fill="none" '
            'stroke="#08306b" stroke-width="1.2"/>'
        )
    for ns in change_points_ns:
        if t0 <= ns <= t1:
            parts.append(
                f'<line class="change" x1="{sx(ns):.1f}" x2="{sx(ns):.1f}" y1="{_TOP}" y2="{_TOP + plot_h}" '
                'stroke="#cb181d" stroke-width="1.5"><title>change point</title></line>'
            )
    for label, ns in deploys:
        if t0 <= ns <= t1:
            xd = sx(ns)
            parts.append(
                f'<line class="deploy" x1="{xd:.1f}" x2="{xd:.1f}" y1="{_TOP}" y2="{_TOP + plot_h}" stroke="#525252" '
                'stroke-dasharray="3,3"/>'
            )
            parts.append(
                f'<text x="{xd - 3:.1f}" y="{_TOP + 4}" text-anchor="end" fill="#525252" '
                f'transform="rotate(-90 {xd - 3:.1f} {_TOP + 4})">{html.escape(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
