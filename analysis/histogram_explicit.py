"""OTLP explicit-bucket histograms: Prometheus ``histogram_quantile`` and re-bucketing merges.

The OTLP data model (``HistogramDataPoint``): ``bounds`` are the finite, strictly increasing
``explicit_bounds``; ``counts`` has ``len(bounds) + 1`` per-bucket (not cumulative) counts;
bucket ``k`` holds ``bounds[k-1] < v <= bounds[k]`` (upper-inclusive), the first bucket is
unbounded below and the last one is the ``+Inf`` bucket. Empty ``bounds`` and ``counts``
together mean "no buckets" (allowed by OTLP).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

SMALL_DELTA_TOLERANCE = 1e-12
"""Prometheus' ``smallDeltaTolerance``: relative steps this small between cumulative bucket
counts are float noise and ignored (matters only for float counts, e.g. rates)."""
_MIN_NORMAL = float(np.finfo(np.float64).smallest_normal)
_MAX_FLOAT = float(np.finfo(np.float64).max)


def _check_shape(bounds: npt.ArrayLike, counts: npt.ArrayLike, name: str) -> tuple[FloatArray, npt.NDArray[np.generic]]:
    """``bounds`` as float64 and ``counts`` as given, validated against the OTLP layout."""
    b = np.asarray(bounds, dtype=np.float64)
    c = np.asarray(counts)
    if b.ndim != 1 or c.ndim != 1:
        raise ValueError(f"{name}: bounds and counts must be 1-D")
    if not (c.size == b.size + 1 or (c.size == 0 and b.size == 0)):
        raise ValueError(f"{name}: {c.size} bucket counts for {b.size} bounds (need len(bounds) + 1)")
    if not np.all(np.isfinite(b)):
        raise ValueError(f"{name}: bounds must be finite (the +Inf bucket is implicit)")
    if b.size > 1 and np.any(np.diff(b) <= 0):
        raise ValueError(f"{name}: bounds must be strictly increasing")
    if c.size and c.dtype.kind not in "iuf":
        raise ValueError(f"{name}: counts must be numbers, got dtype {c.dtype}")
    return b, c


def _integer_counts(counts: npt.NDArray[np.generic], name: str) -> IntArray:
    """Non-negative integral ``counts`` as int64; ``ValueError`` otherwise."""
    if counts.size == 0:
        return np.zeros(0, dtype=np.int64)
    if counts.dtype.kind == "f" and not (np.all(np.isfinite(counts)) and np.array_equal(counts, np.trunc(counts))):
        raise ValueError(f"{name}: counts must be integers")
    if counts.dtype.kind == "u" and counts.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name}: counts exceed int64")
    out = counts.astype(np.int64)
    if np.any(out < 0):
        raise ValueError(f"{name}: counts must be >= 0")
    return out


def _almost_equal(a: FloatArray, b: FloatArray, epsilon: float) -> npt.NDArray[np.bool_]:
    """Prometheus ``util/almost.Equal`` element-wise: a and b differ by less than ``epsilon`` times their sum."""
    abs_sum = np.abs(a) + np.abs(b)
    diff = np.abs(a - b)
    tiny = (a == 0) | (b == 0) | (abs_sum < _MIN_NORMAL)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = diff / np.minimum(abs_sum, _MAX_FLOAT)
    return np.asarray((a == b) | np.where(tiny, diff < epsilon * _MIN_NORMAL, relative < epsilon))


def _monotonic_envelope(cumulative: FloatArray) -> FloatArray:
    """Prometheus ``ensureMonotonicAndIgnoreSmallDeltas`` on cumulative bucket counts.

    Non-negative per-bucket counts give a non-decreasing sequence with no tiny steps, the
    usual case, returned unchanged after one vectorised check. Otherwise (negative
    per-bucket counts from rates or resets, float noise) Prometheus' sequential rule runs
    over the buckets: a step that is a decrease or almost equal to the last accepted count
    is replaced by that count.
    """
    prev, curr = cumulative[:-1], cumulative[1:]
    suspicious = (curr != prev) & ((curr < prev) | _almost_equal(prev, curr, SMALL_DELTA_TOLERANCE))
    if not np.any(suspicious):
        # Nothing is replaced, so every "last accepted count" is simply the previous count.
        return cumulative
    out = cumulative.copy()
    accepted = out[0]
    for i in range(1, out.size):  # per bucket, rare path only
        value = out[i]
        if value == accepted:
            continue
        if value < accepted or bool(_almost_equal(np.array(accepted), np.array(value), SMALL_DELTA_TOLERANCE)):
            out[i] = accepted
            continue
        accepted = value
    return out


def explicit_quantile(
    bounds: Sequence[float] | npt.ArrayLike, counts: Sequence[int] | npt.ArrayLike, q: float
) -> float:
    """The ``q``-quantile of an explicit-bucket histogram, in the bounds' unit, as Prometheus' ``histogram_quantile``.

    A port of ``BucketQuantile`` in prometheus/prometheus ``promql/quantile.go``: the
    buckets' upper bounds are ``bounds + [+Inf]``; ``rank = q * total``; the answer lies in
    the first bucket whose cumulative count is >= rank and is interpolated linearly in it.
    Special cases, as in Prometheus:

    - ``q`` NaN -> NaN; ``q < 0`` -> -Inf; ``q > 1`` -> +Inf (checked before anything else);
    - no finite bound (fewer than two buckets) or a total count of 0 -> NaN;
    - the rank falls in the +Inf bucket -> the highest finite bound;
    - the rank falls in the first bucket: if its upper bound is <= 0 that bound is returned,
      otherwise 0 is taken as its lower bound (so ``q = 0`` with an empty first bucket of
      positive bound gives 0/0 = NaN, as in Prometheus);
    - cumulative counts that decrease or step by a relative 1e-12 or less are flattened
      (``ensureMonotonicAndIgnoreSmallDeltas``), which only matters for float counts.

    ``counts`` may be floats (rates). Malformed layouts raise ``ValueError``.
    """
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    b, c = _check_shape(bounds, counts, "explicit_quantile")
    if b.size == 0:
        return math.nan
    cumulative = np.cumsum(c.astype(np.float64))
    if not np.all(np.isfinite(cumulative)):
        raise ValueError("explicit_quantile: counts must be finite")
    cumulative = _monotonic_envelope(cumulative)
    observations = float(cumulative[-1])
    if observations == 0:
        return math.nan
    rank = q * observations
    # Go's sort.Search over the finite buckets: first with cumulative >= rank, else the +Inf bucket.
    k = int(np.searchsorted(cumulative[:-1], rank, side="left"))
    if k == b.size:
        return float(b[-1])
    if k == 0 and b[0] <= 0:
        return float(b[0])
    start = float(b[k - 1]) if k > 0 else 0.0
    below = float(cumulative[k - 1]) if k > 0 else 0.0
    in_bucket = float(cumulative[k]) - below
    if in_bucket == 0:  # only reachable with rank 0 in an empty first bucket: Go computes 0/0
        return math.nan
    return start + (float(b[k]) - start) * ((rank - below) / in_bucket)


def explicit_quantile_rows(bounds: npt.ArrayLike, counts: npt.ArrayLike, q: float) -> FloatArray:
    """:func:`explicit_quantile` of every row of ``counts`` (histograms sharing ``bounds``), vectorised.

    Same rules and results as the scalar function; rows whose cumulative counts would need
    Prometheus' monotonic envelope (negative or float-noise buckets) take the scalar path.
    """
    b = np.asarray(bounds, dtype=np.float64)
    c = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    n = c.shape[0]
    if math.isnan(q) or q < 0 or q > 1 or b.size == 0:
        return np.array([explicit_quantile(b, row, q) for row in c[:1]] * n, dtype=np.float64)
    if c.shape[1] != b.size + 1:
        raise ValueError(f"explicit_quantile_rows: {c.shape[1]} buckets for {b.size} bounds (need bounds + 1)")
    cumulative = np.cumsum(c, axis=1)
    if not np.all(np.isfinite(cumulative)):
        raise ValueError("explicit_quantile_rows: counts must be finite")
    total = cumulative[:, -1]
    rank = q * total
    finite = cumulative[:, :-1]
    k = (finite < rank[:, np.newaxis]).sum(axis=1)  # searchsorted(side="left") on non-decreasing rows
    rows = np.arange(n)
    k_in = np.minimum(k, b.size - 1)
    start = np.where(k_in > 0, b[np.maximum(k_in - 1, 0)], 0.0)
    below = np.where(k_in > 0, cumulative[rows, np.maximum(k_in - 1, 0)], 0.0)
    in_bucket = cumulative[rows, k_in] - below
    with np.errstate(divide="ignore", invalid="ignore"):
        out = start + (b[k_in] - start) * ((rank - below) / in_bucket)
    out = np.where(in_bucket == 0, np.nan, out)
    out = np.where((k_in == 0) & (b[0] <= 0), b[0], out)
    out = np.where(k == b.size, b[-1], out)
    out = np.where(total == 0, np.nan, out)
    irregular = ((c < 0) | (c != np.round(c))).any(axis=1)
    for i in np.flatnonzero(irregular):  # rare: negative or fractional buckets need the envelope
        out[i] = explicit_quantile(b, c[i], q)
    return out


def _largest_remainder(quotas: FloatArray, totals: IntArray) -> IntArray:
    """Integer rows summing exactly to ``totals``, each entry floor(quota) or floor(quota) + 1.

    Hamilton's largest-remainder method per row: the ``total - sum(floor)`` entries with the
    largest fractional parts get one more. Entries with a zero quota never receive one.
    """
    floors = np.floor(quotas)
    remainder = totals - floors.sum(axis=1).astype(np.int64)
    fractional = np.where(quotas > 0, quotas - floors, -1.0)
    # Position of each entry in its row when sorted by descending fractional part.
    order = np.argsort(-fractional, axis=1, kind="stable")
    position = np.argsort(order, axis=1)  # the inverse permutation
    extra = (position < remainder[:, None]).astype(np.int64)
    return np.asarray(floors.astype(np.int64) + extra, dtype=np.int64)


def _rebucket(src_bounds: FloatArray, src_counts: IntArray, dst_bounds: FloatArray) -> tuple[IntArray, float]:
    """``src`` counts moved onto ``dst`` buckets assuming uniform density per source bucket, and the error.

    The error is the largest relative width ``(hi - lo) / |hi|`` of a source bucket with
    counts that had to be split over several destination buckets (``inf`` when the source
    +Inf bucket spans finite destination buckets, or for a split bucket whose upper bound is 0).
    """
    m, n = src_bounds.size, dst_bounds.size
    moved = np.zeros(n + 1, dtype=np.int64)
    moved[n] = src_counts[m]  # the +Inf bucket stays in +Inf
    error = 0.0
    src_top = src_bounds[-1] if m else -math.inf
    if src_counts[m] > 0 and n > 0 and src_top < dst_bounds[-1]:
        error = math.inf  # its counts could belong to finite destination buckets
    if m == 0:
        return moved, error
    hi = src_bounds
    lo = np.concatenate(([0.0 if hi[0] > 0 else hi[0]], hi[:-1]))  # first bucket: (0, b0] or a point at b0
    width = hi - lo
    edges = np.concatenate(([-math.inf], dst_bounds, [math.inf]))
    # Fraction of each source bucket at or below each destination edge (rows: sources).
    safe_width = np.where(width > 0, width, 1.0)
    with np.errstate(over="ignore"):  # huge edges over tiny widths: the clip makes them 1
        uniform = np.clip((edges[None, :] - lo[:, None]) / safe_width[:, None], 0.0, 1.0)
    point = (edges[None, :] >= hi[:, None]).astype(np.float64)
    below = np.where((width > 0)[:, None], uniform, point)
    fractions = np.diff(below, axis=1)
    counts = src_counts[:m]
    moved += _largest_remainder(fractions * counts[:, None].astype(np.float64), counts).sum(axis=0)
    split = (np.count_nonzero(fractions > 0, axis=1) > 1) & (counts > 0)
    if np.any(split):
        with np.errstate(divide="ignore"):
            relative = width[split] / np.abs(hi[split])
        error = max(error, float(relative.max()))
    return moved, error


def merge_explicit(
    bounds_a: Sequence[float] | npt.ArrayLike,
    counts_a: Sequence[int] | npt.ArrayLike,
    bounds_b: Sequence[float] | npt.ArrayLike,
    counts_b: Sequence[int] | npt.ArrayLike,
) -> tuple[FloatArray, IntArray, float]:
    """``(bounds_a, merged_counts, error)``: histogram b added onto a's buckets, with the stated error.

    Equal bounds: counts add, error 0.0 (exact). Different bounds: each of b's buckets is
    spread over a's buckets in proportion to the overlap, assuming uniform density inside
    it. b's first bucket spans ``(0, b0]`` when ``b0 > 0`` (Prometheus' convention) and is a
    point mass at ``b0`` otherwise; b's +Inf bucket goes to a's +Inf bucket. Each source
    bucket's share is rounded with the largest-remainder method, so every count stays
    integer and totals are conserved exactly.

    ``error`` is the maximum relative position error of the moved counts: the largest
    ``(hi - lo) / |hi|`` over b's buckets with counts that had to be split (a count placed
    in a destination bucket is at most one source-bucket width ``hi - lo`` from where it
    really was); 0.0 when nothing was split; ``inf`` when b's +Inf bucket holds counts that
    may belong below a's highest finite bound (b's highest bound is lower than a's).
    Values in the unit of the bounds; counts must be non-negative integers.
    """
    ba, raw_a = _check_shape(bounds_a, counts_a, "merge_explicit a")
    bb, raw_b = _check_shape(bounds_b, counts_b, "merge_explicit b")
    ca = _integer_counts(raw_a, "merge_explicit a")
    cb = _integer_counts(raw_b, "merge_explicit b")
    if ca.size == 0:
        ca = np.zeros(ba.size + 1, dtype=np.int64)
    if cb.size == 0:
        return ba.copy(), ca, 0.0
    if np.array_equal(ba, bb):
        return ba.copy(), ca + cb, 0.0
    moved, error = _rebucket(bb, cb, ba)
    return ba.copy(), ca + moved, error
