"""The one protocol every detector implements, and the values that cross it.

A detector is a pure function of a ``SeriesBatch`` (many aligned series of one signal
kind, with their baseline) to a ``Detection``: a per-point anomaly score in [0, 1], a
per-point alert flag, and per-series statistics (p-value, effect size, change point) that
``detectors.findings`` turns into Findings under false-discovery control. Detectors hold
no state between runs, read no clock and do no I/O; they are vectorised across series.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import numpy as np
from numpy.typing import NDArray

from analysis.baselines import Baseline
from analysis.histogram import LogHistogram

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class SignalKey:
    """What a series measures: a signal kind on an entity."""

    kind: str
    """``rate``, ``error_ratio``, ``latency_p99``, ``gauge``, ... (``analysis.series``)."""
    service: str | None
    operation: str | None = None
    metric: str | None = None
    attributes: str | None = None

    def label(self) -> str:
        """A short human label: ``checkout:PlaceOrder latency_p99``."""
        entity = ":".join(p for p in (self.service, self.operation or self.metric) if p)
        return f"{entity} {self.kind}".strip()


@dataclass(frozen=True, eq=False)
class SeriesBatch:
    """Aligned series of one signal kind on a regular time grid.

    ``values[i, t]`` is series ``keys[i]`` at ``times_ns[t]`` (NaN = no data);
    ``samples[i, t]`` is the number of observations behind it (requests, points: 0 for a
    gap), used for noise floors and count models; ``counts``/``errors`` carry raw event
    counts for count-based kinds (rate, error_ratio) when available. ``baseline`` is the
    robust baseline of ``values`` (``analysis.baselines``), aligned point by point.
    """

    keys: list[SignalKey]
    times_ns: NDArray[np.int64]
    values: FloatArray
    samples: FloatArray
    resolution_s: int
    baseline: Baseline | None = None
    errors: FloatArray | None = None
    """For error_ratio: failed requests per point (values = errors / samples)."""
    current: list[LogHistogram] | None = None
    """Latency kinds: per series, the merged histogram of the window under test."""
    reference: list[LogHistogram] | None = None
    """Latency kinds: per series, the merged histogram of the baseline window."""
    window_start: int = 0
    """Index of the first point of the window under test (earlier points are history)."""
    partner: SeriesBatch | None = None
    """For a detector that ``pairs_with`` another kind: that kind's batch of the same entities,
    row for row, on the same grid (``detectors.batches.paired``)."""

    @property
    def shape(self) -> tuple[int, int]:
        n, t = self.values.shape
        return int(n), int(t)


@dataclass(frozen=True, eq=False)
class Detection:
    """What a detector says about a batch (arrays indexed like the batch).

    ``score[i, t]`` in [0, 1] is the detector's anomaly score of point t (0 = normal, 1 =
    certainly anomalous; for ``detect-series``); ``alert[i, t]`` its decision. Per series:
    ``p_value[i]`` of the strongest alarm in the batch (1.0 when none), ``change_index[i]``
    (first alerting point, -1 when none), ``effect[i]`` the relative change of the level
    after the change versus before (e.g. 0.38 = +38 %; NaN when undefined), ``before[i]``
    and ``after[i]`` the levels in the signal's unit.
    """

    score: FloatArray
    alert: NDArray[np.bool_]
    p_value: FloatArray
    change_index: NDArray[np.int64]
    effect: FloatArray
    before: FloatArray
    after: FloatArray
    details: dict[str, FloatArray] = field(default_factory=dict)
    """Detector-specific per-series numbers (e.g. ``trend_per_day``) for the evidence."""

    @classmethod
    def quiet(cls, shape: tuple[int, int]) -> Detection:
        """A detection that saw nothing."""
        n, t = shape
        nan = np.full(n, np.nan)
        return cls(
            np.zeros((n, t)), np.zeros((n, t), bool), np.ones(n), np.full(n, -1, np.int64), nan, nan.copy(), nan.copy()
        )


class Detector(Protocol):
    """One detector: one module, one class, the method it implements named and cited.

    Everything the runner needs is declared here (detectors subclass this protocol for the
    defaults): which kinds it reads, whether its change index is a change point, and the second
    signal kind it needs beside each series.
    """

    name: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]]
    """Signal kinds it applies to (prefixes allowed: "latency_" covers all quantiles)."""
    window_level: ClassVar[bool] = False
    """True when it judges the window as a whole: its ``change_index`` marks the window, not a change."""
    pairs_with: ClassVar[str | None] = None
    """Another signal kind it reads beside each series (``SeriesBatch.partner``), or None."""

    def detect(self, batch: SeriesBatch) -> Detection: ...


def applies(detector: Detector, kind: str) -> bool:
    """Whether ``detector`` handles signals of ``kind``."""
    return any(kind == k or (k.endswith("_") and kind.startswith(k)) for k in detector.kinds)


def level_change(values: FloatArray, change_index: NDArray[np.int64]) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(before, after, relative effect) per series around ``change_index`` (medians; -1 = none)."""
    n, t = values.shape
    idx = np.arange(t)
    before = np.full(n, np.nan)
    after = np.full(n, np.nan)
    for i in np.flatnonzero(change_index >= 0):  # a loop over alerting series only
        c = int(change_index[i])
        pre, post = values[i, idx < c], values[i, idx >= c]
        if np.isfinite(pre).any() and np.isfinite(post).any():
            before[i], after[i] = np.nanmedian(pre), np.nanmedian(post)
    with np.errstate(divide="ignore", invalid="ignore"):
        effect = np.where(np.abs(before) > 0, (after - before) / np.abs(before), np.nan)
    return before, after, effect
