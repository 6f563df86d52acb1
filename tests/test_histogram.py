"""Histogram laws: DDSketch relative-error bound, exact merges, Prometheus parity, OTLP exponential rescaling.

Property tests (hypothesis) state each law over random data; the parity tables are
Prometheus' own test vectors, so ``explicit_quantile`` and ``exp_quantile`` answer what
``histogram_quantile`` answers.

Over 450 lines because the parity tables are data: Prometheus' vectors copied as they are.
"""

from __future__ import annotations

import math
import random

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.histogram import (
    ALPHA,
    GAMMA,
    LN_GAMMA,
    ZERO_BUCKET_INDEX,
    ExpHistogram,
    LogHistogram,
    bucket_index,
    bucket_value,
    downscale,
    exp_quantile,
    explicit_quantile,
    explicit_quantile_rows,
    merge_exp,
    merge_explicit,
    quantile_rank,
)

QS = (0.0, 0.5, 0.9, 0.99, 1.0)
INF = math.inf
NAN = math.nan

# Durations in ns, log-uniform over [1 us, 1000 s]: the lognormal-ish spread of real latencies.
durations_ns = st.floats(math.log(1e3), math.log(1e12)).map(math.exp)
batches = st.lists(st.lists(durations_ns, min_size=1, max_size=60), min_size=1, max_size=6)


def _assert_same(a: LogHistogram, b: LogHistogram) -> None:
    np.testing.assert_array_equal(a.index, b.index)
    np.testing.assert_array_equal(a.counts, b.counts)
    assert a.index.dtype == np.int32
    assert a.counts.dtype == np.int64
    assert a.zero_count == b.zero_count


# --- log-bucket histogram (DDSketch) -------------------------------------------------------


def test_constants_are_the_ddsketch_ones() -> None:
    assert pytest.approx(1.01 / 0.99) == GAMMA
    assert math.log(GAMMA) == LN_GAMMA
    assert float(repr(LN_GAMMA)) == LN_GAMMA  # the SQL can embed repr() without loss


@settings(deadline=None, max_examples=200)
@given(st.lists(st.floats(1e-300, 1e300), min_size=1, max_size=50))
def test_bucket_index_bounds_and_representative_error(values: list[float]) -> None:
    v = np.array(values)
    i = bucket_index(v)
    assert i.dtype == np.int32
    np.testing.assert_array_equal(i, np.ceil(np.log(v) / LN_GAMMA).astype(np.int32))
    # Bucket i holds GAMMA**(i-1) < v <= GAMMA**i (up to the float rounding of ln).
    assert np.all(v <= np.exp(i * LN_GAMMA) * (1 + 1e-12))
    assert np.all(v > np.exp((i - 1) * LN_GAMMA) * (1 - 1e-12))
    assert np.all(np.abs(bucket_value(i) - v) <= ALPHA * v * (1 + 1e-9))


def test_bucket_index_matches_duckdb_sql() -> None:
    """The rollups compute the index in SQL; both sides must agree bucket for bucket."""
    rng = np.random.default_rng(7)
    random_ns = np.exp(rng.uniform(0, math.log(1e13), 20_000)).astype(np.int64) + 1
    # Integers next to bucket boundaries, where a one-ulp difference in ln would show.
    boundaries = np.round(np.exp(np.arange(1, 1500) * LN_GAMMA)).astype(np.int64)
    near = np.concatenate([boundaries + d for d in (-1, 0, 1)])
    durations = np.unique(np.concatenate([random_ns, near[near > 0]]))
    con = duckdb.connect()
    con.register("d", pa.table({"duration_ns": pa.array(durations, type=pa.int64())}))
    rows = con.execute(
        f"SELECT duration_ns, CAST(ceil(ln(duration_ns) / {LN_GAMMA!r}) AS INTEGER) FROM d ORDER BY duration_ns"
    ).fetchall()
    sql = np.array([r[1] for r in rows], dtype=np.int64)
    np.testing.assert_array_equal(np.array([r[0] for r in rows]), durations)
    np.testing.assert_array_equal(bucket_index(durations.astype(np.float64)), sql)


