"""Call edges fitted from client spans: probability, fan-out, mode, retries, back-off and timeout.

Per edge (caller operation, callee operation) the calls are grouped by the caller's server
span. The caller's spans that could call (all but those that failed on their own: a request
that fails early makes no calls) give the call probability; groups without a failed call give
the fan-out (one count, or the [low, high] range seen); groups of two or more calls that
overlap in time make the edge parallel; calls whose callee's server span outlives the client
span are asynchronous hand-offs. Retries show as extra calls in groups with failed calls: with
a fixed fan-out k a group of n calls with f failures has n - k retries (none without retries,
about f with them); the count is the longest run of failures a success ended. The back-off is
the median gap after a failed call; the timeout the median duration of timed-out calls (the
callee's span outlived the failed client span, or its status says deadline or timeout).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from twin.spans import Structure

ASYNC_SHARE = 0.2
"""A synchronous callee always ends before its client span (by half a round trip); an async one outlives it
unless it is faster than half a round trip, so a fifth of outliving callees already means async."""
PARALLEL_SHARE = 0.5
RETRY_SHARE = 0.5


@dataclass(frozen=True)
class EdgeFit:
    caller: str
    callee: str
    prob: float
    fanout: int | tuple[int, int]
    mode: str
    retries: int
    backoff_ms: float | None
    timeout_ms: float | None
    """None: no call timed out in the window."""
    offset_ms: float
    """Median start of the first call after the caller's start (orders the calls)."""
    calls: int
    parents: int
    """Caller spans that could call (the probability's denominator)."""
    failed: int
    timed_out: int

    def call(self) -> dict[str, object]:
        """The scenario's ``Call`` table."""
        out: dict[str, object] = {"to": self.callee}
        if self.prob < 0.9995:
            out["prob"] = round(self.prob, 4)
        if self.fanout != 1:
            out["fanout"] = list(self.fanout) if isinstance(self.fanout, tuple) else self.fanout
        if self.mode != "sequential":
            out["mode"] = self.mode
        if self.timeout_ms is not None:
            out["timeout_ms"] = round(self.timeout_ms, 1)
        if self.retries:
            out["retries"] = self.retries
        if self.backoff_ms is not None and self.retries:
            out["backoff_ms"] = round(self.backoff_ms, 2)
        return out


def _runs_recovered(flags: list[bool]) -> int:
    """Longest run of failures (True) ended by a success."""
    best = run = 0
    for failed in flags:
        if failed:
            run += 1
        else:
            best = max(best, run)
            run = 0
    return best


def fit_edges(s: Structure, min_parents: int = 1) -> list[EdgeFit]:
    """Every observed edge, fitted (see the module docstring)."""
    calls = s.calls.sort("caller_span", "callee", "start_ns")
    if calls.is_empty():
        return []
    timed = (
        pl.col("is_error") & pl.col("child_end_ns").is_not_null() & (pl.col("child_end_ns") > pl.col("end_ns"))
    ) | (pl.col("is_error") & pl.col("status_message").str.to_lowercase().str.contains("deadline|timeout"))
    calls = calls.with_columns(
        timed.alias("timed_out"),
        pl.col("end_ns").shift(1).over("caller_span", "callee").alias("prev_end"),
        pl.col("is_error").shift(1).over("caller_span", "callee").alias("prev_failed"),
    )
    eligible = s.servers.filter(~pl.col("own_error")).group_by("ref").agg(pl.len().alias("parents"))
    parents = dict(zip(eligible["ref"].to_list(), eligible["parents"].to_list(), strict=True))
    groups = calls.group_by("caller_span", "caller", "callee").agg(
        pl.len().alias("n"),
        pl.col("is_error").sum().alias("f"),
        pl.col("offset_ms").min().alias("offset_ms"),
        (pl.col("start_ns") < pl.col("prev_end")).any().alias("overlap"),
        pl.col("is_error").alias("flags"),
    )
    out: list[EdgeFit] = []
    for (caller, callee), g in groups.group_by("caller", "callee", maintain_order=True):
        ec = calls.filter((pl.col("caller") == caller) & (pl.col("callee") == callee))
        n_parents = max(int(parents.get(str(caller), 0)), g.height, min_parents)
        clean = g.filter(pl.col("f") == 0)
        counts = (clean if clean.height else g)["n"].to_numpy()
        low, high = int(counts.min()), int(counts.max())
        fanout: int | tuple[int, int] = low if low == high else (low, min(high, 64))
        if isinstance(fanout, int):
            fanout = min(max(fanout, 1), 64)
        pairs = ec.filter(~pl.col("is_error") & pl.col("child_end_ns").is_not_null())
        async_share = (
            float((pairs["child_end_ns"] > pairs["end_ns"]).mean()) if pairs.height else 0.0  # type: ignore[arg-type]
        )
        multi = clean.filter(pl.col("n") >= 2)
        overlap = float(multi["overlap"].mean()) if multi.height else 0.0  # type: ignore[arg-type]
        mode = "async" if async_share > ASYNC_SHARE else "parallel" if overlap > PARALLEL_SHARE else "sequential"
        failed = g.filter(pl.col("f") > 0)
        retries = 0
        if failed.height:
            n_f, f_f = failed["n"].to_numpy().astype(float), failed["f"].to_numpy().astype(float)
            if isinstance(fanout, int):
                share = float(np.mean(n_f - fanout) / max(np.mean(f_f), 1e-9))
            else:
                share = float(np.mean(n_f - f_f) / max(float(np.mean(counts)), 1e-9)) - 0.5
            if share > RETRY_SHARE:
                retries = min(5, max(1, *(_runs_recovered(list(fl)) for fl in failed["flags"].to_list())))
        gaps = ec.filter(pl.col("prev_failed").fill_null(False))
        gap_ms = ((gaps["start_ns"] - gaps["prev_end"]) / 1e6).to_numpy() if gaps.height else np.zeros(0)
        gap_ms = gap_ms[gap_ms >= 0]
        backoff = float(np.median(gap_ms)) if len(gap_ms) else None
        to = ec.filter(pl.col("timed_out") & pl.lit(mode != "async"))
        timeout = float(to["dur_ms"].median()) if to.height else None  # type: ignore[arg-type]
        out.append(
            EdgeFit(
                caller=str(caller),
                callee=str(callee),
                prob=min(1.0, g.height / n_parents),
                fanout=fanout,
                mode=mode,
                retries=retries,
                backoff_ms=backoff,
                timeout_ms=timeout,
                offset_ms=float(g["offset_ms"].median()),  # type: ignore[arg-type]
                calls=ec.height,
                parents=n_parents,
                failed=int(ec["is_error"].sum()),
                timed_out=to.height,
            )
        )
    return out
