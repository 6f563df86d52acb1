"""The signals API: keyed time series (and distributions) read from the rollups.

``signals(con, kind, ...)`` returns a polars DataFrame with one row per (time bucket,
entity), schema:

==============  ==================  =====================================================
column          type                meaning
==============  ==================  =====================================================
time            Datetime(us, UTC)   start of the bucket (``resolution_s`` wide)
kind            String              the signal kind asked for
service         String              service.name
operation       String (nullable)   span name (span signals)
metric          String (nullable)   metric name (metric signals)
attributes      String (nullable)   metric point attributes as JSON (metric signals)
value           Float64             the signal's value (units below)
samples         Int64               requests, points or log records behind the value
error_bound     Float64 (nullable)  stated relative error of ``value``: ALPHA (0.01) for
                                    latency quantiles; for histogram metrics the largest
                                    re-bucketing error when series' bounds differ (0.0
                                    when they are equal; the bucket interpolation itself
                                    is Prometheus', whose error is the bucket width)
==============  ==================  =====================================================

Kinds and units: ``rate`` (requests/s), ``error_ratio`` (0..1), ``latency_p50`` /
``latency_p90`` / ``latency_p95`` / ``latency_p99`` (ns; from merged log-bucket
histograms, relative error <= 1 %; by default over successful requests, as SRE practice
measures latency, errors being counted by ``error_ratio``), ``histogram_p50`` / ``p90`` /
``p95`` / ``p99`` (a histogram metric's unit, Prometheus ``histogram_quantile``
interpolation over the merged explicit buckets), ``gauge`` (the metric's unit, ``agg`` =
mean | last | max | min), ``counter_rate`` (increase per second), ``log_rate`` (records
per second, per severity in ``operation``).

Rows come in no particular order (sorting 10 M rows by string keys costs seconds; sort
what you need). Nothing here reads the wall clock: windows come from the caller or from
the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import duckdb
import numpy as np
import polars as pl

from analysis.histogram import (
    ALPHA,
    GAMMA,
    LN_GAMMA,
    LogHistogram,
    explicit_quantile,
    explicit_quantile_rows,
    merge_explicit,
)
from store.connection import fetch_arrow
from store.raw import rollup_end
from store.timeconv import naive_from_ns

SignalKind = Literal[
    "rate",
    "error_ratio",
    "latency_p50",
    "latency_p90",
    "latency_p95",
    "latency_p99",
    "histogram_p50",
    "histogram_p90",
    "histogram_p95",
    "histogram_p99",
    "gauge",
    "counter_rate",
    "log_rate",
]
SCHEMA: dict[str, pl.DataType] = {
    "time": pl.Datetime("us", "UTC"),
    "kind": pl.String(),
    "service": pl.String(),
    "operation": pl.String(),
    "metric": pl.String(),
    "attributes": pl.String(),
    "value": pl.Float64(),
    "samples": pl.Int64(),
    "error_bound": pl.Float64(),
}


@dataclass(frozen=True)
class Window:
    """A [start, end) window of data time and its bucket width in seconds."""

    start: datetime
    end: datetime
    resolution_s: int = 60


def data_window(
    con: duckdb.DuckDBPyConnection, *, hours: float, resolution_s: int = 60, end_ns: int | None = None
) -> Window:
    """The last ``hours`` of rolled-up span data (data time, never the wall clock; ``store.raw``),
    or the ``hours`` before ``end_ns`` (data after it is ignored) when given."""
    newest = rollup_end(con)
    if newest is None:
        raise ValueError("no rollups yet: run the rollup first")
    end = newest if end_ns is None else end_ns
    start = end - round(hours * 3600 * 1_000_000) * 1_000
    return Window(naive_from_ns(start), naive_from_ns(end), resolution_s)


def _bucket(resolution_s: int, column: str = "minute") -> str:
    return f"time_bucket(to_seconds({int(resolution_s)}), {column})"


def _filters(**equal: str | None) -> tuple[str, dict[str, object]]:
    clauses: list[str] = []
    params: dict[str, object] = {}
    for column, value in equal.items():
        if value is not None:
            clauses.append(f"{column} = ${column}")
            params[column] = value
    return "".join(f" AND {c}" for c in clauses), params


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object], kind: str) -> pl.DataFrame:
    # A cursor of its own: signals read committed rollups, and DuckDB's direct polars
    # export (no Arrow copy) refuses to run beside another open result of a connection.
    frame: pl.DataFrame = con.cursor().sql(sql, params=params).pl()
    missing = [pl.lit(None, dtype).alias(c) for c, dtype in SCHEMA.items() if c not in frame.columns and c != "kind"]
    out = frame.with_columns(pl.lit(kind).alias("kind"), *missing)
    return out.select([pl.col(c).cast(t) for c, t in SCHEMA.items()])


def _quantile_from_buckets(q: float) -> str:
    rank = f"ceil({q} * (total - 1))"
    pick = f"arg_min(coalesce(bucket, -2147483648), cum) FILTER (WHERE cum > {rank})"
    return f"CASE WHEN {pick} = -2147483648 THEN 0.0 ELSE 2 * exp({pick} * {LN_GAMMA!r}) / {GAMMA + 1!r} END"


def _with_bound(frame: pl.DataFrame, kind: str) -> pl.DataFrame:
    return frame.with_columns(error_bound=pl.lit(ALPHA if kind.startswith("latency_") else None, pl.Float64))


def _span_signal(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    w: Window,
    filt: str,
    params: dict[str, object],
    *,
    status_class: str | None,
) -> pl.DataFrame:
    base = f"FROM rollup_spans WHERE minute >= $start AND minute < $end{filt}"
    if kind in ("rate", "error_ratio"):
        value = f"sum(count) / {w.resolution_s}" if kind == "rate" else "sum(error_count) / sum(count)"
        sql = (
            f"SELECT {_bucket(w.resolution_s)} AS time, service_name AS service, operation, {value} AS value, "
            f"sum(count) AS samples {base} GROUP BY ALL"
        )
        return _frame(con, sql, params, kind)
    q = {"latency_p50": 0.5, "latency_p90": 0.9, "latency_p95": 0.95, "latency_p99": 0.99}[kind]
    sql, params = _latency_sql(w, filt, params, status_class, (q,))
    return _frame(con, sql.replace(f"AS {_qname(q)}", "AS value"), params, kind)


def _qname(q: float) -> str:
    return f"p{round(q * 100):02d}"


PRECOMPUTED = {0.5: "p50_ns", 0.9: "p90_ns", 0.95: "p95_ns", 0.99: "p99_ns"}


def _latency_sql(
    w: Window, filt: str, params: dict[str, object], status_class: str | None, qs: tuple[float, ...]
) -> tuple[str, dict[str, object]]:
    """SQL for latency quantiles ``qs`` (columns p50, p95, ...) per bucket and entity."""
    base = f"FROM rollup_spans WHERE minute >= $start AND minute < $end{filt}"
    status = "" if status_class is None else " AND status_class = $status_class"
    if status_class is not None:
        params = {**params, "status_class": status_class}
    if w.resolution_s == 60 and status_class is not None and all(q in PRECOMPUTED for q in qs):
        # one rollup row per minute and entity: its precomputed quantiles are the answer
        cols = ", ".join(f"{PRECOMPUTED[q]} AS {_qname(q)}" for q in qs)
        return (
            f"SELECT minute AS time, service_name AS service, operation, {cols}, count AS samples {base}{status}",
            params,
        )
    cols = ", ".join(f"{_quantile_from_buckets(q)} AS {_qname(q)}" for q in qs)
    sql = f"""
        WITH b AS (
            SELECT {_bucket(w.resolution_s)} AS time, service_name AS service, operation, u.bucket, sum(u.n) AS n
            FROM (SELECT minute, service_name, operation, unnest(hist_index) AS bucket, unnest(hist_counts) AS n
                  {base}{status}
                  UNION ALL SELECT minute, service_name, operation, NULL, zero_count {base}{status} AND zero_count > 0
            ) u GROUP BY ALL
        ), w AS (
            SELECT *, sum(n) OVER (PARTITION BY time, service, operation) AS total,
                   sum(n) OVER (PARTITION BY time, service, operation ORDER BY bucket NULLS FIRST
                                ROWS UNBOUNDED PRECEDING) AS cum
            FROM b
        )
        SELECT time, service, operation, {cols}, sum(n) AS samples
        FROM w GROUP BY time, service, operation
    """
    return sql, params


def latency_quantiles(
    con: duckdb.DuckDBPyConnection,
    window: Window,
    quantiles: tuple[float, ...] = (0.5, 0.95, 0.99),
    *,
    service: str | None = None,
    operation: str | None = None,
    span_kind: str | None = "SERVER",
    status_class: Literal["ok", "error"] | None = "ok",
) -> pl.DataFrame:
    """Several latency quantiles (ns) in one read: columns time, service, operation,
    p50/p95/... (one per quantile), samples. Same estimator and bound as ``signals``."""
    filt, extra = _filters(service_name=service, operation=operation, span_kind=span_kind)
    sql, params = _latency_sql(
        window, filt, {"start": window.start, "end": window.end, **extra}, status_class, quantiles
    )
    frame: pl.DataFrame = con.cursor().sql(sql, params=params).pl()
    return frame.with_columns(pl.col("time").cast(pl.Datetime("us", "UTC")))


def _histogram_signal(
    con: duckdb.DuckDBPyConnection, kind: str, w: Window, filt: str, params: dict[str, object]
) -> pl.DataFrame:
    q = float(kind.rsplit("_p", 1)[1]) / 100.0
    # Bucket-wise sums per (time, service, metric, layout), in SQL: attribute sets and minutes merge here.
    sql = f"""
        WITH u AS (
            SELECT {_bucket(w.resolution_s)} AS time, service_name AS service, metric_name AS metric, bounds,
                   generate_subscripts(counts, 1) AS i, unnest(counts) AS n
            FROM rollup_histograms WHERE minute >= $start AND minute < $end{filt}
        ), s AS (SELECT time, service, metric, bounds, i, sum(n)::BIGINT AS n FROM u GROUP BY ALL)
        SELECT time, service, metric, bounds, list(n ORDER BY i) AS counts FROM s GROUP BY time, service, metric, bounds
    """
    merged = pl.from_arrow(fetch_arrow(con, sql, params))
    assert isinstance(merged, pl.DataFrame)
    if merged.height == 0:
        return _frame(con, "SELECT NULL::TIMESTAMP AS time WHERE false", {}, kind)
    parts = [_quantiles_by_bounds(merged.filter(pl.len().over(["time", "service", "metric"]) == 1), q)]
    mixed = merged.filter(pl.len().over(["time", "service", "metric"]) > 1)
    if mixed.height:
        parts.append(_quantiles_of_mixed_bounds(mixed, q))
    out = _single_observations_exact(con, pl.concat(parts, how="vertical_relaxed"), w, filt, params)
    out = out.with_columns(kind=pl.lit(kind))
    for column, dtype in SCHEMA.items():
        if column not in out.columns:
            out = out.with_columns(pl.lit(None, dtype).alias(column))
    return out.select([pl.col(c).cast(t) for c, t in SCHEMA.items()])


def _single_observations_exact(
    con: duckdb.DuckDBPyConnection, out: pl.DataFrame, w: Window, filt: str, params: dict[str, object]
) -> pl.DataFrame:
    """``out`` with the value of every bucket of time holding exactly one observation set to that observation
    (the histogram's sum): every quantile of one value is the value itself, while the bucket interpolation only
    says which bucket it fell in. A batch job reports one run per point, and buckets a factor of 2 or more
    wide hide a job 50 % slower (the run lands in the same bucket)."""
    sql = f"""
        SELECT {_bucket(w.resolution_s)} AS time, service_name AS service, metric_name AS metric,
               sum(count)::BIGINT AS n, sum(sum) AS total
        FROM rollup_histograms WHERE minute >= $start AND minute < $end{filt}
        GROUP BY ALL HAVING sum(count) = 1 AND count(sum) = count(*)
    """
    single = pl.from_arrow(fetch_arrow(con, sql, params))
    assert isinstance(single, pl.DataFrame)
    if single.height == 0:
        return out
    single = single.select(
        pl.col("time").cast(out.schema["time"]), "service", "metric", pl.col("total").cast(pl.Float64)
    )
    joined = out.join(single, on=["time", "service", "metric"], how="left", nulls_equal=True)
    exact = (pl.col("samples") == 1) & pl.col("total").is_not_null()
    return joined.with_columns(value=pl.when(exact).then(pl.col("total")).otherwise(pl.col("value"))).drop("total")


_QUANTILE_SCHEMA: dict[str, Any] = {
    "time": pl.Datetime("us"),
    "service": pl.String,
    "metric": pl.String,
    "value": pl.Float64,
    "samples": pl.Int64,
    "error_bound": pl.Float64,
}


def _quantiles_by_bounds(merged: pl.DataFrame, q: float) -> pl.DataFrame:
    """Quantile per row of histograms with one bucket layout per (time, service, metric): exact,
    vectorised per distinct layout (a handful per store), no re-bucketing error."""
    frames = [pl.DataFrame(schema=_QUANTILE_SCHEMA)]
    for (bounds,), group in merged.group_by(["bounds"]):
        counts = np.asarray(group["counts"].to_list(), dtype=np.float64)
        frames.append(
            pl.DataFrame(
                {
                    "time": group["time"],
                    "service": group["service"],
                    "metric": group["metric"],
                    "value": explicit_quantile_rows(np.asarray(bounds, dtype=float), counts, q),
                    "samples": counts.sum(axis=1).astype(np.int64),
                    "error_bound": np.zeros(group.height),
                },
                schema_overrides={"time": pl.Datetime("us")},
            )
        )
    return pl.concat(frames, how="vertical_relaxed")


def _quantiles_of_mixed_bounds(merged: pl.DataFrame, q: float) -> pl.DataFrame:
    """Series of one metric whose bucket layouts differ within a bucket of time: re-bucket onto the
    layout of the bigger share (``merge_explicit``), its error bound kept. Rare: a loop is fine."""
    rows: dict[tuple[object, ...], tuple[np.ndarray, np.ndarray, float]] = {}
    for t, svc, metric, bounds, counts in merged.select(["time", "service", "metric", "bounds", "counts"]).iter_rows():
        key_ = (t, svc, metric)
        b, c = np.asarray(bounds, dtype=float), np.asarray(counts, dtype=np.int64)
        if key_ not in rows:
            rows[key_] = (b, c, 0.0)
            continue
        kb, kc, err = rows[key_]
        if c.sum() > kc.sum():  # keep the bounds of the bigger share, move the smaller one
            kb, kc, b, c = b, c, kb, kc
        mb, mc, e = merge_explicit(kb, kc, b, c)
        rows[key_] = (mb, mc, max(err, e))
    return pl.DataFrame(
        {
            "time": [k[0] for k in rows],
            "service": [k[1] for k in rows],
            "metric": [k[2] for k in rows],
            "value": [explicit_quantile(b, c, q) for b, c, _ in rows.values()],
            "samples": [int(c.sum()) for _, c, _ in rows.values()],
            "error_bound": [e for _, _, e in rows.values()],
        },
        schema=_QUANTILE_SCHEMA,
    )


def signals(
    con: duckdb.DuckDBPyConnection,
    kind: SignalKind,
    window: Window,
    *,
    service: str | None = None,
    operation: str | None = None,
    span_kind: str | None = "SERVER",
    status_class: Literal["ok", "error"] | None = "ok",
    metric: str | None = None,
    agg: Literal["mean", "last", "max", "min"] = "mean",
) -> pl.DataFrame:
    """One signal kind for every matching entity over ``window`` (schema in the module doc).

    ``status_class`` applies to latency kinds only (None merges ok and error requests).
    """
    params: dict[str, object] = {"start": window.start, "end": window.end}
    if kind in ("rate", "error_ratio") or kind.startswith("latency_"):
        filt, extra = _filters(service_name=service, operation=operation, span_kind=span_kind)
        frame = _span_signal(con, kind, window, filt, {**params, **extra}, status_class=status_class)
        return _with_bound(frame, kind)
    filt, extra = _filters(service_name=service, metric_name=metric)
    params = {**params, **extra}
    if kind.startswith("histogram_p"):
        return _histogram_signal(con, kind, window, filt, params)
    if kind == "gauge":
        value = {"mean": "sum(value_mean * samples) / sum(samples)", "last": "arg_max(value_last, minute)",
                 "max": "max(value_max)", "min": "min(value_min)"}[agg]  # fmt: skip
        table = "rollup_gauges"
        samples = "sum(samples)"
    elif kind == "counter_rate":
        value, table, samples = f"sum(delta) / {window.resolution_s}", "rollup_sums", "sum(points)"
    elif kind == "log_rate":
        filt, extra = _filters(service_name=service)
        sql = (
            f"SELECT {_bucket(window.resolution_s)} AS time, service_name AS service, severity_text AS operation, "
            f"sum(count) / {window.resolution_s} AS value, sum(count) AS samples FROM rollup_logs "
            f"WHERE minute >= $start AND minute < $end{filt} GROUP BY ALL"
        )
        return _frame(con, sql, {"start": window.start, "end": window.end, **extra}, kind)
    else:
        raise ValueError(f"unknown signal kind {kind!r}")
    sql = (
        f"SELECT {_bucket(window.resolution_s)} AS time, service_name AS service, metric_name AS metric, attributes, "
        f"{value} AS value, {samples} AS samples FROM {table} WHERE minute >= $start AND minute < $end{filt} "
        "GROUP BY ALL"
    )
    return _frame(con, sql, params, kind)


@dataclass(frozen=True)
class Distribution:
    """The merged latency histogram of one entity over one bucket."""

    time: datetime
    service: str | None
    operation: str
    histogram: LogHistogram


def distributions(
    con: duckdb.DuckDBPyConnection,
    window: Window,
    *,
    service: str | None = None,
    operation: str | None = None,
    span_kind: str | None = "SERVER",
    status_class: Literal["ok", "error"] | None = "ok",
) -> list[Distribution]:
    """Latency histograms (ns) per entity and bucket; they merge and answer quantiles.

    The buckets are summed per index in SQL and read through Arrow: a week of minutes is
    millions of (index, count) pairs, too many to pass through Python lists.
    """
    filt, params = _filters(service_name=service, operation=operation, span_kind=span_kind, status_class=status_class)
    rows = f"FROM rollup_spans WHERE minute >= $start AND minute < $end{filt}"
    sql = f"""
        WITH z AS (
            SELECT {_bucket(window.resolution_s)} AS time, service_name, operation, sum(zero_count)::BIGINT AS zero
            {rows} GROUP BY ALL
        ), u AS (
            SELECT {_bucket(window.resolution_s)} AS time, service_name, operation,
                   unnest(hist_index) AS i, unnest(hist_counts) AS n
            {rows}
        ), m AS (
            SELECT time, service_name, operation, i, sum(n)::BIGINT AS n FROM u GROUP BY ALL HAVING sum(n) > 0
        )
        SELECT z.time, z.service_name, z.operation, z.zero,
               coalesce(list(m.i ORDER BY m.i) FILTER (WHERE m.i IS NOT NULL), [])::INTEGER[] AS idx,
               coalesce(list(m.n ORDER BY m.i) FILTER (WHERE m.i IS NOT NULL), [])::BIGINT[] AS n
        FROM z LEFT JOIN m ON m.time = z.time AND m.service_name IS NOT DISTINCT FROM z.service_name
             AND m.operation = z.operation
        GROUP BY z.time, z.service_name, z.operation, z.zero ORDER BY z.service_name, z.operation, z.time
    """
    table = fetch_arrow(con, sql, {"start": window.start, "end": window.end, **params})
    idx_col, n_col = (table.column(c).combine_chunks() for c in ("idx", "n"))
    offsets = idx_col.offsets.to_numpy()
    index, counts = idx_col.values.to_numpy(), n_col.values.to_numpy()
    keys = (table.column(c).to_pylist() for c in ("time", "service_name", "operation", "zero"))
    return [
        Distribution(t, svc, op, LogHistogram(index[a:b], counts[a:b], zero))
        for t, svc, op, zero, a, b in zip(*keys, offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)
    ]
