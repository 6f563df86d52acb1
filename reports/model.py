"""The report model: one value built from the store, rendered three ways (HTML, Markdown, JSON).

Everything here is data read from tables other stages own (``findings``, ``deploy_markers``,
``investigations``) plus the series ``analysis`` returns; nothing is estimated here. Times
are integer nanoseconds since the epoch (UTC) unless a name says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from store.findings import FindingRecord

SCHEMA_VERSION = 1
"""Version of the JSON form (``report.json``); bumped on any incompatible change."""

Category = Literal["performance", "invariant", "log_template"]


@dataclass(frozen=True)
class InvestigationLink:
    """An investigation of a finding, once the investigations table has one."""

    id: str
    finding_id: str
    href: str | None
    """Where the investigation can be read: its report file (absolute when read from the store, relative
    to the report's folder once written), or None when it has no file (running, failed)."""
    status: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class Counterexamples:
    """The concrete evidence of a finding a reader can check: trace ids, log lines, SQL."""

    trace_ids: tuple[str, ...] = ()
    lines: tuple[str, ...] = ()
    """Log lines, templates or other example records, as text."""
    sql: str | None = None
    """SQL over the raw tables that reproduces the finding."""


@dataclass(frozen=True)
class FindingView(FindingRecord):
    """One row of the ``findings`` table as the report shows it: the stored finding, its section,
    its checkable evidence and its investigations."""

    category: Category = "performance"
    counterexamples: Counterexamples = field(default_factory=Counterexamples)
    investigations: tuple[InvestigationLink, ...] = ()

    @property
    def entity(self) -> str:
        """``service:operation`` (or ``service:metric``), the thing that changed."""
        return ":".join(p for p in (self.service, self.operation or self.metric) if p)

    @property
    def label(self) -> str:
        """``checkout:PlaceOrder latency_p99``, as detectors label a signal."""
        return f"{self.entity} {self.kind}".strip()

    @property
    def signal_key(self) -> tuple[str, str | None, str | None, str | None, str | None]:
        """(kind, service, operation, metric, attributes): findings on one signal share one plot."""
        return (self.kind, self.service, self.operation, self.metric, self.attributes)


@dataclass(frozen=True)
class DeployMarker:
    """A new version of a service, first seen at ``time_ns`` (from ``deploy_markers``)."""

    service: str
    version: str
    previous_version: str | None
    time_ns: int


@dataclass(frozen=True, eq=False)
class PlotSeries:
    """The points of one plot, in the signal's unit (as ``analysis.signals`` returns it).

    Arrays share the time axis ``times_ns``; NaN is a gap. ``eq=False``: arrays do not compare
    as one truth value.
    """

    times_ns: NDArray[np.int64]
    values: NDArray[np.float64]
    lower: NDArray[np.float64]
    """Baseline band, lower edge (``analysis.baselines``)."""
    upper: NDArray[np.float64]
    center: NDArray[np.float64]
    baseline_method: str


@dataclass(frozen=True, eq=False)
class SignalPlot:
    """One affected signal: its findings, change points, deploys in range and its series."""

    label: str
    kind: str
    service: str | None
    operation: str | None
    metric: str | None
    attributes: str | None
    unit: str
    """Unit of the plotted values after ``scale`` (``ms``, ``%``, ``/s`` or empty)."""
    scale: float
    """Factor from the signal's unit to the plotted unit (ns -> ms is 1e-6)."""
    finding_ids: tuple[str, ...]
    change_points_ns: tuple[int, ...]
    deploys: tuple[DeployMarker, ...]
    series: PlotSeries | None
    """None when the signal has no points in range (the plot then says so)."""
    companion: PlotSeries | None = None
    """The same operation's other quantile, drawn beside it: p99 next to a p50, p50 next to any other."""
    companion_kind: str = ""
    svg: str = ""
    """The rendered plot (inline SVG), filled by ``reports.plots``."""


@dataclass(frozen=True)
class ReportModel:
    """Everything a drift report says, built once and rendered as HTML, Markdown and JSON."""

    id: str
    """``drift-report-2026-03-09T0200Z``: the window end, to the minute (also the directory name)."""
    created_at_ns: int
    window_start_ns: int
    window_end_ns: int
    headline: str
    quiet: bool
    n_signals: int
    """Distinct series watched in the window: span operations, metric series, log streams."""
    findings: tuple[FindingView, ...]
    """All findings touching the window, most severe first, then by score."""
    by_severity: dict[str, int]
    plots: tuple[SignalPlot, ...]
    plots_omitted: int
    """Affected signals beyond the plot cap, listed in the findings table only."""
    deploys: tuple[DeployMarker, ...]
    investigations_available: bool
    """Whether the store has an ``investigations`` table yet."""

    @property
    def invariant_violations(self) -> tuple[FindingView, ...]:
        """Findings of invariant detectors (``invariant_*``, ``boundary*``)."""
        return tuple(f for f in self.findings if f.category == "invariant")

    @property
    def log_template_changes(self) -> tuple[FindingView, ...]:
        """Findings of the log template detectors (``log_template*``)."""
        return tuple(f for f in self.findings if f.category == "log_template")

    @property
    def window_hours(self) -> float:
        """Length of the window in hours."""
        return (self.window_end_ns - self.window_start_ns) / 3.6e12
