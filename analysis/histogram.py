"""Mergeable latency histograms with a stated error: log buckets, OTLP explicit and exponential.

One import point for the three distribution types analysis/ works with:

- ``LogHistogram``: the rollup format. DDSketch-style logarithmic buckets (Masson, Rim &
  Lee, "DDSketch: A Fast and Fully-Mergeable Quantile Sketch with Relative-Error
  Guarantees", VLDB 2019) with relative accuracy ``ALPHA``. Bucket ``i`` holds the values
  ``v`` with ``GAMMA**(i-1) < v <= GAMMA**i``; its representative value is within
  ``ALPHA * v`` of every value in it, so every quantile is within 1 % of the exact one and
  merging (adding counts per index) loses nothing.
- OTLP explicit-bucket histograms (``explicit_quantile``, ``merge_explicit``), in
  ``analysis/histogram_explicit.py``: Prometheus' ``histogram_quantile`` and re-bucketing
  with the moved counts' error stated.
- OTLP exponential histograms (``ExpHistogram``, ``downscale``, ``merge_exp``,
  ``exp_quantile``), in ``analysis/histogram_exp.py``.

The rollup SQL computes the same bucket index in DuckDB as
``CAST(ceil(ln(duration_ns) / {LN_GAMMA!r}) AS INTEGER)``; keep ``bucket_index`` the exact
same formula (natural log, a division, ceil) so Python and SQL agree bucket for bucket.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from analysis.histogram_exp import MAX_SCALE, MIN_SCALE, ExpHistogram, downscale, exp_quantile, merge_exp
from analysis.histogram_explicit import explicit_quantile, explicit_quantile_rows, merge_explicit

__all__ = [
    "ALPHA",
    "GAMMA",
    "LN_GAMMA",
    "MAX_SCALE",
    "MIN_SCALE",
    "ZERO_BUCKET_INDEX",
    "ExpHistogram",
    "LogHistogram",
    "bucket_index",
    "bucket_value",
    "downscale",
    "exp_quantile",
    "explicit_quantile",
    "explicit_quantile_rows",
    "merge_exp",
    "merge_explicit",
    "quantile_rank",
]

ALPHA = 0.01
"""Relative accuracy of ``LogHistogram``: every estimate is within ``ALPHA * v`` of ``v``."""
GAMMA = (1 + ALPHA) / (1 - ALPHA)
"""Ratio of consecutive bucket boundaries (about 1.0202)."""
LN_GAMMA = math.log(GAMMA)
"""Natural log of ``GAMMA``; the SQL rollups embed ``repr(LN_GAMMA)``."""
ZERO_BUCKET_INDEX = int(np.iinfo(np.int32).min)
"""What ``bucket_index`` returns for values <= 0 (they belong in ``LogHistogram.zero_count``).
Far below any real index: the smallest positive float64 (5e-324) has index -37 221."""

_REPRESENTATIVE = 2.0 / (GAMMA + 1.0)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def bucket_index(values: npt.ArrayLike) -> npt.NDArray[np.int32]:
    """The int32 log-bucket index ``ceil(ln(v) / LN_GAMMA)`` of each value (same shape).

    ``values`` are durations in ns (or any positive unit; the index only depends on the
    value). Bucket ``i`` covers ``(GAMMA**(i-1), GAMMA**i]``. Values <= 0 have no log
    bucket: they get ``ZERO_BUCKET_INDEX`` and are counted in ``LogHistogram.zero_count``.
    Non-finite values raise ``ValueError``.
    """
    v = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise ValueError("bucket_index: values must be finite (got NaN or infinity)")
    out = np.full(v.shape, ZERO_BUCKET_INDEX, dtype=np.int32)
    positive = v > 0
    # Division by LN_GAMMA (not multiplication by its inverse) to match the SQL bit for bit.
    out[positive] = np.ceil(np.log(v[positive]) / LN_GAMMA).astype(np.int32)
    return out


def bucket_value(index: npt.ArrayLike) -> FloatArray:
    """The representative value ``2 * GAMMA**i / (GAMMA + 1)`` of each bucket index, in the values' unit.

    For any ``v`` in bucket ``i`` (``GAMMA**(i-1) < v <= GAMMA**i``) the representative
    ``r`` satisfies ``(1 - ALPHA) * v <= r < (1 + ALPHA) * v``, i.e. ``|r - v| <= ALPHA * v``.
    """
    i = np.asarray(index, dtype=np.float64)
    return np.asarray(np.exp(i * LN_GAMMA) * _REPRESENTATIVE, dtype=np.float64)


def quantile_rank(q: float, n: int) -> int:
    """The 0-based rank ``ceil(q * (n - 1))`` of the ``q``-quantile among ``n`` sorted values.

    The rank the rollup SQL computes (``ceil({q} * (total - 1))``, where DuckDB reads the
    literal as an exact DECIMAL), so it is computed exactly on the decimal ``repr(q)``:
    ``q = 0.07, n = 101`` is rank 7, where float arithmetic would give 8. In numpy terms
    this is ``np.quantile(values, q, method="higher")`` without the float error; DDSketch's
    reference implementations use ``floor`` (the lower quantile) instead.
    """
    return max(math.ceil(Fraction(repr(float(q))) * (n - 1)), 0)


def _as_integers(values: npt.ArrayLike, dtype: type[np.signedinteger[Any]], name: str) -> npt.NDArray[Any]:
    """``values`` as a new 1-D array of ``dtype``; ``ValueError`` if not integral or out of range."""
    raw = np.asarray(values)
    if raw.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {raw.shape}")
    if raw.size == 0:
        return np.zeros(0, dtype=dtype)
    if raw.dtype.kind == "f":
        if not (np.all(np.isfinite(raw)) and np.array_equal(raw, np.trunc(raw))):
            raise ValueError(f"{name}: values must be integers")
    elif raw.dtype.kind not in "iu":
        raise ValueError(f"{name}: values must be integers, got dtype {raw.dtype}")
    info = np.iinfo(dtype)
    if raw.min() < info.min or raw.max() > info.max:
        raise ValueError(f"{name}: values out of range for {np.dtype(dtype).name}")
    return np.array(raw, dtype=dtype)


def _sum_by_index(index: IntArray, counts: IntArray) -> tuple[npt.NDArray[np.int32], IntArray]:
    """Sorted unique int32 indices with their summed counts, zero sums dropped (exact int64 sums)."""
    if index.size == 0:
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64)
    order = np.argsort(index, kind="stable")
    idx = index[order]
    cnt = counts[order]
    starts = np.flatnonzero(np.concatenate(([True], idx[1:] != idx[:-1])))
    sums = np.add.reduceat(cnt, starts)
    keep = sums > 0
    return _as_integers(idx[starts][keep], np.int32, "bucket index"), sums[keep].astype(np.int64)


@dataclass(frozen=True, eq=False)
class LogHistogram:
    """A DDSketch-style log-bucket histogram of positive values (durations in ns).

    ``index`` holds the sorted unique int32 bucket indices (see ``bucket_index``),
    ``counts`` the int64 number of values in each (all > 0), ``zero_count`` the number of
    values <= 0, which count as 0.0 (clock skew makes a few spans negative).

    Error bound (DDSketch, Masson et al. 2019, relative accuracy ALPHA): for every ``q`` in [0, 1],
    ``|quantile(q) - x| <= ALPHA * x`` where ``x = sorted(values)[quantile_rank(q, n)]`` is
    the exact sample quantile, of the same rank, of the non-negative values the histogram
    was built from, merged or not. Merging is exact (integer counts added per index),
    associative and commutative.

    Instances are immutable (the arrays are read-only copies). ``==`` is identity and the
    hash is the object id (numpy arrays have no value hash); compare ``index``, ``counts``
    and ``zero_count`` for value equality.
    """

    index: npt.NDArray[np.int32]
    counts: IntArray
    zero_count: int = 0

    def __post_init__(self) -> None:
        index = _as_integers(self.index, np.int32, "LogHistogram.index")
        counts = _as_integers(self.counts, np.int64, "LogHistogram.counts")
        if index.shape != counts.shape:
            raise ValueError(f"LogHistogram: index has {index.size} entries but counts has {counts.size}")
        if index.size > 1 and np.any(np.diff(index) <= 0):
            raise ValueError("LogHistogram.index must be strictly increasing (use from_buckets to sum duplicates)")
        if np.any(counts <= 0):
            raise ValueError("LogHistogram.counts must be > 0 (empty buckets are not stored)")
        zero_count = int(self.zero_count)
        if zero_count < 0:
            raise ValueError(f"LogHistogram.zero_count must be >= 0, got {zero_count}")
        index.setflags(write=False)
        counts.setflags(write=False)
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "zero_count", zero_count)

    @property
    def count(self) -> int:
        """Number of values held, including the zero bucket."""
        return int(self.counts.sum()) + self.zero_count

    @classmethod
    def empty(cls) -> LogHistogram:
        """A histogram holding no values."""
        return cls(np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64), 0)

    @classmethod
    def from_values(cls, values: npt.ArrayLike) -> LogHistogram:
        """The histogram of ``values`` (durations in ns or any unit; <= 0 go to the zero bucket)."""
        v = np.asarray(values, dtype=np.float64).ravel()
        idx = bucket_index(v)
        positive = idx != ZERO_BUCKET_INDEX
        unique, counts = np.unique(idx[positive], return_counts=True)
        return cls(unique, counts.astype(np.int64), int(v.size - np.count_nonzero(positive)))

    @classmethod
    def from_buckets(cls, index: npt.ArrayLike, counts: npt.ArrayLike, zero_count: int = 0) -> LogHistogram:
        """The histogram with ``counts[k]`` values in bucket ``index[k]``.

        Accepts what rollups hand over: unsorted indices, duplicates (their counts are
        summed) and zero counts (dropped). Negative counts raise ``ValueError``.
        """
        idx = _as_integers(index, np.int64, "from_buckets index")
        cnt = _as_integers(counts, np.int64, "from_buckets counts")
        if idx.shape != cnt.shape:
            raise ValueError(f"from_buckets: {idx.size} indices but {cnt.size} counts")
        if np.any(cnt < 0):
            raise ValueError("from_buckets: counts must be >= 0")
        unique, summed = _sum_by_index(idx, cnt)
        return cls(unique, summed, zero_count)

    def merge(self, other: LogHistogram) -> LogHistogram:
        """The histogram of both histograms' values (exact: counts added per bucket)."""
        return LogHistogram.merge_all((self, other))

    @staticmethod
    def merge_all(hists: Sequence[LogHistogram]) -> LogHistogram:
        """The histogram of all ``hists``' values, in one vectorised pass (empty input -> empty histogram)."""
        if not hists:
            return LogHistogram.empty()
        index = np.concatenate([h.index.astype(np.int64) for h in hists])
        counts = np.concatenate([h.counts for h in hists])
        unique, summed = _sum_by_index(index, counts)
        return LogHistogram(unique, summed, sum(h.zero_count for h in hists))

    def quantiles(self, qs: Sequence[float] | npt.ArrayLike) -> FloatArray:
        """The lower ``q``-quantile estimate for each ``q`` in ``qs``, in the values' unit.

        The estimate for the value of 0-based rank ``quantile_rank(q, n)`` (``ceil(q * (n - 1))``,
        the rank the rollup SQL uses) is the representative value of the bucket holding it
        (0.0 for the zero bucket). NaN for every ``q`` of an empty histogram. ``q`` outside
        [0, 1] (or NaN) raises ``ValueError``.
        """
        q = np.asarray(qs, dtype=np.float64)
        if not np.all((q >= 0.0) & (q <= 1.0)):
            raise ValueError(f"quantiles must be in [0, 1], got {q}")
        n = self.count
        if n == 0:
            return np.full(q.shape, np.nan)
        if self.index.size == 0:
            return np.zeros(q.shape)
        rank = np.array([quantile_rank(float(x), n) for x in q.ravel()], dtype=np.int64).reshape(q.shape)
        cumulative = np.cumsum(self.counts) + self.zero_count
        # The bucket holding rank r is the first whose cumulative count exceeds r.
        pos = np.minimum(np.searchsorted(cumulative, rank, side="right"), self.index.size - 1)
        return np.where(rank < self.zero_count, 0.0, bucket_value(self.index[pos]))

    def quantile(self, q: float) -> float:
        """The lower ``q``-quantile estimate (see ``quantiles``), in the values' unit; NaN if empty."""
        return float(self.quantiles([q])[0])

    def mean_estimate(self) -> float:
        """The mean of the bucket representatives (zero bucket as 0.0), in the values' unit; NaN if empty.

        Within ``ALPHA`` (relative) of the exact mean of non-negative values, since every
        value's representative is.
        """
        n = self.count
        if n == 0:
            return math.nan
        return float(np.dot(self.counts.astype(np.float64), bucket_value(self.index)) / n)
