"""The test runner: did a patch fix the incident, leave it, or make things worse?

Three stores' worth of one world are compared over fixed windows: the **baseline** (the
pre-fault window, the same in both runs), the **counterfactual** (the run without the
patch) and the **patched** run, both over the post-patch window (the patch time plus a
settling delay, to the end). The suite:

1. **SLOs**, per operation (SERVER spans): typical latency (Mann-Whitney / Hodges-Lehmann),
   p99 (bootstrap interval) and error ratio (Fisher / Newcombe), the gate's own metric
   functions and thresholds (``detectors.judge``), Holm-adjusted over all operations. Each
   operation is judged patched vs baseline (is it back?) and patched vs counterfactual
   (did the patch make it worse?).
2. **The observability gate** (``detectors.judge.judge``), post-patch window vs pre-fault
   window of the patched run: gauges, histogram metrics and new error log templates too.
3. **Invariants** learned on the whole pre-fault history of the run (``detectors.invariants``;
   a law needs thousands of observations, so quiet operations have none), checked on the
   post-patch window of both runs.
4. **Acceptance**: every entry point still serves at least ``SERVED_MIN`` of its baseline
   successful requests per minute (a patch that refuses users has not fixed anything).

Verdict: **harmful** when an SLO metric fails patched vs counterfactual while not passing
patched vs baseline, or acceptance or an invariant breaks only in the patched run;
**fixed** when no SLO metric fails patched vs baseline, the gate does not fail, no learned
invariant is violated and acceptance holds; **not fixed** otherwise. Time to recovery: the
minutes from the patch to the first minute after which every busy operation's per-minute
median latency and error ratio stay within the range the baseline's own minutes spanned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import duckdb
import numpy as np
import polars as pl

from detectors.invariants.model import Invariant
from detectors.invariants.monitor import check, extract
from detectors.judge.metrics import DEFAULT_SPECS, MetricResult, judge_errors, judge_latency, judge_quantile
from detectors.judge.run import judge
from detectors.judge.samples import Scope, requests
from detectors.judge.verdict import decide
from store.raw import server_minutes

NS_PER_MIN = 60_000_000_000
ALPHA = 0.01
"""Family-wise error rate of each comparison (the gate's default)."""
SERVED_MIN = 0.9
"""Share of its baseline successful requests per minute an entry point must keep serving: a tenth is
the diurnal swing and rate noise of an hour in the library's worlds, not a refusal."""
BUSY_PER_MIN = 5.0
"""Requests per baseline minute an operation needs to count in the time to recovery (quieter ones'
per-minute medians are noise)."""

SMOOTH_MIN = 3
"""Minutes of the rolling median the time to recovery reads."""

VerdictName = Literal["fixed", "not fixed", "harmful"]


@dataclass(frozen=True)
class Windows:
    """The runner's windows, ns since the epoch: history [h0, b1) (invariants are learned there), baseline
    [b0, b1) (the SLOs' reference; b1 is the fault's start), patch time, post-patch [p0, p1)."""

    history_start_ns: int
    baseline_start_ns: int
    baseline_end_ns: int
    patch_ns: int
    post_start_ns: int
    post_end_ns: int

    def baseline(self) -> Scope:
        return Scope((), None, self.baseline_start_ns, self.baseline_end_ns)

    def post(self) -> Scope:
        return Scope((), None, self.post_start_ns, self.post_end_ns)


@dataclass(frozen=True)
class SloRow:
    """One operation's metric in the three worlds and how it was judged."""

    operation: str
    metric: str
    baseline: float | None
    counterfactual: float | None
    patched: float | None
    unit: str
    broken: str
    """Counterfactual vs baseline outcome (pass / marginal / fail / insufficient): was it broken?"""
    recovered: str
    """Patched vs baseline outcome."""
    harm: str
    """Patched vs counterfactual outcome."""


@dataclass
class RunnerResult:
    """The suite's answer."""

    verdict: VerdictName
    reasons: list[str]
    slos: list[SloRow]
    gate_patched: str
    gate_counterfactual: str
    violations_patched: list[str]
    violations_counterfactual: list[str]
    served: dict[str, tuple[float, float, float]]
    """Entry point -> successful requests per minute (baseline, counterfactual, patched)."""
    ttr_min: float | None
    broken_before: bool
    """Whether the counterfactual showed anything to fix (an SLO, the gate, an invariant, acceptance)."""
    details: dict[str, float] = field(default_factory=dict)


def _ops(frame: pl.DataFrame) -> dict[str, pl.DataFrame]:
    return {f"{k[0]}:{k[1]}": g for k, g in frame.group_by(["service", "operation"], maintain_order=True)}


def _ok_ns(frames: dict[str, pl.DataFrame], op: str) -> np.ndarray:
    g = frames.get(op)
    if g is None:
        return np.zeros(0)
    return g.filter(~pl.col("is_error"))["duration_ns"].to_numpy().astype(np.float64)


def _errors(frames: dict[str, pl.DataFrame], op: str) -> tuple[int, int]:
    g = frames.get(op)
    return (0, 0) if g is None else (int(g["is_error"].sum()), g.height)


def compare(before: pl.DataFrame, after: pl.DataFrame, ops: list[str]) -> list[MetricResult]:
    """The gate's three request metrics per operation, ``after`` against ``before``, decided (Holm)."""
    b, a = _ops(before), _ops(after)
    out: list[MetricResult] = []
    for op in ops:
        out.append(judge_latency(op, _ok_ns(b, op), _ok_ns(a, op), DEFAULT_SPECS["latency"]))
        out.append(judge_quantile(op, _ok_ns(b, op), _ok_ns(a, op), DEFAULT_SPECS["latency_p99"]))
        (eb, nb), (ea, na) = _errors(b, op), _errors(a, op)
        out.append(judge_errors(op, eb, nb, ea, na, spec=DEFAULT_SPECS["error_ratio"]))
    return decide(out, ALPHA)


def per_minute(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> pl.DataFrame:
    """Per operation and minute of [start, end): requests, median latency of successes (ms), error ratio."""
    frame = pl.from_arrow(server_minutes(con, start_ns, end_ns))
    assert isinstance(frame, pl.DataFrame)
    return frame


def time_to_recovery(base: pl.DataFrame, after: pl.DataFrame, w: Windows, ops: set[str]) -> float | None:
    """Minutes from the patch until each of ``ops`` stays within its baseline minutes' range; None: never.

    ``base`` and ``after`` are ``per_minute`` frames of the baseline window and of [patch, post end).
    Each statistic is a rolling median over ``SMOOTH_MIN`` minutes on both sides (one slow
    minute is noise, three are a state); operations quieter than ``BUSY_PER_MIN`` are left out.
    """
    minutes = max(1, (w.baseline_end_ns - w.baseline_start_ns) // NS_PER_MIN)

    def smooth(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.filter(pl.col("op").is_in(sorted(ops))).sort("op", "minute").with_columns(
            pl.col("p50_ms").rolling_median(SMOOTH_MIN, min_samples=1).over("op"),
            pl.col("error_ratio").rolling_median(SMOOTH_MIN, min_samples=1).over("op"),
        )  # fmt: skip

    bands = smooth(base).group_by("op").agg(
        (pl.col("n").sum() / minutes).alias("rate"), pl.col("p50_ms").max().alias("p50_max"),
        pl.col("error_ratio").max().alias("err_max"),
    ).filter(pl.col("rate") >= BUSY_PER_MIN)  # fmt: skip
    post = smooth(after).join(bands, on="op", how="inner")
    if post.is_empty():
        return None
    last = (w.post_end_ns - w.patch_ns) // NS_PER_MIN
    bad = post.filter((pl.col("p50_ms") > pl.col("p50_max")) | (pl.col("error_ratio") > pl.col("err_max")))
    if bad.is_empty():
        return 0.0
    worst = int(bad["minute"].max())  # type: ignore[arg-type]
    return None if worst >= last - 1 else float(worst + 1)


def served_per_min(frame: pl.DataFrame, entrypoints: list[str], minutes: float) -> dict[str, float]:
    """Successful requests per minute at each entry point."""
    ops = _ops(frame)
    out = {}
    for ep in entrypoints:
        g = ops.get(ep)
        out[ep] = 0.0 if g is None else float((~g["is_error"]).sum()) / max(minutes, 1e-9)
    return out


def _violations(con: duckdb.DuckDBPyConnection, invariants: list[Invariant], w: Windows) -> list[str]:
    return sorted({v.text for v in check(con, invariants, w.post_start_ns, w.post_end_ns)})


def run_suite(
    counterfactual: duckdb.DuckDBPyConnection,
    patched: duckdb.DuckDBPyConnection,
    windows: Windows,
    entrypoints: list[str],
) -> RunnerResult:
    """Judge the patched run against the baseline and the counterfactual (see the module docstring).

    Both cursors need the per-minute rollups up to date (``analysis.rollup_all``); the
    baseline window is read from the patched run (it precedes the fork, so both hold it).
    """
    w = windows
    base = requests(patched, w.baseline())
    cf, pt = requests(counterfactual, w.post()), requests(patched, w.post())
    ops = sorted(set(_ops(base)))
    broken, recovered, harm = compare(base, cf, ops), compare(base, pt, ops), compare(cf, pt, ops)
    slos = [SloRow(r.entity, r.kind, r.baseline, c.candidate, r.candidate, r.unit, c.outcome, r.outcome, h.outcome)
            for c, r, h in zip(broken, recovered, harm, strict=True)]  # fmt: skip
    gate_pt = judge(patched, w.baseline(), w.post(), alpha=ALPHA).verdict.verdict
    gate_cf = judge(counterfactual, w.baseline(), w.post(), alpha=ALPHA).verdict.verdict
    invariants = extract(patched, w.history_start_ns, w.baseline_end_ns)
    v_pt = _violations(patched, invariants, w)
    v_cf = _violations(counterfactual, invariants, w)
    base_min = (w.baseline_end_ns - w.baseline_start_ns) / NS_PER_MIN
    post_min = (w.post_end_ns - w.post_start_ns) / NS_PER_MIN
    s_b, s_c = served_per_min(base, entrypoints, base_min), served_per_min(cf, entrypoints, post_min)
    s_p = served_per_min(pt, entrypoints, post_min)
    served = {ep: (s_b[ep], s_c[ep], s_p[ep]) for ep in entrypoints}
    short_pt = [ep for ep, (b, _, p) in served.items() if p < SERVED_MIN * b]
    short_cf = {ep for ep, (b, c, _) in served.items() if c < SERVED_MIN * b}

    reasons: list[str] = []
    worse = [s for s in slos if s.harm == "fail" and s.recovered != "pass"]
    reasons += [f"worse than without the patch: {s.operation} {s.metric} {_num(s.counterfactual)} -> "
                f"{_num(s.patched)} {s.unit}" for s in worse]  # fmt: skip
    reasons += [f"refuses users: {ep} serves {served[ep][2]:.1f}/min (baseline {served[ep][0]:.1f}/min)"
                for ep in short_pt if ep not in short_cf]  # fmt: skip
    new_v = [v for v in v_pt if v not in v_cf]
    reasons += [f"breaks an invariant: {v}" for v in new_v]
    harmful = bool(reasons)
    still = [s for s in slos if s.recovered == "fail"]
    fixed = not still and gate_pt != "fail" and not v_pt and not short_pt
    if not harmful and not fixed:
        reasons += [f"still broken: {s.operation} {s.metric} {_num(s.baseline)} -> {_num(s.patched)} {s.unit}"
                    for s in still]  # fmt: skip
        if gate_pt == "fail":
            reasons.append("the gate fails the post-patch window against the pre-fault window")
        reasons += [f"invariant still violated: {v}" for v in v_pt]
        reasons += [f"entry point short of its baseline: {ep}" for ep in short_pt]
    verdict: VerdictName = "harmful" if harmful else "fixed" if fixed else "not fixed"
    broken_before = any(s.broken == "fail" for s in slos) or gate_cf == "fail" or bool(v_cf) or bool(short_cf)
    symptoms = {s.operation for s in slos if s.broken == "fail"} or set(ops)
    ttr = time_to_recovery(per_minute(patched, w.baseline_start_ns, w.baseline_end_ns),
                           per_minute(patched, w.patch_ns, w.post_end_ns), w, symptoms)  # fmt: skip
    return RunnerResult(verdict, reasons, slos, gate_pt, gate_cf, v_pt, v_cf, served,
                        ttr if verdict == "fixed" else None, broken_before)  # fmt: skip


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"
