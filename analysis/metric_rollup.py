"""Per-minute rollups of metric points: counter increases, gauges, histogram deltas.

Cumulative points become deltas with reset detection (``analysis.deltas``); each series
(metric, service, attributes, resource, scope) looks back ``lookback_s`` for its previous
point. Deltas are then summed per (minute, metric, service, attributes): series that
differ only by resource (several instances of a service) add up. Delta-temporality points
are used as they are. Exponential histograms are few (batch jobs, one per run), so they
are merged per minute in Python after downscaling to a common scale.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from analysis.deltas import cumulative_to_delta, histogram_deltas
from analysis.histogram import ExpHistogram, merge_exp
from store.connection import fetch_arrow

SERIES = ["metric_name", "service_name", "attributes", "resource_attributes", "scope_name"]
OUT_KEY = ["minute", "metric_name", "service_name", "attributes"]


def _fetch(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object]) -> pl.DataFrame:
    frame = pl.from_arrow(fetch_arrow(con, sql, params))
    assert isinstance(frame, pl.DataFrame)
    return frame


def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    if frame.height == 0:
        return
    con.register("_rollup_frame", frame.to_arrow())
    try:
        cols = ", ".join(frame.columns)
        con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _rollup_frame")
    finally:
        con.unregister("_rollup_frame")


def _window(lo: datetime, hi: datetime, lookback_s: float) -> dict[str, object]:
    return {"lo": lo, "hi": hi, "lookback": lookback_s}


def rollup_sums(con: duckdb.DuckDBPyConnection, lo: datetime, hi: datetime, lookback_s: float) -> None:
    """Counter increase per minute into ``rollup_sums`` for sums (monotonic or not)."""
    points = _fetch(
        con,
        f"SELECT {', '.join(SERIES)}, time, start_time, value, temporality FROM metric_points "
        "WHERE kind = 'sum' AND time >= $lo::TIMESTAMP - to_seconds($lookback) AND time < $hi",
        _window(lo, hi, lookback_s),
    )
    if points.height == 0:
        return
    cumulative = cumulative_to_delta(points.filter(pl.col("temporality") == "cumulative"), SERIES)
    delta = points.filter(pl.col("temporality") != "cumulative").with_columns(
        delta=pl.col("value"), reset=pl.lit(False)
    )
    both = pl.concat([cumulative, delta.select(cumulative.columns)]).filter(pl.col("time") >= lo)
    out = (
        both.with_columns(minute=pl.col("time").dt.truncate("1m").cast(pl.Datetime("us")))
        .group_by(OUT_KEY)
        .agg(delta=pl.col("delta").sum(), resets=pl.col("reset").sum().cast(pl.Int32), points=pl.len().cast(pl.Int32))
    )
    _insert(con, "rollup_sums", out)


def rollup_gauges(con: duckdb.DuckDBPyConnection, lo: datetime, hi: datetime) -> None:
    """Gauge mean/last/min/max per minute into ``rollup_gauges``."""
    con.execute(
        """
        INSERT INTO rollup_gauges
        SELECT date_trunc('minute', time) AS minute, metric_name, service_name, attributes,
               avg(value), arg_max(value, time), min(value), max(value), count(*)
        FROM metric_points WHERE kind = 'gauge' AND time >= $lo AND time < $hi
        GROUP BY ALL
        """,
        {"lo": lo, "hi": hi},
    )


def rollup_histograms(con: duckdb.DuckDBPyConnection, lo: datetime, hi: datetime, lookback_s: float) -> None:
    """Explicit-bucket histogram deltas per minute into ``rollup_histograms``."""
    points = _fetch(
        con,
        f"SELECT {', '.join(SERIES)}, time, start_time, count, sum, bounds, bucket_counts, temporality "
        "FROM histogram_points WHERE time >= $lo::TIMESTAMP - to_seconds($lookback) AND time < $hi",
        _window(lo, hi, lookback_s),
    )
    if points.height == 0:
        return
    cumulative = histogram_deltas(points.filter(pl.col("temporality") == "cumulative"), SERIES)
    delta = points.filter(pl.col("temporality") != "cumulative").with_columns(
        delta_count=pl.col("count").cast(pl.Int64),
        delta_sum=pl.col("sum"),
        delta_buckets=pl.col("bucket_counts").cast(pl.List(pl.Int64)),
        reset=pl.lit(False),
    )
    both = (
        pl.concat([cumulative, delta.select(cumulative.columns)])
        .filter((pl.col("time") >= lo) & pl.col("delta_count").is_not_null())
        .with_columns(minute=pl.col("time").dt.truncate("1m").cast(pl.Datetime("us")))
    )
    if both.height == 0:
        return
    # A list column is slow to group and sort by: the bounds' hash stands in for them in the key. Most
    # (minute, series) keys hold one point (one instance, one export a minute): its buckets are the sum;
    # only keys with several points have their buckets summed index by index.
    key = [*OUT_KEY, "bounds_hash"]
    both = both.with_columns(bounds_hash=pl.col("bounds").hash()).with_columns(points=pl.len().over(key))
    several = both.filter(pl.col("points") > 1)
    per_bucket = pl.concat([
        both.filter(pl.col("points") == 1).select(*key, counts=pl.col("delta_buckets")),
        several.with_columns(i=pl.int_ranges(pl.col("delta_buckets").list.len()))
        .explode(["delta_buckets", "i"])
        .group_by([*key, "i"])
        .agg(pl.col("delta_buckets").sum())
        .sort([*key, "i"])
        .group_by(key, maintain_order=True)
        .agg(counts=pl.col("delta_buckets")),
    ])  # fmt: skip
    totals = both.group_by(key).agg(
        bounds=pl.col("bounds").first(),
        count=pl.col("delta_count").sum(),
        sum=pl.col("delta_sum").sum(),
        resets=pl.col("reset").sum().cast(pl.Int32),
    )
    rows = per_bucket.join(totals, on=key, nulls_equal=True).drop("bounds_hash")
    _insert(con, "rollup_histograms", rows)


def _exp(row: dict[str, Any]) -> ExpHistogram:
    return ExpHistogram(
        scale=int(row["scale"]),
        zero_count=int(row["zero_count"]),
        positive_offset=int(row["positive_offset"] or 0),
        positive=np.asarray(row["positive_counts"], dtype=np.int64),
        negative_offset=int(row["negative_offset"] or 0),
        negative=np.asarray(row["negative_counts"], dtype=np.int64),
    )


def merge_exp_points(rows: Iterable[dict[str, Any]], lo: Any) -> list[dict[str, Any]]:
    """Rollup rows (minute, metric_name, service_name, attributes, scale, zero and bucket counts, count,
    sum) from exponential histogram points ordered by series then time; minutes before ``lo`` (same type
    as the rows' ``minute``: a datetime in DuckDB, ns from ClickHouse) only provide previous points.

    Delta points are merged as they are; a cumulative point minus its series' previous
    point (same scale and a count that did not go down) is its delta, else a reset.
    """
    merged: dict[tuple[object, ...], tuple[ExpHistogram, int, float]] = {}
    previous: dict[tuple[object, ...], tuple[ExpHistogram, int, float]] = {}
    for row in rows:
        series = tuple(row[k] for k in SERIES)
        hist, count, total = _exp(row), int(row["count"]), float(row["sum"] or 0.0)
        delta, d_count, d_sum = hist, count, total
        if row["temporality"] == "cumulative":
            prev = previous.get(series)
            previous[series] = (hist, count, total)
            if prev is not None and prev[0].scale == hist.scale and count >= prev[1]:
                delta = _subtract(hist, prev[0])
                d_count, d_sum = count - prev[1], total - prev[2]
        if row["minute"] < lo:
            continue
        key = (row["minute"], row["metric_name"], row["service_name"], row["attributes"])
        if key in merged:
            h, c, s = merged[key]
            merged[key] = (merge_exp(h, delta), c + d_count, s + d_sum)
        else:
            merged[key] = (delta, d_count, d_sum)
    return [
        {
            "minute": k[0], "metric_name": k[1], "service_name": k[2], "attributes": k[3], "scale": h.scale,
            "zero_count": h.zero_count, "positive_offset": h.positive_offset, "positive_counts": h.positive.tolist(),
            "negative_offset": h.negative_offset, "negative_counts": h.negative.tolist(), "count": c, "sum": s,
        }
        for k, (h, c, s) in merged.items()
    ]  # fmt: skip


def rollup_exp_histograms(con: duckdb.DuckDBPyConnection, lo: datetime, hi: datetime, lookback_s: float) -> None:
    """Exponential histogram deltas merged per minute into ``rollup_exp_histograms`` (:func:`merge_exp_points`)."""
    rows = con.execute(
        f"SELECT {', '.join(SERIES)}, time, count, sum, scale, zero_count, positive_offset, positive_counts, "
        "negative_offset, negative_counts, temporality, date_trunc('minute', time) AS minute "
        "FROM exp_histogram_points WHERE time >= $lo::TIMESTAMP - to_seconds($lookback) AND time < $hi "
        f"ORDER BY {', '.join(SERIES)}, time",
        _window(lo, hi, lookback_s),
    ).fetchall()
    names = [d[0] for d in con.description or []]
    out = merge_exp_points((dict(zip(names, values, strict=True)) for values in rows), lo)
    if not out:
        return
    con.register("_rollup_exp", pa.Table.from_pylist(out))
    try:
        cols = ", ".join(out[0])
        con.execute(f"INSERT INTO rollup_exp_histograms ({cols}) SELECT {cols} FROM _rollup_exp")
    finally:
        con.unregister("_rollup_exp")


def _subtract(a: ExpHistogram, b: ExpHistogram) -> ExpHistogram:
    """a - b for two histograms of one scale (b's buckets lie within a's range)."""

    def side(a_off: int, a_counts: np.ndarray, b_off: int, b_counts: np.ndarray) -> tuple[int, np.ndarray]:
        lo = min(a_off, b_off) if len(b_counts) else a_off
        hi = max(a_off + len(a_counts), b_off + len(b_counts))
        out = np.zeros(max(hi - lo, 0), dtype=np.int64)
        out[a_off - lo : a_off - lo + len(a_counts)] += a_counts
        out[b_off - lo : b_off - lo + len(b_counts)] -= b_counts
        return lo, np.maximum(out, 0)

    p_off, pos = side(a.positive_offset, a.positive, b.positive_offset, b.positive)
    n_off, neg = side(a.negative_offset, a.negative, b.negative_offset, b.negative)
    return ExpHistogram(a.scale, max(a.zero_count - b.zero_count, 0), p_off, pos, n_off, neg)
