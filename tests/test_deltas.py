"""Laws of analysis.deltas: cumulative-to-delta conservation across resets, order independence,
histogram bucket deltas, and exact numbers for gauge resampling and rates."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.deltas import GaugeAgg, cumulative_to_delta, delta_to_rate, histogram_deltas, resample_gauge

NS = 1_000_000_000
_SERIES_KEYS: list[tuple[str, str | None]] = [("a", "x"), ("a", None), ("b", "x"), ("b", None)]
_LAYOUTS: list[list[float]] = [[], [1.0], [1.0, 5.0], [0.5, 5.0, 50.0]]


def _ns(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.Int64).cast(pl.Datetime("ns"))


def _counter_frame(times: list[int], starts: list[int | None], values: list[float], **keys: object) -> pl.DataFrame:
    frame = pl.DataFrame(
        {"time": times, "start_time": starts, "value": values},
        schema={"time": pl.Int64, "start_time": pl.Int64, "value": pl.Float64},
    ).with_columns(_ns("time"), _ns("start_time"))
    return frame.with_columns(pl.lit(v, dtype=pl.String).alias(k) for k, v in keys.items())


@dataclass
class _Counter:
    """A generated cumulative counter series and what a correct conversion must give."""

    times: list[int] = field(default_factory=list)
    starts: list[int | None] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    resets: list[bool] = field(default_factory=list)
    increase: float = 0.0
    """Sum of the deltas a correct conversion knows: the first point if its start is known, then every step."""


@st.composite
def _counters(draw: st.DrawFn) -> _Counter:
    has_start = draw(st.booleans())
    t = draw(st.integers(1, 10**6)) * NS
    start = t - draw(st.integers(0, 10**9)) if has_start else None
    v = draw(st.integers(0, 1000))
    first_known = start is not None and start < t
    c = _Counter([t], [start], [float(v)], [first_known], float(v) if first_known else 0.0)
    kinds = ["inc", "drop", "restart"] if has_start else ["inc", "drop"]
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(kinds))
        if kind == "drop" and v == 0:
            kind = "inc"
        t_next = t + draw(st.integers(1, 10**10))
        if kind == "inc":
            step = draw(st.integers(0, 1000))
            v += step
            c.increase += step
        elif kind == "drop":  # the counter fell back without a new start time: only the drop tells
            v = draw(st.integers(0, v - 1))
            c.increase += v
        else:  # a restart: new start time, the new value may be above the old one
            start = t + 1
            v = draw(st.integers(0, 5000))
            c.increase += v
        t = t_next
        c.times.append(t)
        c.starts.append(start)
        c.values.append(float(v))
        c.resets.append(kind != "inc")
    return c


@settings(deadline=None)
@given(_counters())
def test_counter_deltas_conserve_total_increase(c: _Counter) -> None:
    frame = _counter_frame(c.times, c.starts, c.values, metric_name="m")
    out = cumulative_to_delta(frame, ["metric_name"])
    assert out["reset"].to_list() == c.resets
    deltas = out["delta"].to_list()
    assert (deltas[0] is None) != c.resets[0], "the first delta is known exactly when its start is"
    assert all(d is not None and d >= 0 for d in deltas[1:])
    assert out["delta"].sum() == c.increase
    no_keys = cumulative_to_delta(frame.drop("metric_name"), [])
    assert no_keys["delta"].to_list() == deltas


@settings(deadline=None)
@given(st.lists(_counters(), min_size=1, max_size=len(_SERIES_KEYS)), st.randoms(use_true_random=False))
def test_interleaved_series_are_independent_of_row_order(counters: list[_Counter], rnd: random.Random) -> None:
    frames = [
        _counter_frame(c.times, c.starts, c.values, metric_name=m, service_name=s)
        for c, (m, s) in zip(counters, _SERIES_KEYS, strict=False)
    ]
    ordered = pl.concat(frames)
    order = list(range(ordered.height))
    rnd.shuffle(order)
    shuffled = ordered[order]
    keys = ["metric_name", "service_name"]
    out = cumulative_to_delta(shuffled, keys)
    assert out.equals(cumulative_to_delta(ordered, keys))
    for c, frame, (m, s) in zip(counters, frames, _SERIES_KEYS, strict=False):
        mine = out.filter((pl.col("metric_name") == m) & pl.col("service_name").eq_missing(s))
        alone = cumulative_to_delta(frame, keys)
        assert mine.equals(alone)
        assert mine["reset"].to_list() == c.resets
        assert mine["delta"].sum() == c.increase


def test_start_time_change_with_higher_value_is_a_reset() -> None:
    times = [10 * NS, 20 * NS, 30 * NS]
    restarted = _counter_frame(times, [0, 15 * NS, 15 * NS], [10.0, 20.0, 25.0], metric_name="m")
    out = cumulative_to_delta(restarted, ["metric_name"])
    assert out["reset"].to_list() == [True, True, False]
    assert out["delta"].to_list() == [10.0, 20.0, 5.0]
    # The same values under one start time are plain increments: the start time made the difference.
    same = cumulative_to_delta(restarted.with_columns(_ns_lit(0).alias("start_time")), ["metric_name"])
    assert same["delta"].to_list() == [10.0, 10.0, 5.0]
    assert same["reset"].to_list() == [True, False, False]


def _ns_lit(ns: int) -> pl.Expr:
    return pl.lit(ns, dtype=pl.Int64).cast(pl.Datetime("ns"))


@pytest.mark.parametrize(
    ("start", "delta", "reset"),
    [(None, None, False), (5 * NS, None, False), (4 * NS, 7.0, True)],
    ids=["no-start", "start-equals-time", "start-before-time"],
)
def test_first_point_delta_is_known_only_from_an_earlier_start(
    start: int | None, delta: float | None, reset: bool
) -> None:
    out = cumulative_to_delta(_counter_frame([5 * NS, 6 * NS], [start, start], [7.0, 9.0], metric_name="m"), [])
    assert out["delta"].to_list() == [delta, 2.0]
    assert out["reset"].to_list() == [reset, False]


@dataclass
class _Histogram:
    """A generated cumulative histogram series and the per-row deltas a correct conversion gives."""

    times: list[int] = field(default_factory=list)
    starts: list[int | None] = field(default_factory=list)
    sums: list[float] = field(default_factory=list)
    bounds: list[list[float]] = field(default_factory=list)
    buckets: list[list[int]] = field(default_factory=list)
    resets: list[bool] = field(default_factory=list)
    delta_buckets: list[list[int] | None] = field(default_factory=list)

    def frame(self, **keys: object) -> pl.DataFrame:
        frame = pl.DataFrame(
            {
                "time": self.times,
                "start_time": self.starts,
                "count": [sum(b) for b in self.buckets],
                "sum": self.sums,
                "bounds": self.bounds,
                "bucket_counts": self.buckets,
            },
            schema={
                "time": pl.Int64,
                "start_time": pl.Int64,
                "count": pl.UInt64,
                "sum": pl.Float64,
                "bounds": pl.List(pl.Float64),
                "bucket_counts": pl.List(pl.UInt64),
            },
        ).with_columns(_ns("time"), _ns("start_time"))
        return frame.with_columns(pl.lit(v, dtype=pl.String).alias(k) for k, v in keys.items())


def _counts(n: int) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(0, 50), min_size=n, max_size=n)


@st.composite
def _histograms(draw: st.DrawFn) -> _Histogram:
    has_start = draw(st.booleans())
    t = draw(st.integers(1, 10**6)) * NS
    start = t - draw(st.integers(0, 10**9)) if has_start else None
    bounds = draw(st.sampled_from(_LAYOUTS))
    buckets = draw(_counts(len(bounds) + 1))
    total = float(draw(st.integers(0, 10**4)))
    first_known = start is not None and start < t
    h = _Histogram([t], [start], [total], [bounds], [buckets], [first_known], [buckets if first_known else None])
    for _ in range(draw(st.integers(0, 20))):
        kind = draw(st.sampled_from(["inc", "drop", "bucket_drop", "restart", "relayout"]))
        if kind == "drop" and sum(buckets) == 0:
            kind = "inc"
        if kind == "bucket_drop" and (len(buckets) < 2 or max(buckets) == 0):
            kind = "inc"
        if kind == "restart" and start is None:
            kind = "relayout"
        t_prev, t = t, t + draw(st.integers(1, 10**10))
        if kind == "inc":
            step = draw(_counts(len(buckets)))
            buckets = [b + s for b, s in zip(buckets, step, strict=True)]
            total += draw(st.integers(0, 1000))
            h.delta_buckets.append(step)
        else:
            if kind == "drop":  # fewer observations in total, same start time
                new = [draw(st.integers(0, b)) for b in buckets]
                if sum(new) == sum(buckets):
                    new[buckets.index(max(buckets))] -= 1
            elif kind == "bucket_drop":  # one bucket falls while the count rises
                j = next(i for i, b in enumerate(buckets) if b > 0)
                new = list(buckets)
                new[j] -= draw(st.integers(1, buckets[j]))
                new[(j + 1) % len(new)] += buckets[j] + draw(st.integers(1, 10))
            elif kind == "restart":
                start = t_prev + 1  # differs from every earlier start, which is at most t_prev
                new = draw(_counts(len(buckets)))
            else:  # new bucket bounds: a reset even when every count looks like growth
                bounds = draw(st.sampled_from([b for b in _LAYOUTS if b != bounds]))
                new = draw(_counts(len(bounds) + 1))
            buckets = new
            total = float(draw(st.integers(0, 10**4)))
            h.delta_buckets.append(new)
        h.times.append(t)
        h.starts.append(start)
        h.sums.append(total)
        h.bounds.append(bounds)
        h.buckets.append(buckets)
        h.resets.append(kind != "inc")
    return h


@settings(deadline=None)
@given(st.lists(_histograms(), min_size=1, max_size=len(_SERIES_KEYS)), st.randoms(use_true_random=False))
def test_histogram_bucket_deltas_sum_to_count_and_conserve_totals(hists: list[_Histogram], rnd: random.Random) -> None:
    frames = [h.frame(metric_name=m, service_name=s) for h, (m, s) in zip(hists, _SERIES_KEYS, strict=False)]
    ordered = pl.concat(frames)
    order = list(range(ordered.height))
    rnd.shuffle(order)
    keys = ["metric_name", "service_name"]
    out = histogram_deltas(ordered[order], keys)
    assert out.schema["delta_count"] == pl.Int64
    assert out.schema["delta_buckets"] == pl.List(pl.Int64)
    for h, (m, s) in zip(hists, _SERIES_KEYS, strict=False):
        mine = out.filter((pl.col("metric_name") == m) & pl.col("service_name").eq_missing(s))
        assert mine["reset"].to_list() == h.resets
        assert mine["delta_buckets"].to_list() == h.delta_buckets
        known = mine.filter(pl.col("delta_count").is_not_null())
        assert known["delta_count"].to_list() == [sum(b) for b in h.delta_buckets if b is not None]
        assert known["delta_buckets"].list.sum().to_list() == known["delta_count"].to_list()
        # Conservation: the increase in count over the series is the sum of the delta counts.
        true_increase = sum(sum(b) for b in h.delta_buckets if b is not None)
        assert mine["delta_count"].sum() == true_increase


def test_histogram_bounds_change_is_a_reset() -> None:
    h = _Histogram(
        times=[1 * NS, 2 * NS, 3 * NS, 4 * NS],
        starts=[None] * 4,
        sums=[10.0, 15.0, 40.0, 46.0],
        bounds=[[1.0, 5.0], [1.0, 5.0], [1.0, 10.0], [1.0, 10.0]],
        buckets=[[1, 2, 3], [2, 4, 3], [5, 5, 5], [5, 6, 7]],
    )
    out = histogram_deltas(h.frame(metric_name="m"), ["metric_name"])
    assert out["reset"].to_list() == [False, False, True, False]
    assert out["delta_count"].to_list() == [None, 3, 15, 3]
    assert out["delta_sum"].to_list() == [None, 5.0, 40.0, 6.0]
    assert out["delta_buckets"].to_list() == [None, [1, 2, 0], [5, 5, 5], [0, 1, 2]]


def test_histogram_bucket_going_down_is_a_reset_even_when_count_rises() -> None:
    h = _Histogram(
        times=[1 * NS, 2 * NS],
        starts=[0, 0],
        sums=[3.0, 9.0],
        bounds=[[1.0], [1.0]],
        buckets=[[2, 1], [1, 5]],
    )
    out = histogram_deltas(h.frame(metric_name="m"), ["metric_name"])
    assert out["reset"].to_list() == [True, True]
    assert out["delta_count"].to_list() == [3, 6]
    assert out["delta_buckets"].to_list() == [[2, 1], [1, 5]]


def test_histogram_without_buckets_resets_on_count_going_down() -> None:
    # OTLP allows a histogram of count and sum only (no bounds, no buckets).
    h = _Histogram(
        times=[1 * NS, 2 * NS, 3 * NS], starts=[None] * 3, sums=[5.0, 9.0, 1.0], bounds=[[]] * 3, buckets=[[]] * 3
    )
    frame = h.frame(metric_name="m").with_columns(count=pl.Series([5, 7, 2], dtype=pl.UInt64))
    out = histogram_deltas(frame, ["metric_name"])
    assert out["reset"].to_list() == [False, False, True]
    assert out["delta_count"].to_list() == [None, 2, 2]
    assert out["delta_sum"].to_list() == [None, 4.0, 1.0]
    assert out["delta_buckets"].to_list() == [None, [], []]


def _gauge_frame() -> pl.DataFrame:
    # Series "a": buckets [0,10) -> 1, 8, 3 (latest at 9 s is 3); [10,20) empty; [20,30) -> 4, 8.
    # Series "b": bucket [0,10) -> 7.
    return pl.DataFrame(
        {
            "metric_name": ["a", "a", "a", "a", "a", "b"],
            "time": [0 * NS, 9 * NS, 2 * NS, 25 * NS + 1, 29 * NS, 3 * NS],
            "value": [1.0, 3.0, 8.0, 4.0, 8.0, 7.0],
        },
        schema={"metric_name": pl.String, "time": pl.Int64, "value": pl.Float64},
    ).with_columns(_ns("time"))


@pytest.mark.parametrize(
    ("agg", "expected"),
    [("mean", [4.0, 6.0, 7.0]), ("max", [8.0, 8.0, 7.0]), ("min", [1.0, 4.0, 7.0]), ("last", [3.0, 8.0, 7.0])],
)
def test_resample_gauge_aggregates_each_bucket(agg: GaugeAgg, expected: list[float]) -> None:
    out = resample_gauge(_gauge_frame(), ["metric_name"], every_s=10, agg=agg)
    assert out.columns == ["metric_name", "time", "value", "samples"]
    assert out["metric_name"].to_list() == ["a", "a", "b"]
    assert out.select(pl.col("time").dt.epoch("ns"))["time"].to_list() == [0, 20 * NS, 0]  # [10,20) is absent
    assert out["value"].to_list() == expected
    assert out["samples"].to_list() == [3, 2, 1]
    assert out.schema["samples"] == pl.UInt32


@settings(deadline=None)
@given(st.permutations(range(6)))
def test_resample_gauge_last_picks_latest_point_whatever_the_row_order(order: list[int]) -> None:
    out = resample_gauge(_gauge_frame()[order], ["metric_name"], every_s=10, agg="last")
    assert out["value"].to_list() == [3.0, 8.0, 7.0]


def test_delta_to_rate_sums_deltas_per_bucket_per_second() -> None:
    deltas = pl.DataFrame(
        {
            "metric_name": ["a", "a", "a", "a", "b", "b"],
            "time": [0, 30 * NS, 59 * NS, 60 * NS, 10 * NS, 70 * NS],
            "delta": [None, 30.0, 90.0, 6.0, 12.0, None],
        },
        schema={"metric_name": pl.String, "time": pl.Int64, "delta": pl.Float64},
    ).with_columns(_ns("time"))
    out = delta_to_rate(deltas, ["metric_name"], every_s=60)
    assert out.columns == ["metric_name", "time", "rate_per_s"]
    assert out["metric_name"].to_list() == ["a", "a", "b"]  # b's second bucket holds only a null delta
    assert out.select(pl.col("time").dt.epoch("ns"))["time"].to_list() == [0, 60 * NS, 0]
    assert out["rate_per_s"].to_list() == [2.0, 0.1, 0.2]


def test_nonpositive_bucket_width_is_refused() -> None:
    with pytest.raises(ValueError, match="every_s"):
        delta_to_rate(pl.DataFrame(), [], every_s=0)
