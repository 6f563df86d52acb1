"""The decision rule: evidence per point -> events -> a score column and an alert column.

An *event* is a run of points whose evidence exceeds ``QUIET`` decades (runs closer than
``MERGE_GAP`` points are one event). A lasting level shift is one event: the evidence model
forgets a shift once it is the new normal, so the run ends by itself.

- Score (graded, comparable across series): ``D / (D + ALERT_DECADES)``, 0.5 at the alert
  level. Inside an event only new information is scored, so a threshold on the column
  counts each event once: the event's onset carries the event's evidence and the rest of
  the event scores 0. Offline that is the event's peak evidence; causally (no look-ahead)
  the evidence known at the onset. (Re-scoring an event as its evidence grows, once per
  decade gained, scored 44.5 instead of 49.7 on the development corpus: every re-report
  outside a labelled window is one more false positive.)
- Alert: an event whose peak reaches ``ALERT_DECADES`` raises the alert at its onset (offline:
  the first point of the event; causal: the first point at the alert level) and holds it
  for the event's length, at most ``HOLD_MAX`` points. Then the detector has re-learnt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from detectors.series.robust import FloatArray

BoolArray = NDArray[np.bool_]

QUIET = 3.0
"""Evidence (decades) that opens an event: p < 0.001 after the multiplicity correction."""
ALERT_DECADES = 6.0
"""Evidence an event needs to raise the alert: p < 1e-6 after the multiplicity correction."""
MERGE_GAP = 3
"""Runs separated by fewer quiet points are one event."""
HOLD_MAX = 10
"""Longest alert of one event, points."""


@dataclass(frozen=True)
class Event:
    start: int
    end: int
    """One past the last point."""
    peak: int
    """Index of the strongest evidence."""
    decades: float
    """Peak evidence, decades."""


def find_events(d: FloatArray, quiet: float = QUIET) -> list[Event]:
    """Runs of evidence above ``quiet``, merged across gaps shorter than ``MERGE_GAP``."""
    above = np.concatenate([[0], (d > quiet).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(above))
    runs: list[tuple[int, int]] = []
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        if runs and start - runs[-1][1] < MERGE_GAP:
            runs[-1] = (runs[-1][0], int(end))
        else:
            runs.append((int(start), int(end)))
    events = []
    for start, end in runs:
        peak = start + int(np.argmax(d[start:end]))
        events.append(Event(start, end, peak, float(d[peak])))
    return events


def reference_mask(events: list[Event], n: int, causal: bool) -> BoolArray:
    """Points to leave out of the evidence model's reference: every event point but one per event
    (declustering, as extreme-value practice does with clustered exceedances; Coles 2001, 5.3.2):
    the peak offline, the onset causally (the only point known to be in the event when it happens)."""
    mask = np.zeros(n, dtype=bool)
    for event in events:
        mask[event.start : event.end] = True
        mask[event.start if causal else event.peak] = False
    return mask


def to_score(d: FloatArray) -> FloatArray:
    """Decades of evidence on [0, 1): 0.5 at the alert level, never saturating."""
    d = np.maximum(d, 0.0)
    return np.asarray(d / (d + ALERT_DECADES), dtype=np.float64)


def onset_decades(d: FloatArray, events: list[Event], causal: bool) -> FloatArray:
    """Evidence as scored: outside events as is; inside, the new information only."""
    out = d.copy()
    for event in events:
        out[event.start : event.end] = 0.0
        out[event.start] = d[event.start] if causal else event.decades
    return out


def alerts(d: FloatArray, events: list[Event], causal: bool, level: float = ALERT_DECADES) -> BoolArray:
    """The alert column: each event at the alert level raises it at its onset, for at most ``HOLD_MAX`` points."""
    alert = np.zeros(len(d), dtype=bool)
    for event in events:
        if event.decades < level:
            continue
        onset = event.start + int(np.argmax(d[event.start : event.end] >= level)) if causal else event.start
        alert[onset : min(event.end, onset + HOLD_MAX)] = True
    return alert
