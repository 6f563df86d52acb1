"""Validation of a twin: simulate it over the window it was fitted on and compare with what was observed.

Per operation (server spans; client spans for operations only their callers show): request
rate, p50 / p95 / p99 latency of successes, error ratio, and the latency-versus-load slope
(least-squares slope of the per-minute mean latency on the per-minute rate, ms per req/s).
Each deviation is relative (the error ratio's is absolute, in percentage points, since a
ratio near zero has no useful relative error). The verdict is ``faithful`` when every busy
operation (``BUSY_PER_MIN``) is within ``TOLERANCE`` on rate, p50 and p99 (or, for the
quantiles, inside the observed quantile's own 95 % interval) and within
``ERROR_PP`` points on its error ratio, ``deviates`` otherwise, naming the operations.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from simulator.run import simulate
from simulator.scenario import Scenario
from simulator.sinks import StoreSink
from store import Store, open_readonly
from store.twin_reads import window_spans

TOLERANCE = 0.10
ERROR_PP = 0.5
BUSY_PER_MIN = 5.0
STATS = ("rate_per_min", "p50_ms", "p95_ms", "p99_ms", "error_ratio", "slope")


@dataclass(frozen=True)
class OpCompare:
    ref: str
    observed: dict[str, float]
    twin: dict[str, float]

    def deviation(self, stat: str) -> float:
        """Relative deviation (error ratio: absolute, in percentage points)."""
        o, t = self.observed.get(stat, float("nan")), self.twin.get(stat, float("nan"))
        if stat == "error_ratio":
            return abs(t - o) * 100.0
        if stat == "slope":
            scale = max(abs(o), self.observed.get("p50_ms", 1.0) * 0.05)
            return abs(t - o) / scale if scale > 0 else 0.0
        return abs(t / o - 1.0) if o > 0 else (0.0 if t == 0 else float("inf"))

    @property
    def busy(self) -> bool:
        return self.observed.get("rate_per_min", 0.0) >= BUSY_PER_MIN

    def within(self, stat: str) -> bool:
        """Within tolerance, or (quantiles) inside the observed quantile's 95 % interval: a p99 of a few
        hundred requests is itself uncertain by more than the tolerance."""
        if self.deviation(stat) <= TOLERANCE:
            return True
        lo, hi = self.observed.get(f"{stat}_lo"), self.observed.get(f"{stat}_hi")
        t = self.twin.get(stat)
        return lo is not None and hi is not None and t is not None and lo <= t <= hi

    def ok(self) -> bool:
        return all(self.within(s) for s in ("rate_per_min", "p50_ms", "p99_ms")) and (
            self.deviation("error_ratio") <= ERROR_PP
        )


@dataclass(frozen=True)
class CheckResult:
    ops: list[OpCompare]
    verdict: str
    reasons: list[str]
    twin_spans: int

    def behaviour_error(self) -> float:
        """Mean over busy operations of the mean relative deviation of rate, p50 and p99."""
        errs = [np.mean([o.deviation(s) for s in ("rate_per_min", "p50_ms", "p99_ms")]) for o in self.ops if o.busy]
        return float(np.mean(errs)) if errs else float("nan")


def quantile_interval(x: np.ndarray, p: float) -> tuple[float, float]:
    """Distribution-free 95 % interval of the ``p`` quantile of ``x`` (order statistics, normal approximation)."""
    n = len(x)
    if n < 2:
        return float("nan"), float("nan")
    half = 1.96 * np.sqrt(n * p * (1 - p))
    srt = np.sort(x)
    lo, hi = int(max(np.floor(n * p - half), 0)), int(min(np.ceil(n * p + half), n - 1))
    return float(srt[lo]), float(srt[hi])


def op_stats(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> dict[str, dict[str, float]]:
    """Per operation of [start, end): the compared statistics (see the module docstring)."""
    frame = pl.from_arrow(window_spans(con, start_ns, end_ns))
    assert isinstance(frame, pl.DataFrame)
    frame = frame.with_columns(
        pl.concat_str([pl.col("service"), pl.lit(":"), pl.col("name")]).alias("ref"),
        ((pl.col("end_ns") - pl.col("start_ns")) / 1e6).alias("dur_ms"),
        ((pl.col("start_ns") - start_ns) // 60_000_000_000).alias("minute"),
    )
    served = set(frame.filter(~pl.col("is_client"))["ref"].unique().to_list())
    frame = frame.filter((~pl.col("is_client")) | ~pl.col("ref").is_in(sorted(served)))
    minutes = max((end_ns - start_ns) / 60_000_000_000, 1.0)
    out: dict[str, dict[str, float]] = {}
    for (ref,), g in frame.group_by("ref"):
        ok = g.filter(~pl.col("is_error"))["dur_ms"].to_numpy()
        q = np.quantile(ok, [0.5, 0.95, 0.99]) if len(ok) else np.full(3, np.nan)
        ci = {f"{name}_{side}": v for name, p in (("p50_ms", 0.5), ("p99_ms", 0.99))
              for side, v in zip(("lo", "hi"), quantile_interval(ok, p), strict=True)}  # fmt: skip
        per_min = g.group_by("minute").agg(pl.len().alias("n"), pl.col("dur_ms").mean().alias("mean"))
        slope = 0.0
        counts = per_min["n"].to_numpy().astype(float)
        if per_min.height >= 3 and float(np.std(counts)) > 0:
            slope = float(np.polyfit(per_min["n"].to_numpy() / 60.0, per_min["mean"].to_numpy(), 1)[0])
        out[str(ref)] = {"rate_per_min": g.height / minutes, "p50_ms": float(q[0]), "p95_ms": float(q[1]),
                         "p99_ms": float(q[2]), "error_ratio": float(g["is_error"].mean()), "slope": slope, **ci}  # type: ignore[arg-type]  # fmt: skip
    return out


def simulate_twin(scenario: Scenario, path: str | Path, seed: int = 11) -> int:
    """Simulate the twin over its own window (from its ``start``, ``hours`` long) into a store; spans written."""
    store = Store(path)
    try:
        summary = simulate(scenario, StoreSink(store), seed=seed, history_days=0)
    finally:
        store.close()
    return summary.rows.get("spans", 0)


def compare(observed: dict[str, dict[str, float]], twin: dict[str, dict[str, float]], twin_spans: int) -> CheckResult:
    """The deviation table and the verdict."""
    ops = [OpCompare(ref, observed[ref], twin.get(ref, {})) for ref in sorted(observed)]
    reasons = []
    for o in ops:
        if not o.busy:
            continue
        if not o.twin:
            reasons.append(f"{o.ref}: the twin never serves it")
        elif not o.ok():
            bad = [f"{s} {o.deviation(s):.1%}" for s in ("rate_per_min", "p50_ms", "p99_ms") if not o.within(s)]
            if o.deviation("error_ratio") > ERROR_PP:
                bad.append(f"error ratio {o.deviation('error_ratio'):.2f} pp")
            reasons.append(f"{o.ref}: " + ", ".join(bad))
    return CheckResult(ops, "deviates" if reasons else "faithful", reasons, twin_spans)


def check_twin(
    scenario: Scenario, observed_store: str | Path, start_ns: int, end_ns: int, work_dir: str | Path | None = None
) -> CheckResult:
    """Simulate ``scenario`` (a twin of [start, end) of ``observed_store``) and compare it with the store."""
    with open_readonly(observed_store) as con:
        observed = op_stats(con, start_ns, end_ns)
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        path = Path(tmp) / "twin.duckdb"
        spans = simulate_twin(scenario, path)
        with open_readonly(path) as con:
            twin = op_stats(con, start_ns, end_ns)
    return compare(observed, twin, spans)


def table(result: CheckResult) -> str:
    """The deviation table as text."""
    lines = [f"{'operation':42s} {'rate/min':>17s} {'p50 ms':>15s} {'p95 ms':>15s} {'p99 ms':>15s} "
             f"{'errors %':>13s} {'slope':>15s}  ok"]  # fmt: skip
    for o in result.ops:
        cells = []
        for s in STATS:
            ov, tv = o.observed.get(s, float("nan")), o.twin.get(s, float("nan"))
            if s == "error_ratio":
                ov, tv = ov * 100, tv * 100
            cells.append(f"{ov:7.3g}/{tv:<7.3g}")
        flag = "-" if not o.busy else "yes" if o.twin and o.ok() else "NO"
        lines.append(f"{o.ref[:42]:42s} " + " ".join(f"{c:>15s}" for c in cells) + f"  {flag}")
    lines.append(f"verdict: {result.verdict} (observed/twin; busy = >= {BUSY_PER_MIN:g}/min; tolerance "
                 f"{TOLERANCE:.0%} on rate, p50, p99 and {ERROR_PP} pp on the error ratio)")  # fmt: skip
    lines += [f"  {r}" for r in result.reasons]
    return "\n".join(lines)
