"""Inline SVG plots of affected signals: series, baseline band, change points, deploy markers.

Each plot is zoomed on the change (two hours either side of the first change point) with the
whole window below it as context (the zoomed range shaded); a latency or histogram quantile
has its companion drawn beside it (p99 next to p50, p50 next to the others).

matplotlib (Agg, SVG backend) draws; text stays text (``svg.fonttype = none``) so the page
is small and searchable, and mathtext is off so a ``$`` in a version string is just a
character. matplotlib escapes the text it writes into the SVG; telemetry strings other than
deploy versions stay out of the plot (the HTML around it carries the labels, escaped).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import replace

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from reports.model import SignalPlot

SIZE_IN = (7.5, 3.2)
"""Figure size in inches (at 100 dpi: 750 x 320 px): the zoomed panel over a whole-window strip."""
ZOOM_BEFORE_S = 2 * 3600
"""The zoomed panel starts this long before the first change point (or ends the window without one)..."""
ZOOM_AFTER_S = 2 * 3600
"""... and ends this long after it (at most the window end)."""

_DEPLOY_LABELS_MAX = 4
"""Deploy markers labelled with their version per plot; more are drawn unlabelled."""


def _dates(ns: np.ndarray) -> np.ndarray:
    return ns.astype("datetime64[ns]")


def render_svg(plot: SignalPlot, salt: str) -> str:
    """The plot as an ``<svg>`` element (no XML prolog), ids salted with ``salt`` so several can share a page."""
    with plt.rc_context(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": salt,
            "text.parse_math": False,
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    ):
        fig, (ax, ctx) = plt.subplots(
            2, 1, figsize=SIZE_IN, dpi=100, layout="constrained", gridspec_kw={"height_ratios": [3, 1]}
        )
        try:
            s = plot.series
            if s is None:
                ax.text(0.5, 0.5, "no points in the window", ha="center", va="center", transform=ax.transAxes)
                ax.set_axis_off()
                ctx.set_axis_off()
            else:
                lo_ns, hi_ns = zoom_range(plot, int(s.times_ns[0]), int(s.times_ns[-1]))
                zoom = (s.times_ns >= lo_ns) & (s.times_ns <= hi_ns)
                t = _dates(s.times_ns[zoom])
                ax.fill_between(
                    t, s.lower[zoom] * plot.scale, s.upper[zoom] * plot.scale, color="#9ecae1", alpha=0.5, lw=0,
                    label=f"baseline band ({s.baseline_method})",
                )  # fmt: skip
                ax.plot(t, s.center[zoom] * plot.scale, color="#6baed6", lw=0.8, ls="--", label="baseline median")
                ax.plot(t, s.values[zoom] * plot.scale, color="#08306b", lw=1.1, label=_short(plot.kind))
                c = plot.companion
                if c is not None:
                    cz = (c.times_ns >= lo_ns) & (c.times_ns <= hi_ns)
                    ax.plot(_dates(c.times_ns[cz]), c.values[cz] * plot.scale, color="#fd8d3c", lw=0.9,
                            label=_short(plot.companion_kind))  # fmt: skip
                _markers(ax, plot, lo_ns, hi_ns)
                ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))  # type: ignore[no-untyped-call]
                ax.set_ylabel(plot.unit or "value")
                ax.legend(loc="upper left", fontsize=7, frameon=False, ncols=4)
                ax.margins(x=0)
                _context(ctx, plot, lo_ns, hi_ns)
            buf = io.StringIO()
            fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
        finally:
            plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def zoom_range(plot: SignalPlot, first_ns: int, last_ns: int) -> tuple[int, int]:
    """[start, end] of the zoomed panel: around the first change point in range, else the last hours."""
    inside = sorted(c for c in plot.change_points_ns if first_ns <= c <= last_ns)
    if inside:
        lo = inside[0] - ZOOM_BEFORE_S * 1_000_000_000
        hi = inside[0] + ZOOM_AFTER_S * 1_000_000_000
    else:
        hi = last_ns
        lo = hi - (ZOOM_BEFORE_S + ZOOM_AFTER_S) * 1_000_000_000
    return max(first_ns, lo), min(last_ns, hi)


def _short(kind: str) -> str:
    return kind.rpartition("_")[2] if kind.startswith(("latency_", "histogram_")) else "signal"


def _context(ax: Axes, plot: SignalPlot, lo_ns: int, hi_ns: int) -> None:
    """The whole window, thin, with the zoomed range shaded and the change points marked."""
    s = plot.series
    assert s is not None
    ax.plot(_dates(s.times_ns), s.values * plot.scale, color="#08306b", lw=0.5)
    ax.axvspan(_dates(np.array([lo_ns]))[0], _dates(np.array([hi_ns]))[0], color="#fdd0a2", alpha=0.6, lw=0)
    for ns in plot.change_points_ns:
        if s.times_ns[0] <= ns <= s.times_ns[-1]:
            ax.axvline(_dates(np.array([ns]))[0], color="#cb181d", lw=0.8)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))  # type: ignore[no-untyped-call]
    ax.set_yticks([])
    ax.tick_params(labelsize=7)
    ax.set_ylabel("whole\nwindow", fontsize=7)
    ax.margins(x=0)


def _markers(ax: Axes, plot: SignalPlot, first_ns: int, last_ns: int) -> None:
    """Change points (solid red) and deploys (dashed grey, labelled with the version) inside the plot."""
    for i, ns in enumerate(sorted(c for c in plot.change_points_ns if first_ns <= c <= last_ns)):
        ax.axvline(_dates(np.array([ns]))[0], color="#cb181d", lw=1.2, label="change point" if i == 0 else None)
    shown = [d for d in plot.deploys if first_ns <= d.time_ns <= last_ns]
    for i, d in enumerate(shown):
        at = _dates(np.array([d.time_ns]))[0]
        ax.axvline(at, color="#525252", lw=1.0, ls=":", label="deploy" if i == 0 else None)
        if i < _DEPLOY_LABELS_MAX:
            ax.annotate(
                f"{d.service} {d.version}", (at, 1.0), xycoords=("data", "axes fraction"), rotation=90,
                fontsize=7, va="top", ha="right", color="#525252",
            )  # fmt: skip


def render_all(plots: Sequence[SignalPlot]) -> tuple[SignalPlot, ...]:
    """Each plot with its ``svg`` filled in (ids salted by position: unique on the page)."""
    return tuple(replace(p, svg=render_svg(p, salt=f"plot{i}")) for i, p in enumerate(plots))
