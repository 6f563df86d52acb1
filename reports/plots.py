"""Inline SVG plots of affected signals: series, baseline band, change points, deploy markers.

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

SIZE_IN = (7.5, 2.4)
"""Figure size in inches (at 100 dpi: 750 x 240 px)."""

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
        fig, ax = plt.subplots(figsize=SIZE_IN, dpi=100, layout="constrained")
        try:
            s = plot.series
            if s is None:
                ax.text(0.5, 0.5, "no points in the window", ha="center", va="center", transform=ax.transAxes)
                ax.set_axis_off()
            else:
                t = _dates(s.times_ns)
                ax.fill_between(
                    t, s.lower * plot.scale, s.upper * plot.scale, color="#9ecae1", alpha=0.5, lw=0,
                    label=f"baseline band ({s.baseline_method})",
                )  # fmt: skip
                ax.plot(t, s.center * plot.scale, color="#6baed6", lw=0.8, ls="--", label="baseline median")
                ax.plot(t, s.values * plot.scale, color="#08306b", lw=1.1, label="signal")
                _markers(ax, plot, s.times_ns[0], s.times_ns[-1])
                ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))  # type: ignore[no-untyped-call]
                ax.set_ylabel(plot.unit or "value")
                ax.legend(loc="upper left", fontsize=7, frameon=False, ncols=3)
                ax.margins(x=0)
            buf = io.StringIO()
            fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
        finally:
            plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


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
