"""The call structure of a window's spans: which server span made which client calls, and own work.

``structure`` takes the raw span rows (``store.twin_reads.window_spans``) and returns frames
the fitter reads: server spans with their operation and own-failure flag, client calls joined
to their caller's server span (and, where traced, to the callee's server span), and each
call group (one caller span, one callee). Pure: frames in, frames out.

Definitions (they hold for any instrumented system, not only the simulator):

- an operation is ``service:span name``; a CLIENT span names its callee the same way;
- a server span *failed on its own* when it is an error and none of its calls failed (an
  error caused by a failed call is the caller's upstream failure, not its own);
- *self time* of a successful server span is its duration minus the union of the intervals of
  its synchronous calls (async calls, whose callee outlives the client span, overlap own work).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import pyarrow as pa


@dataclass(frozen=True)
class Structure:
    """Frames of one window (see the module docstring)."""

    servers: pl.DataFrame
    """One row per server span: span_id, trace_id, ref, start_ns, end_ns, dur_ms, is_error, own_error,
    n_calls, n_failed_calls, minute, is_root."""
    calls: pl.DataFrame
    """One row per client span with a known caller: caller_span, caller, callee, start_ns, end_ns, dur_ms,
    is_error, status_message, offset_ms (start after the caller's start), minute, child_dur_ms / child_end_ns /
    child_error (the callee's server span, null when untraced)."""
    client_only: frozenset[str]
    """Operations seen only through their callers' client spans (databases, caches, providers)."""


SHED = "overloaded"
"""Status message of a request a full queue refused (not an own failure: the twin's queue sheds it again)."""


def _ref() -> pl.Expr:
    return pl.concat_str([pl.col("service"), pl.lit(":"), pl.col("name")]).alias("ref")


def structure(spans: pa.Table, start_ns: int) -> Structure:
    """The call structure of ``spans`` (minutes count from ``start_ns``)."""
    frame = pl.from_arrow(spans)
    assert isinstance(frame, pl.DataFrame)
    frame = frame.with_columns(_ref(), ((pl.col("end_ns") - pl.col("start_ns")) / 1e6).alias("dur_ms"))
    srv = frame.filter(~pl.col("is_client")).drop("is_client")
    cli = frame.filter(pl.col("is_client")).drop("is_client")
    callers = srv.select(
        pl.col("span_id").alias("parent_span_id"),
        pl.col("trace_id"),
        pl.col("ref").alias("caller"),
        pl.col("start_ns").alias("caller_start_ns"),
    )
    calls = cli.join(callers, on=["parent_span_id", "trace_id"], how="inner").select(
        pl.col("parent_span_id").alias("caller_span"),
        "trace_id",
        "caller",
        pl.col("ref").alias("callee"),
        pl.col("span_id").alias("client_span"),
        "start_ns",
        "end_ns",
        "dur_ms",
        "is_error",
        "status_message",
        ((pl.col("start_ns") - pl.col("caller_start_ns")) / 1e6).alias("offset_ms"),
        ((pl.col("start_ns") - start_ns) // 60_000_000_000).alias("minute"),
    )
    children = srv.filter(pl.col("parent_span_id").is_not_null()).select(
        pl.col("parent_span_id").alias("client_span"),
        "trace_id",
        pl.col("dur_ms").alias("child_dur_ms"),
        pl.col("end_ns").alias("child_end_ns"),
        pl.col("is_error").alias("child_error"),
    )
    calls = calls.join(children, on=["client_span", "trace_id"], how="left")
    per_parent = calls.group_by("caller_span").agg(
        pl.len().alias("n_calls"), pl.col("is_error").sum().alias("n_failed_calls")
    )
    client_refs = set(srv["ref"].unique().to_list())
    only = frozenset(r for r in calls["callee"].unique().to_list() if r not in client_refs)
    servers = (
        srv.join(per_parent, left_on="span_id", right_on="caller_span", how="left")
        .with_columns(pl.col("n_calls").fill_null(0), pl.col("n_failed_calls").fill_null(0))
        .with_columns(
            # a request shed by a full queue is the queue's doing, which the twin's own queue repeats
            (
                pl.col("is_error")
                & (pl.col("n_failed_calls") == 0)
                & ~pl.col("status_message").str.to_lowercase().str.contains(SHED)
            ).alias("own_error"),
            ((pl.col("start_ns") - start_ns) // 60_000_000_000).alias("minute"),
            pl.col("parent_span_id").is_null().alias("is_root"),
        )
        .select(
            "span_id",
            "trace_id",
            "ref",
            "start_ns",
            "end_ns",
            "dur_ms",
            "is_error",
            "own_error",
            "n_calls",
            "n_failed_calls",
            "minute",
            "is_root",
        )
    )
    return Structure(servers, calls, only)


def covered_ms(calls: pl.DataFrame) -> pl.DataFrame:
    """Per caller span, the ms its given calls cover (union of their [start, end) intervals)."""
    if calls.is_empty():
        return pl.DataFrame(schema={"caller_span": pl.String, "covered_ms": pl.Float64})
    ordered = calls.sort("caller_span", "start_ns").with_columns(
        pl.col("end_ns").cum_max().shift(1).over("caller_span").alias("prev_end")
    )
    segments = ordered.with_columns(
        (pl.col("prev_end").is_null() | (pl.col("start_ns") > pl.col("prev_end"))).cast(pl.Int32).alias("new")
    ).with_columns(pl.col("new").cum_sum().over("caller_span").alias("segment"))
    return (
        segments.group_by("caller_span", "segment")
        .agg((pl.col("end_ns").max() - pl.col("start_ns").min()).alias("len_ns"))
        .group_by("caller_span")
        .agg((pl.col("len_ns").sum() / 1e6).alias("covered_ms"))
    )
