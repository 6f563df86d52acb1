"""Validation of a twin: simulate it over the window it was fitted on and compare with what was observed.

Per operation (server spans; client spans for operations only their callers show): request
rate, p50 / p95 / p99 latency of successes, error ratio, and the latency-versus-load slope
(least-squares slope of the per-minute mean latency on the per-minute rate, ms per req/s).
``deviation`` is relative (the error ratio's is absolute, in percentage points, since a ratio
near zero has no useful relative error). Whether a deviation matters is decided by sampling
error, not by a fixed percentage (``twin.sampling``): each statistic carries its standard
error in both runs (a bootstrap over minutes; the rate adds the slow arrival noise of the
twin's fitted ``noise_sigma``; the observed error counts twice, once more for the twin's parameters, which
were estimated from that same sample), and an operation deviates on rate, p50, p99 or error ratio when
the difference exceeds ``z_critical`` combined standard errors, Bonferroni-corrected over every
comparison of the table. The verdict is ``faithful`` when no operation with at least
``BUSY_PER_MIN`` requests a minute deviates, ``deviates`` otherwise, naming the operations and
statistics with their deviation and z.
"""

from __future__ import annotations

import math
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
from twin.sampling import minute_bootstrap, slow_noise_var, z_critical, z_score

BUSY_PER_MIN = 5.0
STATS = ("rate_per_min", "p50_ms", "p95_ms", "p99_ms", "error_ratio", "slope")
JUDGED = ("rate_per_min", "p50_ms", "p99_ms", "error_ratio")
"""The statistics the verdict rests on (p95 and the slope are shown, not judged)."""


@dataclass(frozen=True)
class OpCompare:
    ref: str
    observed: dict[str, float]
    twin: dict[str, float]
    z_crit: float = math.inf
    """Critical z of the table (``twin.sampling.z_critical``)."""
    rate_noise: float = 0.0
    """Relative variance the slow arrival noise adds to each run's mean rate (``twin.sampling.slow_noise_var``)."""

    def deviation(self, stat: str) -> float:
        """Relative deviation (error ratio: absolute, in percentage points)."""
        o, t = self.observed.get(stat, float("nan")), self.twin.get(stat, float("nan"))
        if stat == "error_ratio":
            return abs(t - o) * 100.0
        if stat == "slope":
            scale = max(abs(o), self.observed.get("p50_ms", 1.0) * 0.05)
            return abs(t - o) / scale if scale > 0 else 0.0
        return abs(t / o - 1.0) if o > 0 else (0.0 if t == 0 else float("inf"))

    def z(self, stat: str) -> float:
        """The deviation of ``stat`` in combined standard errors of the two runs."""
        o, t = self.observed.get(stat, float("nan")), self.twin.get(stat, float("nan"))
        se_o, se_t = self.observed.get(f"{stat}_se", 0.0), self.twin.get(f"{stat}_se", 0.0)
        # the twin's parameters were estimated from the observed sample, so its statistics carry that estimation
        # error too: about the observed statistic's own sampling error, counted a second time
        se_o *= math.sqrt(2.0)
        floor = 0.0
        if stat == "rate_per_min":
            se_o, se_t = (
                math.hypot(se_o, o * math.sqrt(self.rate_noise)),
                math.hypot(se_t, t * math.sqrt(self.rate_noise)),
            )
        elif stat == "error_ratio":
            # pooled binomial error: a ratio of 0 in a bootstrap has no spread, yet 0 of 300 is not certainty
            n_o, n_t = self.observed.get("n", 0.0), self.twin.get("n", 0.0)
            if n_o > 0 and n_t > 0:
                pooled = (o * n_o + t * n_t) / (n_o + n_t)
                floor = math.sqrt(pooled * (1 - pooled) * (1 / n_o + 1 / n_t))
        else:
            floor = 1e-6  # a millisecond quantile is no finer than the nanosecond clock
        return z_score(o, t, se_o, se_t, floor)

    @property
    def busy(self) -> bool:
        return self.observed.get("rate_per_min", 0.0) >= BUSY_PER_MIN

    def within(self, stat: str) -> bool:
        """Within what sampling noise explains (``z <= z_crit``)."""
        return self.z(stat) <= self.z_crit

    def ok(self) -> bool:
        return all(self.within(s) for s in JUDGED)


@dataclass(frozen=True)
class CheckResult:
    ops: list[OpCompare]
    verdict: str
    reasons: list[str]
    twin_spans: int
    z_crit: float = math.inf

    def behaviour_error(self) -> float:
        """Mean over busy operations of the mean relative deviation of rate, p50 and p99."""
        errs = [np.mean([o.deviation(s) for s in ("rate_per_min", "p50_ms", "p99_ms")]) for o in self.ops if o.busy]
        return float(np.mean(errs)) if errs else float("nan")


