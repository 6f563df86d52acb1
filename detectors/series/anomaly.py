"""Excursions of one series: the evidence model over the plain and deseasonalised series,
re-estimated once without the events it found, then the event rule.

Offline the seasonal profile comes from the whole series; causally (``causal=True``, what a
stream can do) the period is re-detected on the data seen so far at checkpoints that double
(64, 128, 256, ... points) and the profile comes from the periods before each point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detectors.series import seasonality
from detectors.series.events import Event, find_events, reference_mask
from detectors.series.evidence import by_scale, combine
from detectors.series.grid import Grid
from detectors.series.robust import FloatArray, scale_floor

PASSES = 2
"""Evidence passes: the second leaves the first pass's events out of the reference."""
FIRST_CHECKPOINT = 64


SHIFT_SCALE = 4
"""Windows of this many points and more see shifts (a lasting change), not single spikes."""


@dataclass(frozen=True, eq=False)
class Excursions:
    decades: FloatArray
    """Evidence per grid step, decades (every scale)."""
    events: list[Event]
    shifts: FloatArray
    """Evidence of the shift scales only (windows of ``SHIFT_SCALE`` points and more), decades."""
    shift_events: list[Event]
    period: int
    """Seasonal period used (steps; offline) or the last one detected (causal); 0 = none."""


def _causal_seasonal(x: FloatArray, grid: Grid) -> tuple[FloatArray | None, int]:
    """The deseasonalised series using, at every point, only the period detected on earlier data."""
    n = len(x)
    out = np.full(n, np.nan)
    used = False
    period = 0
    checkpoint = FIRST_CHECKPOINT
    profiles: dict[int, FloatArray] = {}
    while checkpoint < n:
        nxt = min(2 * checkpoint, n)
        period = seasonality.detect(x[:checkpoint], grid).period
        if period:
            if period not in profiles:
                profiles[period] = seasonality.causal_profile(x, period)
            out[checkpoint:nxt] = x[checkpoint:nxt] - profiles[period][checkpoint:nxt]
            used = True
        checkpoint = nxt
    if not used:
        return None, 0
    plain = ~np.isfinite(out)
    out[plain] = x[plain]
    return out, period


def excursions(grid: Grid, causal: bool = False, period: int | None = None) -> Excursions:
    """Evidence and events of the series on ``grid`` (``period``: the offline seasonal period when already
    detected; None: detect it here)."""
    x = grid.values
    floor = scale_floor(x)
    models = [x]
    seasonal: FloatArray | None
    if causal:
        seasonal, period = _causal_seasonal(x, grid)
    else:
        period = seasonality.detect(x, grid).period if period is None else period
        seasonal = x - seasonality.profile(x, period) if period else None
    if seasonal is not None:
        models.append(seasonal)
    mask = None
    scales: dict[int, FloatArray] = {}
    d = np.zeros(len(x))
    events: list[Event] = []
    for _ in range(PASSES):
        scales = by_scale(models, mask, causal, floor)
        d = combine(scales, len(models))
        events = find_events(d)
        mask = reference_mask(events, len(x), causal)
    shifts = combine(scales, len(models), SHIFT_SCALE)
    return Excursions(d, events, shifts, find_events(shifts), period)
