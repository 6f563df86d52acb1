"""Cumulative-to-delta conversion, gauge resampling and rates over polars frames.

The collector keeps OTLP metrics as sent (DESIGN.md): cumulative counters and histograms
arrive as running totals since a start time. Detectors want increments per interval, so
this module turns each series of cumulative points into deltas, detecting resets (a
process restart, a counter that rolled back) from the start time or from a total that
went down.

Conservation law: for every series, the true increase of the counter over the rows
after the first one equals the sum of the non-null ``delta`` values after the first row,
resets included (a reset contributes everything counted since the restart). Summing the
deltas over any window therefore gives that window's increase; ``tests/test_deltas.py``
checks this property on random counters with random resets.

A series is the set of rows sharing the values of ``keys`` (nulls form their own group).
All functions are pure: a frame in, a new frame out, sorted by ``keys`` then ``time``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import polars as pl

__all__ = ["cumulative_to_delta", "delta_to_rate", "histogram_deltas", "resample_gauge"]

_TMP = "__deltas_"
"""Prefix of intermediate columns; they never reach the output."""

GaugeAgg = Literal["last", "mean", "max", "min"]


def _over(expr: pl.Expr, keys: list[str]) -> pl.Expr:
    """``expr`` evaluated per series; with no keys the whole frame is one series."""
    return expr.over(keys) if keys else expr


def _first_and_known_start(keys: list[str]) -> tuple[pl.Expr, pl.Expr]:
    """(is the first point of its series, has a start time strictly before its time)."""
    is_first = _over(pl.int_range(pl.len()), keys) == 0
    known_start = (pl.col("start_time").is_not_null() & (pl.col("start_time") < pl.col("time"))).fill_null(False)
    return is_first, known_start


def _start_changed(keys: list[str]) -> pl.Expr:
    """True where both this and the previous point carry a start time and they differ."""
    prev_start = _over(pl.col("start_time").shift(1), keys)
    return (pl.col("start_time") != prev_start).fill_null(False)


def cumulative_to_delta(points: pl.DataFrame, keys: Sequence[str], *, value: str = "value") -> pl.DataFrame:
    """Return ``points`` sorted by ``keys`` then ``time`` with ``delta`` (Float64) and ``reset`` (Boolean) added.

    ``points`` holds cumulative counter points: the ``keys`` columns (which identify a
    series, e.g. ``metric_name``, ``service_name``, ``attributes``), ``time`` and
    ``start_time`` (Datetime, ns; ``start_time`` nullable) and ``value`` (Float64, the
    running total in the metric's unit). Rows may come in any order.

    Per series, in time order, ``delta`` is the increase since the previous point, in the
    metric's unit (not per second). A *reset* is a point whose start time differs from the
    previous point's (both non-null) or whose value went down; there ``delta = value``,
    i.e. everything counted since the restart, and ``reset`` is True. The first point of a
    series has ``delta = value`` and ``reset = True`` when its start time is known and
    earlier than its time (counted since the start); otherwise ``delta`` is null (no
    baseline) and ``reset`` is False.

    Conservation: the sum of the non-null deltas over a window is the counter's total
    increase over that window. Rows with equal ``time`` in one series are ordered by
    ``start_time`` then ``value`` so that the result does not depend on input order.
    """
    keys = list(keys)
    v = pl.col(value)
    prev_v = _over(v.shift(1), keys)
    is_first, known_start = _first_and_known_start(keys)
    went_down = (v < prev_v).fill_null(False)
    reset = pl.when(is_first).then(known_start).otherwise(_start_changed(keys) | went_down)
    return (
        points.lazy()
        .sort([*keys, "time", "start_time", value], nulls_last=False, maintain_order=True)
        .with_columns(reset.alias(f"{_TMP}reset"), prev_v.alias(f"{_TMP}prev"), is_first.alias(f"{_TMP}first"))
        .with_columns(
            delta=pl.when(pl.col(f"{_TMP}reset"))
            .then(v)
            .when(pl.col(f"{_TMP}first"))
            .then(pl.lit(None, dtype=pl.Float64))
            .otherwise(v - pl.col(f"{_TMP}prev"))
            .cast(pl.Float64),
            reset=pl.col(f"{_TMP}reset"),
        )
        .drop(f"{_TMP}reset", f"{_TMP}prev", f"{_TMP}first")
        .collect()
    )


def histogram_deltas(points: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """Return ``points`` sorted by ``keys`` then ``time`` with per-interval histogram deltas added.

    ``points`` holds cumulative explicit-bucket histogram points: the ``keys`` columns,
    ``time`` and ``start_time`` (Datetime, ns; ``start_time`` nullable), ``count``
    (UInt64/Int64, observations), ``sum`` (Float64, nullable, in the metric's unit),
    ``bounds`` (List[Float64], the explicit bucket bounds) and ``bucket_counts``
    (List[UInt64/Int64], one more than ``bounds``).

    Added columns: ``delta_count`` (Int64, observations in the interval), ``delta_sum``
    (Float64, metric unit; null when either sum is null), ``delta_buckets``
    (List[Int64], observations per bucket in the interval) and ``reset`` (Boolean).

    The rules of :func:`cumulative_to_delta` apply, with a reset also on a count that went
    down, on ANY bucket count that went down, or on a changed bucket layout (different
    ``bounds`` or a different number of buckets): the point's own count, sum and buckets
    are then the delta. The first point of a series has null deltas unless its start time
    is known and earlier than its time (then it is a reset). For a well-formed series the
    per-bucket deltas of every row sum to its ``delta_count``, and the delta counts
    conserve the total across resets as in :func:`cumulative_to_delta`.
    """
    keys = list(keys)
    count = pl.col("count").cast(pl.Int64)
    buckets = pl.col("bucket_counts").cast(pl.List(pl.Int64))
    prev_count = _over(count.shift(1), keys)
    prev_sum = _over(pl.col("sum").shift(1), keys)
    prev_bounds = _over(pl.col("bounds").shift(1), keys)
    prev_buckets_raw = _over(buckets.shift(1), keys)
    same_bucket_count = buckets.list.len() == prev_buckets_raw.list.len()
    same_layout = ((pl.col("bounds") == prev_bounds) & same_bucket_count).fill_null(False)
    # Null where the layouts differ, so the list subtraction below never sees unequal lengths.
    prev_buckets = pl.when(same_layout).then(prev_buckets_raw)
    diff_buckets = pl.col(f"{_TMP}buckets") - pl.col(f"{_TMP}prev_buckets")
    bucket_went_down = (diff_buckets.list.min() < 0).fill_null(False)
    is_first, known_start = _first_and_known_start(keys)
    reset = (
        pl.when(pl.col(f"{_TMP}first"))
        .then(known_start)
        .otherwise(
            _start_changed(keys)
            | (count < pl.col(f"{_TMP}prev_count")).fill_null(False)
            | ~pl.col(f"{_TMP}same_layout")
            | bucket_went_down
        )
    )
    tmp_cols = ["buckets", "prev_buckets", "prev_count", "prev_sum", "same_layout", "first", "reset"]
    return (
        points.lazy()
        .sort([*keys, "time", "start_time", "count"], nulls_last=False, maintain_order=True)
        .with_columns(
            buckets.alias(f"{_TMP}buckets"),
            prev_buckets.alias(f"{_TMP}prev_buckets"),
            prev_count.alias(f"{_TMP}prev_count"),
            prev_sum.alias(f"{_TMP}prev_sum"),
            same_layout.alias(f"{_TMP}same_layout"),
            is_first.alias(f"{_TMP}first"),
        )
        .with_columns(reset.alias(f"{_TMP}reset"))
        .with_columns(
            delta_count=_reset_or_diff(count, count - pl.col(f"{_TMP}prev_count"), pl.Int64()),
            delta_sum=_reset_or_diff(pl.col("sum"), pl.col("sum") - pl.col(f"{_TMP}prev_sum"), pl.Float64()),
            delta_buckets=_reset_or_diff(pl.col(f"{_TMP}buckets"), diff_buckets, pl.List(pl.Int64())),
            reset=pl.col(f"{_TMP}reset"),
        )
        .drop([f"{_TMP}{c}" for c in tmp_cols])
        .collect()
    )


def _reset_or_diff(own: pl.Expr, diff: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """The point's own value on a reset, null on an unknown first point, else ``diff``."""
    return (
        pl.when(pl.col(f"{_TMP}reset"))
        .then(own.cast(dtype))
        .when(pl.col(f"{_TMP}first"))
        .then(pl.lit(None, dtype=dtype))
        .otherwise(diff.cast(dtype))
    )


def _check_every_s(every_s: int) -> None:
    if every_s <= 0:
        raise ValueError(f"every_s must be a positive number of seconds, got {every_s}")


def resample_gauge(
    points: pl.DataFrame,
    keys: Sequence[str],
    *,
    every_s: int,
    agg: GaugeAgg = "mean",
    value: str = "value",
) -> pl.DataFrame:
    """Return one row per series and ``every_s``-second bucket: ``keys``, ``time``, ``value``, ``samples``.

    ``time`` is the bucket start (``time`` truncated to ``every_s`` seconds from the Unix
    epoch, same dtype as the input), the ``value`` column (named as the input's, in its
    unit) is aggregated by ``agg``: ``mean``, ``max``, ``min`` of the bucket's points, or
    ``last``, the value at the latest time in the bucket (ties broken by the larger value,
    so the result does not depend on row order). ``samples`` (UInt32) is the number of
    points in the bucket. Rows are sorted by ``keys`` then ``time``.

    Buckets without points are absent, not forward-filled: a gap means the source stopped
    reporting (a crash, a scrape failure, a scaled-down instance), which is information a
    detector must see rather than a value to invent.
    """
    _check_every_s(every_s)
    keys = list(keys)
    v = pl.col(value)
    agg_expr = {
        "last": v.sort_by(["time", value], nulls_last=False).last(),
        "mean": v.mean(),
        "max": v.max(),
        "min": v.min(),
    }[agg]
    return (
        points.lazy()
        # A separate bucket column: `last` must still see each point's own time.
        .with_columns(pl.col("time").dt.truncate(f"{every_s}s").alias(f"{_TMP}bucket"))
        .group_by([*keys, f"{_TMP}bucket"])
        .agg(agg_expr.cast(pl.Float64).alias(value), pl.len().cast(pl.UInt32).alias("samples"))
        .rename({f"{_TMP}bucket": "time"})
        .sort([*keys, "time"])
        .collect()
    )


def delta_to_rate(deltas: pl.DataFrame, keys: Sequence[str], *, every_s: int) -> pl.DataFrame:
    """Return per-second rates: ``keys``, ``time`` (bucket start), ``rate_per_s`` (Float64, metric unit per second).

    ``deltas`` carries ``keys``, ``time`` and ``delta`` (as produced by
    :func:`cumulative_to_delta`). Per series and ``every_s``-second bucket (``time``
    truncated from the Unix epoch), ``rate_per_s`` is the sum of the bucket's deltas
    divided by ``every_s``. Rows whose delta is null (unknown baseline) are ignored; a
    bucket with no non-null delta is absent. Rows are sorted by ``keys`` then ``time``.
    """
    _check_every_s(every_s)
    keys = list(keys)
    return (
        deltas.lazy()
        .filter(pl.col("delta").is_not_null())
        .with_columns(pl.col("time").dt.truncate(f"{every_s}s"))
        .group_by([*keys, "time"])
        .agg((pl.col("delta").sum().cast(pl.Float64) / every_s).alias("rate_per_s"))
        .sort([*keys, "time"])
        .collect()
    )