def test_values_at_or_below_zero_go_to_the_zero_bucket() -> None:
    assert list(bucket_index(np.array([-3.0, 0.0, 1.0]))) == [ZERO_BUCKET_INDEX, ZERO_BUCKET_INDEX, 0]
    h = LogHistogram.from_values(np.array([0.0, -5.0, 10.0, 20.0]))
    assert h.zero_count == 2
    assert h.count == 4
    assert h.quantile(0.0) == 0.0
    assert h.quantile(0.25) == 0.0  # rank ceil(0.25 * 3) = 1: still the zero bucket
    assert h.quantile(0.5) == pytest.approx(10.0, rel=ALPHA)  # rank ceil(1.5) = 2
    assert h.quantile(1.0) == pytest.approx(20.0, rel=ALPHA)
    only_zeros = LogHistogram.from_values(np.zeros(3))
    np.testing.assert_array_equal(only_zeros.quantiles(QS), np.zeros(len(QS)))


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        bucket_index(np.array([1.0, math.nan]))
    with pytest.raises(ValueError, match="finite"):
        LogHistogram.from_values(np.array([math.inf]))
    with pytest.raises(ValueError, match="strictly increasing"):
        LogHistogram(np.array([3, 1], dtype=np.int32), np.array([1, 1]))
    with pytest.raises(ValueError, match="> 0"):
        LogHistogram(np.array([1], dtype=np.int32), np.array([0]))
    with pytest.raises(ValueError, match=">= 0"):
        LogHistogram.from_buckets([1, 2], [1, -1])
    with pytest.raises(ValueError, match="out of range"):
        LogHistogram.from_buckets([2**40], [1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        LogHistogram.from_values(np.array([1.0])).quantile(1.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        LogHistogram.from_values(np.array([1.0])).quantile(math.nan)


def test_empty_histogram() -> None:
    empty = LogHistogram.empty()
    assert empty.count == 0
    assert math.isnan(empty.quantile(0.5))
    assert np.all(np.isnan(empty.quantiles(QS)))
    assert math.isnan(empty.mean_estimate())
    _assert_same(LogHistogram.merge_all([]), empty)
    h = LogHistogram.from_values(np.array([5.0, 7.0]))
    _assert_same(h.merge(empty), h)


def test_histogram_is_immutable_and_hashable() -> None:
    h = LogHistogram.from_values(np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="read-only"):
        h.counts[0] = 7
    assert {h: 1}[h] == 1  # identity hash: usable as a key, never "unhashable ndarray"


@settings(deadline=None, max_examples=200)
@given(batches)
def test_merged_quantiles_within_alpha_of_exact_lower_quantiles(parts: list[list[float]]) -> None:
    merged = LogHistogram.merge_all([LogHistogram.from_values(np.array(p)) for p in parts])
    raw = np.concatenate([np.array(p) for p in parts])
    ordered = np.sort(raw)
    exact = np.array([ordered[quantile_rank(q, raw.size)] for q in QS])
    estimate = merged.quantiles(QS)
    assert merged.count == raw.size
    assert np.all(np.abs(estimate - exact) <= ALPHA * exact * (1 + 1e-9)), (estimate, exact)
    for q, e in zip(QS, estimate, strict=True):
        assert merged.quantile(q) == e
    assert abs(merged.mean_estimate() - raw.mean()) <= ALPHA * raw.mean() * (1 + 1e-9)


def test_quantile_rank_is_ceil_of_the_decimal_q() -> None:
    assert [quantile_rank(q, 11) for q in (0.0, 0.3, 0.31, 0.5, 1.0)] == [0, 3, 4, 5, 10]
    assert quantile_rank(0.07, 101) == 7  # float arithmetic: ceil(0.07 * 100) = ceil(7.000000000000001) = 8
    assert quantile_rank(0.5, 1) == 0
    # Values 1.5x apart sit in distinct buckets, so the estimate identifies the rank.
    values = 1e3 * 1.5 ** np.arange(101)
    h = LogHistogram.from_values(values)
    assert h.quantile(0.07) == pytest.approx(values[7], rel=ALPHA)
    np.testing.assert_allclose(h.quantiles([0.0, 0.5, 1.0]), values[[0, 50, 100]], rtol=ALPHA)
    assert h.quantile(0.99) == pytest.approx(values[99], rel=ALPHA)


histograms = st.tuples(st.lists(durations_ns, max_size=40), st.integers(0, 5)).map(
    lambda t: LogHistogram.from_values(np.array(t[0] + [0.0] * t[1]))
)


@settings(deadline=None, max_examples=200)
@given(histograms, histograms, histograms)
def test_merge_is_associative_and_commutative(a: LogHistogram, b: LogHistogram, c: LogHistogram) -> None:
    _assert_same(a.merge(b), b.merge(a))
    _assert_same(a.merge(b).merge(c), a.merge(b.merge(c)))
    _assert_same(LogHistogram.merge_all([a, b, c]), LogHistogram.merge_all([c, a, b]))
    _assert_same(LogHistogram.merge_all([a, b, c]), a.merge(b).merge(c))
    assert a.merge(b).count == a.count + b.count


@settings(deadline=None, max_examples=200)
@given(st.lists(durations_ns, min_size=1, max_size=80), st.randoms(use_true_random=False), st.integers(0, 4))
def test_from_buckets_with_duplicated_unsorted_input_equals_from_values(
    values: list[float], rnd: random.Random, zeros: int
) -> None:
    expected = LogHistogram.from_values(np.array(values + [0.0] * zeros))
    # What a rollup hands over: one row per (bucket, count) in any order, buckets repeated,
    # counts split across rows, and some empty rows.
    rows: list[tuple[int, int]] = [(int(i), 1) for i in bucket_index(np.array(values))]
    rows += [(int(i), 0) for i in rnd.sample(range(-500, 2000), 3)]
    rnd.shuffle(rows)
    index, counts = zip(*rows, strict=True)
    _assert_same(LogHistogram.from_buckets(list(index), list(counts), zero_count=zeros), expected)
    _assert_same(LogHistogram.from_buckets(expected.index, expected.counts, expected.zero_count), expected)


# --- explicit buckets: Prometheus histogram_quantile parity ---------------------------------

# Test vectors ported from prometheus/prometheus promql/promqltest/testdata/histograms.test
# ("Test histogram_quantile, native and classic", "Quantile too low/high/invalid",
# "Quantile value in lowest/highest bucket", "Want results exactly in the middle of the
# bucket", the aggregated request_duration_seconds cases, the nonmonotonic and empty-bucket
# cases). Prometheus loads cumulative `le` series; here they are (finite upper bounds,
# cumulative counts incl. +Inf) and turned into OTLP per-bucket counts by differencing. The
# counts are the series' increments, which scale out of every quantile (the file evaluates
# them at 50m, i.e. times 10, or as rates).
PROM_HISTOGRAMS: dict[str, tuple[list[float], list[float]]] = {
    "testhistogram{start=positive}": ([0.1, 0.2, 1.0], [5, 7, 11, 12]),
    "testhistogram{start=negative}": ([-0.2, -0.1, 0.3], [1, 2, 2, 3]),
    "testhistogram2": ([0.0, 2.0, 4.0, 6.0], [0, 1, 2, 3, 3]),
    "testhistogram3{start=positive}": ([0.0, 0.1, 0.2, 1.0], [0, 5, 7, 11, 11]),
    "testhistogram3{start=negative}": ([-0.25, -0.2, -0.1, 0.3], [0, 1, 2, 2, 2]),
    "sum(request_duration_seconds)": ([0.1, 0.2], [10, 19, 25]),
    "request_duration_seconds{job=job1}": ([0.1, 0.2], [3, 8, 10]),
    "request_duration_seconds{job=job2}": ([0.1, 0.2], [7, 11, 15]),
    "request_duration_seconds{instance=ins1}": ([0.1, 0.2], [4, 7, 10]),
    "request_duration_seconds{instance=ins2}": ([0.1, 0.2], [6, 12, 15]),
    "request_duration_seconds{job1,ins1}": ([0.1, 0.2], [1, 3, 4]),
    "request_duration_seconds{job1,ins2}": ([0.1, 0.2], [2, 5, 6]),
    "request_duration_seconds{job2,ins1}": ([0.1, 0.2], [3, 4, 6]),
    "request_duration_seconds{job2,ins2}": ([0.1, 0.2], [4, 7, 9]),
    "nonmonotonic": ([0.1, 1.0, 10.0, 100.0, 1000.0], [2, 1, 5, 4, 9, 8]),
    "empty_bucket": ([0.1, 0.2], [0, 0, 0]),
    "const_histogram (rate 0)": ([0.0, 1.0, 2.0], [0, 0, 0, 0]),
}
PROM_VECTORS: list[tuple[str, float, float]] = [
    *[("testhistogram{start=positive}", q, v) for q, v in [(0, 0), (0.2, 0.048), (0.5, 0.15), (0.8, 0.72), (1, 1)]],
    *[("testhistogram{start=negative}", q, v) for q, v in [(0, -0.2), (0.2, -0.2), (0.5, -0.15), (0.8, 0.3), (1, 0.3)]],
    *[
        (name, q, v)
        for name in ("testhistogram{start=positive}", "testhistogram{start=negative}")
        for q, v in [(-0.1, -INF), (1.01, INF), (NAN, NAN)]
    ],
    *[("testhistogram2", q, v) for q, v in [(1 / 6, 1), (0.5, 3), (5 / 6, 5)]],
    *[("testhistogram3{start=positive}", q, v) for q, v in [(0, 0), (0.25, 0.055), (0.5, 0.125), (0.75, 0.45), (1, 1)]],
    *[
        ("testhistogram3{start=negative}", q, v)
        for q, v in [(0, -0.25), (0.25, -0.225), (0.5, -0.2), (0.75, -0.15), (1, -0.1)]
    ],
    ("sum(request_duration_seconds)", 0.3, 0.075),
    ("sum(request_duration_seconds)", 0.5, 0.1277777777777778),
    ("request_duration_seconds{job=job1}", 0.3, 0.1),
    ("request_duration_seconds{job=job1}", 0.5, 0.14),
    ("request_duration_seconds{job=job2}", 0.3, 0.0642857142857143),
    ("request_duration_seconds{job=job2}", 0.5, 0.1125),
    ("request_duration_seconds{instance=ins1}", 0.3, 0.075),
    ("request_duration_seconds{instance=ins1}", 0.5, 0.1333333333),
    ("request_duration_seconds{instance=ins2}", 0.3, 0.075),
    ("request_duration_seconds{instance=ins2}", 0.5, 0.125),
    ("request_duration_seconds{job1,ins1}", 0.3, 0.11),
    ("request_duration_seconds{job1,ins1}", 0.5, 0.15),
    ("request_duration_seconds{job1,ins2}", 0.3, 0.09),
    ("request_duration_seconds{job1,ins2}", 0.5, 0.13333333333333333),
    ("request_duration_seconds{job2,ins1}", 0.3, 0.06),
    ("request_duration_seconds{job2,ins1}", 0.5, 0.1),
    ("request_duration_seconds{job2,ins2}", 0.3, 0.0675),
    ("request_duration_seconds{job2,ins2}", 0.5, 0.11666666666666667),
    ("nonmonotonic", 0.01, 0.0045),
    ("nonmonotonic", 0.5, 8.5),
    ("nonmonotonic", 0.99, 979.75),
    ("empty_bucket", 0.2, NAN),
    ("const_histogram (rate 0)", 1.0, NAN),
]


def _assert_float(got: float, want: float, rel: float = 1e-9) -> None:
    if math.isnan(want):
        assert math.isnan(got), got
    else:
        assert got == pytest.approx(want, rel=rel, abs=1e-15), (got, want)


@pytest.mark.parametrize(("name", "q", "expected"), PROM_VECTORS)
def test_explicit_quantile_matches_prometheus_test_vectors(name: str, q: float, expected: float) -> None:
    bounds, cumulative = PROM_HISTOGRAMS[name]
    per_bucket = np.diff(np.concatenate(([0.0], cumulative)))  # nonmonotonic gives negative steps
    _assert_float(explicit_quantile(bounds, per_bucket, q), expected)
    if np.all(per_bucket >= 0):
        _assert_float(explicit_quantile(bounds, per_bucket.astype(np.int64).tolist(), q), expected)


def test_explicit_quantile_edge_cases() -> None:
    assert math.isnan(explicit_quantile([], [], 0.5))  # OTLP: no buckets at all
    assert math.isnan(explicit_quantile([], [7], 0.5))  # only the +Inf bucket: Prometheus needs 2
    assert explicit_quantile([], [], -1) == -INF  # q is checked first
    assert explicit_quantile([1.0, 2.0], [0, 0, 4], 0.5) == 2.0  # +Inf bucket -> highest finite bound
    assert explicit_quantile([1.0, 2.0], [0, 0, 4], 0.25) == 2.0
    assert explicit_quantile([1.0, 2.0], [4, 0, 0], 1.0) == 1.0
    assert explicit_quantile([1.0, 2.0], [4, 0, 0], 0.0) == 0.0  # first bucket interpolates from 0
    assert explicit_quantile([1.0, 2.0], [4, 0, 0], 0.5) == 0.5
    assert explicit_quantile([-1.0, 2.0], [4, 0, 0], 0.5) == -1.0  # first bound <= 0 is returned as is
    assert math.isnan(explicit_quantile([1.0, 2.0], [0, 4, 0], 0.0))  # Prometheus: 0/0 in an empty first bucket
    assert explicit_quantile([1.0, 2.0], [0, 4, 0], 0.25) == 1.25
    # Relative steps of <= 1e-12 in the cumulative counts are float noise to Prometheus.
    assert explicit_quantile([1.0, 2.0], [1e13, 1.0, 0.0], 1.0) == 1.0
    assert explicit_quantile([1.0, 2.0], [1e6, 1.0, 0.0], 1.0) == 2.0
    with pytest.raises(ValueError, match=r"len\(bounds\) \+ 1"):
        explicit_quantile([1.0, 2.0], [1, 2], 0.5)
    with pytest.raises(ValueError, match="strictly increasing"):
        explicit_quantile([2.0, 1.0], [1, 2, 3], 0.5)
    with pytest.raises(ValueError, match="finite"):
        explicit_quantile([1.0, INF], [1, 2, 3], 0.5)


# --- explicit buckets: merging ---------------------------------------------------------------

bounds_lists = st.lists(st.floats(-1e6, 1e9, allow_nan=False), max_size=12, unique=True).map(sorted)


@st.composite
def explicit_histograms(draw: st.DrawFn) -> tuple[list[float], list[int]]:
    bounds = draw(bounds_lists)
    counts = draw(st.lists(st.integers(0, 10**9), min_size=len(bounds) + 1, max_size=len(bounds) + 1))
    return bounds, counts


@settings(deadline=None, max_examples=200)
@given(explicit_histograms(), explicit_histograms())
def test_merge_explicit_conserves_counts(a: tuple[list[float], list[int]], b: tuple[list[float], list[int]]) -> None:
    bounds, merged, error = merge_explicit(a[0], a[1], b[0], b[1])
    np.testing.assert_array_equal(bounds, a[0])
    assert merged.dtype == np.int64
    assert merged.size == len(a[1])
    assert int(merged.sum()) == sum(a[1]) + sum(b[1])
    moved = merged - np.array(a[1])
    assert np.all(moved >= 0)
    assert moved[-1] >= b[1][-1]  # b's +Inf bucket stays in +Inf
    assert error >= 0.0
    # A moved count lands only in a bucket of a that overlaps a non-empty bucket of b.
    a_lo = np.concatenate(([-INF], a[0]))
    a_hi = np.concatenate((a[0], [INF]))
    b_hi = np.array(b[0] + [INF])
    b_lo = np.concatenate(([-INF], b[0]))
    if b[0] and b[0][0] > 0:
        b_lo[0] = 0.0
    nonempty = np.array(b[1]) > 0
    for k in np.flatnonzero(moved):
        lo, hi = a_lo[k], a_hi[k]
        overlaps = (b_lo < hi) & (b_hi >= lo) & nonempty
        assert np.any(overlaps), (k, a, b)


@settings(deadline=None, max_examples=200)
@given(explicit_histograms(), st.lists(st.integers(0, 10**9), min_size=13, max_size=13))
def test_merge_explicit_is_exact_for_equal_bounds(a: tuple[list[float], list[int]], other: list[int]) -> None:
    counts_b = other[: len(a[1])]
    _, merged, error = merge_explicit(a[0], a[1], list(a[0]), counts_b)
    assert error == 0.0
    np.testing.assert_array_equal(merged, np.array(a[1]) + np.array(counts_b))


def test_merge_explicit_worked_examples() -> None:
    # b's (0, 1.5] -> 2/3 below 1, 1/3 in (1, 2]; (1.5, 4] -> 1/5 in (1, 2], 4/5 in (2, 4]; +Inf stays.
    _, merged, error = merge_explicit([1, 2, 4], [1, 1, 1, 1], [1.5, 4], [10, 10, 5])
    np.testing.assert_array_equal(merged, [1 + 7, 1 + 3 + 2, 1 + 8, 1 + 5])
    assert error == 1.0  # (0, 1.5] split: width 1.5 relative to 1.5
    # b's highest bound below a's: its +Inf counts may belong to a's finite buckets.
    _, merged, error = merge_explicit([1, 2, 4], [0, 0, 0, 0], [1.5, 3], [10, 10, 5])
    np.testing.assert_array_equal(merged, [7, 6, 7, 5])
    assert error == INF
    # b finer than a and aligned: nothing is split, the merge is exact.
    _, merged, error = merge_explicit([2, 8], [0, 0, 0], [1, 2, 4, 8], [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(merged, [3, 7, 5])
    assert error == 0.0
    # A first bucket with a bound <= 0 is a point mass at that bound.
    _, merged, error = merge_explicit([-2, 0, 10], [0, 0, 0, 0], [-1, 5], [3, 0, 0])
    np.testing.assert_array_equal(merged, [0, 3, 0, 0])
    assert error == 0.0
    # Largest remainder: 3 counts over (0, 3] into thirds -> exactly 1 each.
    _, merged, error = merge_explicit([1, 2, 3], [0, 0, 0, 0], [3], [3, 0])
    np.testing.assert_array_equal(merged, [1, 1, 1, 0])
    assert error == 1.0
    # An OTLP point with no buckets adds nothing.
    _, merged, error = merge_explicit([1], [2, 3], [], [])
    np.testing.assert_array_equal(merged, [2, 3])
    with pytest.raises(ValueError, match="integers"):
        merge_explicit([1], [1, 1], [1], [0.5, 1])
    with pytest.raises(ValueError, match=">= 0"):
        merge_explicit([1], [1, 1], [2], [-1, 1])


# --- exponential histograms ----------------------------------------------------------------


def _exp(
    scale: int,
    positive: dict[int, int] | None = None,
    negative: dict[int, int] | None = None,
    zero: int = 0,
    threshold: float = 0.0,
) -> ExpHistogram:
    """An ExpHistogram from ``{otel_index: count}`` maps."""

    def dense(m: dict[int, int] | None) -> tuple[int, npt.NDArray[np.int64]]:
        if not m:
            return 0, np.zeros(0, dtype=np.int64)
        lo = min(m)
        out = np.zeros(max(m) - lo + 1, dtype=np.int64)
        for i, c in m.items():
            out[i - lo] = c
        return lo, out

    po, p = dense(positive)
    no, n = dense(negative)
    return ExpHistogram(scale, zero, po, p, no, n, threshold)


def _prom(schema: int, buckets: list[int], offset: int = 0) -> dict[int, int]:
    """A Prometheus native-histogram bucket list as OTel indices.

    Prometheus' bucket index i covers (base**(i-1), base**i]; OTel's covers (base**i,
    base**(i+1)]: the same bucket is OTel index i - 1.
    """
    del schema
    return {offset + k - 1: c for k, c in enumerate(buckets) if c}


# Test vectors ported from prometheus/prometheus promql/promqltest/testdata/native_histograms.test
# (single_histogram, negative_histogram, balanced_histogram, histogram_quantile_1/2/3,
# var_res_histogram, and the histogram_fraction round trips), with bucket lists converted by _prom.
Q1 = _exp(0, _prom(0, [2, 3, 0, 1, 4]), zero=2, threshold=0.001)
Q2 = _exp(0, negative=_prom(0, [2, 3, 0, 1, 4]), zero=2, threshold=0.001)
Q3 = _exp(0, _prom(0, [2, 3, 0, 1, 4]), _prom(0, [2, 3, 0, 1, 4]), zero=4, threshold=0.001)
NATIVE_VECTORS: list[tuple[str, ExpHistogram, float, float, float]] = [
    ("single_histogram", _exp(0, _prom(0, [1, 2, 1])), 0.5, 1.414213562373095, 1e-12),
    ("negative_histogram", _exp(0, negative=_prom(0, [1, 2, 1])), 0.5, -1.414213562373095, 1e-12),
    ("balanced_histogram", _exp(0, _prom(0, [1, 2, 1]), _prom(0, [1, 2, 1])), 0.5, 0.5, 1e-12),
    *[
        ("histogram_quantile_1", Q1, q, v, 1e-12)
        for q, v in [
            (1.001, INF),
            (1, 16),
            (0.99, 15.67072476139083),
            (0.9, 12.99603834169977),
            (0.6, 4.594793419988138),
            (0.5, 1.5874010519681994),
            (0.1, 0.0006),
            (0, 0),
            (-1, -INF),
            (0.08333333333333333, 0.0005),
            (0.6320802083934297, 6),
        ]
    ],
    *[
        ("histogram_quantile_2", Q2, q, v, 1e-12)
        for q, v in [
            (1.001, INF),
            (1, 0),
            (0.99, -0.00006),
            (0.9, -0.0006),
            (0.5, -1.5874010519681996),
            (0.1, -12.996038341699768),
            (0, -16),
            (-1, -INF),
            (0.9166666666666666, -0.0005),
            (0.36791979160657035, -6),
        ]
    ],
    *[
        ("histogram_quantile_3", Q3, q, v, 1e-12)
        for q, v in [
            (1.001, INF),
            (1, 16),
            (0.99, 15.34822590920423),
            (0.9, 10.556063286183155),
            (0.7, 1.2030250360821164),
            (0.55, 0.0006),
            (0.5, 0),
            (0.45, -0.0006),
            (0.3, -1.2030250360821169),
            (0.1, -10.556063286183155),
            (0.01, -15.34822590920423),
            (0, -16),
            (-1, -INF),
            (0.5416666666666666, 0.0005),
            (0.4583333333333333, -0.0005),
        ]
    ],
    *[
        (f"var_res_histogram schema {s} {layout}", _exp(s, _prom(s, layout)), 0.5, v, rel)
        for s, layout, v, rel in [
            (-1, [0, 5], 2.0, 1e-12),
            (0, [0, 5], 1.4142135623730951, 1e-12),
            (1, [0, 5], 1.189207, 1e-6),
            (-1, [0, 0, 5], 8.0, 1e-12),
            (0, [0, 0, 5], 2.82842712474619, 1e-12),
            (1, [0, 0, 5], 1.6817928305074292, 1e-12),
        ]
    ],
    *[
        (f"var_res_histogram negative schema {s} {layout}", _exp(s, negative=_prom(s, layout)), 0.5, v, rel)
        for s, layout, v, rel in [
            (-1, [0, 5], -2.0, 1e-12),
            (0, [0, 5], -1.4142135623730951, 1e-12),
            (1, [0, 5], -1.189207, 1e-6),
            (-1, [0, 0, 5], -8.0, 1e-12),
            (0, [0, 0, 5], -2.82842712474619, 1e-12),
            (1, [0, 0, 5], -1.6817928305074292, 1e-12),
        ]
    ],
]


@pytest.mark.parametrize(
    ("name", "h", "q", "expected", "rel"), NATIVE_VECTORS, ids=[f"{v[0]}-q{v[2]}" for v in NATIVE_VECTORS]
)
def test_exp_quantile_matches_prometheus_native_histogram_vectors(
    name: str, h: ExpHistogram, q: float, expected: float, rel: float
) -> None:
    _assert_float(exp_quantile(h, q), expected, rel=rel)


def test_exp_quantile_edge_cases() -> None:
    empty = _exp(3)
    assert math.isnan(exp_quantile(empty, 0.5))
    assert exp_quantile(empty, -0.5) == -INF
    assert math.isnan(exp_quantile(Q1, NAN))
    assert exp_quantile(_exp(2, zero=5), 0.9) == 0.0  # zero bucket, threshold 0


def test_exp_histogram_validation() -> None:
    with pytest.raises(ValueError, match="scale"):
        _exp(21)
    with pytest.raises(ValueError, match=">= 0"):
        ExpHistogram(0, 0, 0, np.array([1, -1]), 0, np.zeros(0, dtype=np.int64))
    with pytest.raises(ValueError, match="up to"):
        downscale(_exp(2, {1: 1}), 3)
    h = _exp(0, {1: 1})
    assert h.base == 2.0
    assert _exp(-10).base == INF


offsets_and_counts = st.tuples(st.integers(-(2**20), 2**20), st.lists(st.integers(0, 10**12), max_size=40))


@settings(deadline=None, max_examples=200)
@given(st.integers(-10, 20), st.data(), offsets_and_counts, offsets_and_counts, st.integers(0, 10**6))
def test_downscale_conserves_counts_and_nests_buckets(
    scale: int, data: st.DataObject, pos: tuple[int, list[int]], neg: tuple[int, list[int]], zero: int
) -> None:
    target = data.draw(st.integers(-10, scale), label="target scale")
    h = ExpHistogram(scale, zero, pos[0], np.array(pos[1], dtype=np.int64), neg[0], np.array(neg[1], dtype=np.int64))
    d = downscale(h, target)
    assert d.scale == target
    assert d.zero_count == zero
    assert d.count == h.count
    shift = scale - target
    for offset, counts, new_offset, new_counts in (
        (h.positive_offset, h.positive, d.positive_offset, d.positive),
        (h.negative_offset, h.negative, d.negative_offset, d.negative),
    ):
        assert int(new_counts.sum()) == int(counts.sum())
        expected: dict[int, int] = {}
        for k, c in enumerate(counts.tolist()):
            i = offset + k
            j = i // 2**shift  # floor division: the coarser bucket that contains bucket i
            # Bucket i at scale s is (2**(i/2**s), 2**((i+1)/2**s)]; bucket j at scale s - shift is
            # (2**(j*2**shift/2**s), 2**((j+1)*2**shift/2**s)]: containment is this index inequality.
            assert j * 2**shift <= i and i + 1 <= (j + 1) * 2**shift
            expected[j] = expected.get(j, 0) + c
        got = {new_offset + k: c for k, c in enumerate(new_counts.tolist())}
        assert {j: c for j, c in got.items() if c} == {j: c for j, c in expected.items() if c}


@st.composite
def exp_histograms(draw: st.DrawFn) -> ExpHistogram:
    """Histograms whose indices stay within the float64 range at their scale (|index| <= 2**(scale + 10))."""
    scale = draw(st.integers(-10, 20))
    limit = 2 ** (scale + 10)
    sides = []
    for _ in range(2):
        offset = draw(st.integers(-limit, limit))
        counts = draw(st.lists(st.integers(0, 10**12), max_size=min(40, limit - offset + 1)))
        sides.append((offset, np.array(counts, dtype=np.int64)))
    (po, p), (no, n) = sides
    return ExpHistogram(scale, draw(st.integers(0, 1000)), po, p, no, n)


@settings(deadline=None, max_examples=200)
@given(exp_histograms(), exp_histograms(), st.integers(3, 200))
def test_merge_exp_conserves_counts_and_fits(a: ExpHistogram, b: ExpHistogram, max_buckets: int) -> None:
    m = merge_exp(a, b, max_buckets)
    assert m.count == a.count + b.count
    assert m.zero_count == a.zero_count + b.zero_count
    assert m.scale <= min(a.scale, b.scale)
    assert m.positive.size <= max_buckets
    assert m.negative.size <= max_buckets
    # Downscaling both inputs to the merged scale and adding gives the same buckets.
    for side in ("positive", "negative"):
        want: dict[int, int] = {}
        for h in (downscale(a, m.scale), downscale(b, m.scale)):
            for k, c in enumerate(getattr(h, side).tolist()):
                want[getattr(h, f"{side}_offset") + k] = want.get(getattr(h, f"{side}_offset") + k, 0) + c
        got = {getattr(m, f"{side}_offset") + k: c for k, c in enumerate(getattr(m, side).tolist())}
        assert {j: c for j, c in got.items() if c} == {j: c for j, c in want.items() if c}
    # The highest scale that fits: one scale finer would not (unless limited by the inputs).
    if m.scale < min(a.scale, b.scale):
        finer = merge_exp(downscale(a, m.scale + 1), downscale(b, m.scale + 1), 10**9)
        assert max(finer.positive.size, finer.negative.size) > max_buckets


def test_merge_exp_downscales_to_fit_and_widens_the_zero_bucket() -> None:
    a = _exp(3, {0: 1, 100: 2})
    b = _exp(5, {7: 4}, zero=1, threshold=2.0**-2)
    tiny = _exp(3, {-40: 5, -10: 1})  # values near 2**-5 and 2**-1.25
    m = merge_exp(a, b, max_buckets=40)
    assert m.scale == 1  # range at scale 3 is 0..100 (101 buckets), at 2: 51, at 1: 26
    assert m.count == 8
    w = merge_exp(tiny, b)
    assert w.zero_threshold == 0.25
    assert w.zero_count == 1 + 5  # bucket -40 at scale 3 is (2**-5, 2**-4.875], wholly below 0.25
    assert int(w.positive.sum()) == 1 + 4
    with pytest.raises(ValueError, match="cannot fit"):
        merge_exp(_exp(0, {-1100: 1, 1000: 1}), _exp(0), max_buckets=2)


def _otel_histogram(values: npt.NDArray[np.float64], scale: int) -> ExpHistogram:
    """Values bucketed with the OTel mapping index = ceil(log2(|v|) * 2**scale) - 1, threshold 0."""

    def side(v: npt.NDArray[np.float64]) -> tuple[int, npt.NDArray[np.int64]]:
        if v.size == 0:
            return 0, np.zeros(0, dtype=np.int64)
        idx = np.ceil(np.log2(v) * 2.0**scale).astype(np.int64) - 1
        return int(idx.min()), np.bincount(idx - idx.min()).astype(np.int64)

    po, p = side(values[values > 0])
    no, n = side(-values[values < 0])
    return ExpHistogram(scale, int(np.count_nonzero(values == 0)), po, p, no, n)


signed_values = st.tuples(
    st.floats(math.log(1e-3), math.log(1e9)).map(math.exp), st.sampled_from([-1.0, 1.0, 1.0, 0.0])
)


@settings(deadline=None, max_examples=200)
@given(
    st.lists(signed_values, min_size=1, max_size=80),
    st.lists(signed_values, max_size=80),
    st.integers(-3, 12),
    st.integers(-3, 12),
    st.sampled_from([0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.0, 1.0]),
)
def test_exp_quantile_within_stated_bound(
    a_vals: list[tuple[float, float]], b_vals: list[tuple[float, float]], scale_a: int, scale_b: int, q: float
) -> None:
    a = np.array([m * s for m, s in a_vals])
    b = np.array([m * s for m, s in b_vals])
    merged = merge_exp(_otel_histogram(a, scale_a), _otel_histogram(b, scale_b))
    for h, raw in ((_otel_histogram(a, scale_a), a), (merged, np.concatenate((a, b)))):
        n = raw.size
        rank = max(1, math.ceil(q * n)) if q < 0.5 else n + 1 - max(1, math.ceil((1 - q) * n))
        x = float(np.sort(raw)[rank - 1])
        estimate = exp_quantile(h, q)
        bound = (h.base - 1.0) * abs(x)
        assert abs(estimate - x) <= bound * (1 + 1e-9), (estimate, x, h.scale, q)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(min_value=-5, max_value=1e6, allow_nan=False), min_size=1, max_size=8, unique=True),
    st.lists(st.lists(st.integers(min_value=0, max_value=50), min_size=9, max_size=9), min_size=1, max_size=6),
    st.sampled_from([0.0, 0.01, 0.25, 0.5, 0.9, 0.99, 1.0, -0.1, 1.1, math.nan]),
)
def test_explicit_quantile_rows_equals_the_scalar_port(bounds: list[float], rows: list[list[int]], q: float) -> None:
    b = sorted(bounds)
    counts = np.array([r[: len(b) + 1] for r in rows], dtype=np.float64)
    expected = [explicit_quantile(b, row, q) for row in counts]
    np.testing.assert_array_equal(explicit_quantile_rows(b, counts, q), np.array(expected))


def test_explicit_quantile_rows_takes_the_envelope_path_for_negative_buckets() -> None:
    b = [1.0, 2.0, 4.0]
    counts = np.array([[3.0, -1.0, 5.0, 0.0], [0.0, 2.0, 2.0, 1.0], [0.5, 0.25, 1e-13, 0.0]])
    expected = [explicit_quantile(b, row, 0.7) for row in counts]
    np.testing.assert_array_equal(explicit_quantile_rows(b, counts, 0.7), np.array(expected))