def op_stats(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> dict[str, dict[str, float]]:
    """Per operation of [start, end): the compared statistics (see the module docstring), each with its
    bootstrap standard error (``<stat>_se``), and the span count ``n``."""
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
        se = minute_bootstrap(g["minute"].to_numpy(), g["dur_ms"].to_numpy(), g["is_error"].to_numpy(),
                              math.ceil(minutes))  # fmt: skip
        per_min = g.group_by("minute").agg(pl.len().alias("n"), pl.col("dur_ms").mean().alias("mean"))
        slope = 0.0
        counts = per_min["n"].to_numpy().astype(float)
        if per_min.height >= 3 and float(np.std(counts)) > 0:
            slope = float(np.polyfit(per_min["n"].to_numpy() / 60.0, per_min["mean"].to_numpy(), 1)[0])
        out[str(ref)] = {"rate_per_min": g.height / minutes, "p50_ms": float(q[0]), "p95_ms": float(q[1]),
                         "p99_ms": float(q[2]), "error_ratio": float(g["is_error"].mean()), "slope": slope,  # type: ignore[arg-type]
                         "n": float(g.height), **se}  # fmt: skip
    return out


def simulate_twin(scenario: Scenario, path: str | Path, seed: int = 11) -> int:
    """Simulate the twin over its own window (from its ``start``, ``hours`` long) into a store; spans written."""
    store = Store(path)
    try:
        summary = simulate(scenario, StoreSink(store), seed=seed, history_days=0)
    finally:
        store.close()
    return summary.rows.get("spans", 0)


def compare(
    observed: dict[str, dict[str, float]],
    twin: dict[str, dict[str, float]],
    twin_spans: int,
    *,
    minutes: int = 60,
    noise_sigma: float = 0.0,
) -> CheckResult:
    """The deviation table and the verdict; ``noise_sigma`` is the twin's fitted arrival noise over a window
    of ``minutes`` (it widens the rate's standard error: ``twin.sampling.slow_noise_var``)."""
    busy = [ref for ref in observed if observed[ref].get("rate_per_min", 0.0) >= BUSY_PER_MIN]
    z_crit = z_critical(len(busy) * len(JUDGED))
    noise = slow_noise_var(minutes, noise_sigma)
    ops = [OpCompare(ref, observed[ref], twin.get(ref, {}), z_crit, noise) for ref in sorted(observed)]
    reasons = []
    for o in ops:
        if not o.busy:
            continue
        if not o.twin:
            reasons.append(f"{o.ref}: the twin never serves it")
        elif not o.ok():
            bad = [f"{_label(s)} {_dev(o, s)} (z {o.z(s):.1f})" for s in JUDGED if not o.within(s)]
            reasons.append(f"{o.ref}: " + ", ".join(bad))
    return CheckResult(ops, "deviates" if reasons else "faithful", reasons, twin_spans, z_crit)


def _label(stat: str) -> str:
    return {"rate_per_min": "rate", "p50_ms": "p50", "p99_ms": "p99", "error_ratio": "error ratio"}.get(stat, stat)


def _dev(o: OpCompare, stat: str) -> str:
    return f"{o.deviation(stat):.2f} pp" if stat == "error_ratio" else f"{o.deviation(stat):+.1%}".lstrip("+")


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
    minutes = max(1, round((end_ns - start_ns) / 60_000_000_000))
    return compare(observed, twin, spans, minutes=minutes, noise_sigma=scenario.arrivals.noise_sigma)


def table(result: CheckResult) -> str:
    """The deviation table as text (observed/twin per statistic; ``max z``: the largest judged z)."""
    lines = [f"{'operation':42s} {'rate/min':>17s} {'p50 ms':>15s} {'p95 ms':>15s} {'p99 ms':>15s} "
             f"{'errors %':>13s} {'slope':>15s} {'max z':>6s}  ok"]  # fmt: skip
    for o in result.ops:
        cells = []
        for s in STATS:
            ov, tv = o.observed.get(s, float("nan")), o.twin.get(s, float("nan"))
            if s == "error_ratio":
                ov, tv = ov * 100, tv * 100
            cells.append(f"{ov:7.3g}/{tv:<7.3g}")
        worst = max(o.z(s) for s in JUDGED) if o.twin else math.inf
        flag = "-" if not o.busy else "yes" if o.twin and o.ok() else "NO"
        lines.append(f"{o.ref[:42]:42s} " + " ".join(f"{c:>15s}" for c in cells) + f" {worst:6.1f}  {flag}")
    lines.append(f"verdict: {result.verdict} (observed/twin; busy = >= {BUSY_PER_MIN:g}/min; a busy operation deviates "
                 f"when rate, p50, p99 or error ratio differ by more than z = {result.z_crit:.2f} standard errors "
                 f"of sampling: a bootstrap over minutes, Bonferroni over the table)")  # fmt: skip
    lines += [f"  {r}" for r in result.reasons]
    return "\n".join(lines)
