"""Quality of the observability gate on simulated deploys: false-fail rate, power per effect size, sample size.

What is simulated: the ``mini`` scenario (api -> worker -> db, 5 requests/s at the
entrypoints, diurnal cycle and rate noise on) for ``--minutes`` (default 60) from a cold
start at 00:00, with ``api`` deployed from 1.0.0 to 1.1.0 halfway. Benign deploy: no change
of dynamics, a different seed per repetition. Regressing deploy: the deploy brings a
latency regression of the whole ``api:GET /items`` operation (+x % on every quantile, p99
included) or an error burst (+x percentage points of errors) on that operation.

1. False fails: ``--reps`` benign deploys, the full gate by version (every metric of the
   api service: latency, p99, errors, calls per request, gauges, histogram metrics, log
   templates); share of verdicts that are not 'pass', and of 'fail'.
2. Power: for each effect, ``--seeds`` regressing deploys; the full gate on time windows
   holding the last n requests of GET /items before the deploy and the first n after it
   (n successful requests = 300, 1000, 3000); probability of a 'fail' verdict.
3. Minimum requests for +10 % p99 at 95 % power: ``--size-seeds`` +10 % deploys, the latency metric
   of GET /items judged alone on the first/last n requests at the gate's Holm level for
   its critical metrics (alpha / 4, the strictest Holm step), n on a grid, without the
   gate's 300-request floor (the statistical answer; the gate needs 300 anyway).

Prints the machine, data sizes and tables, then ``gate_false_fail=<x> gate_power_20pct=<y>``
(power at +20 % p99 with 300 requests per side).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from controller.gate import GateRequest, SideSpec, run_gate
from detectors.judge.metrics import DEFAULT_SPECS, judge_latency
from detectors.judge.verdict import decide
from simulator.run import DEFAULT_START_NS, simulate
from simulator.scenario import Deploy, Fault, Scenario, load_scenario
from simulator.sinks import StoreSink
from store.connection import Store

SIZES = (300, 1000, 3000)
GRID = (50, 75, 100, 150, 200, 250, 300, 400, 500, 600, 800, 1000)
EFFECTS: list[tuple[str, str, float]] = [
    ("latency +5 %", "latency_regression", 0.05),
    ("latency +10 %", "latency_regression", 0.10),
    ("latency +20 %", "latency_regression", 0.20),
    ("latency +30 %", "latency_regression", 0.30),
    ("errors +0.5 pp", "error_burst", 0.005),
    ("errors +1 pp", "error_burst", 0.01),
]
TARGET = ("api", "GET /items")


def scenario(minutes: int, kind: str | None, magnitude: float) -> Scenario:
    base = load_scenario("mini")
    half = minutes // 2
    if kind is None:
        return base.model_copy(update={"deploys": [Deploy(service="api", version="1.1.0", at_min=half)]})
    fault = Fault(
        kind=kind,  # type: ignore[arg-type]
        target=":".join(TARGET),
        start_min=half,
        end_min=minutes + 1,
        magnitude=magnitude,
        deploy_version="1.1.0",
    )
    return base.model_copy(update={"faults": [fault]})


def simulate_store(path: Path, sc: Scenario, minutes: int, seed: int) -> int:
    store = Store(path)
    summary = simulate(sc, StoreSink(store), hours=minutes / 60, from_minute=0, seed=seed)
    store.close()
    return summary.rows["spans"]


def boundary_windows(con: object, deploy_ns: int, n: int) -> tuple[SideSpec, SideSpec] | None:
    """Windows holding the last n successful GET /items requests before the deploy and the first n after it."""
    sql = """SELECT epoch_ns(start_time) FROM spans WHERE service_name = $s AND span_name = $o
             AND span_kind = 'SERVER' AND status_code <> 'ERROR' AND start_time {op} make_timestamp_ns($d)
             ORDER BY start_time {order} LIMIT $n"""
    params = {"s": TARGET[0], "o": TARGET[1], "d": deploy_ns, "n": n}
    before = [r[0] for r in con.execute(sql.format(op="<", order="DESC"), params).fetchall()]  # type: ignore[attr-defined]
    after = [r[0] for r in con.execute(sql.format(op=">=", order="ASC"), params).fetchall()]  # type: ignore[attr-defined]
    if len(before) < n or len(after) < n:
        return None
    import datetime as dt

    def t(ns: int) -> dt.datetime:
        return dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=ns // 1000)

    return (
        SideSpec(start=t(before[-1]), end=t(deploy_ns)),
        SideSpec(start=t(deploy_ns), end=t(after[-1] + 1000)),
    )


def samples(con: object, deploy_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Successful GET /items durations (ns): before the deploy (newest first), after it (oldest first)."""
    sql = """SELECT duration_ns FROM spans WHERE service_name = $s AND span_name = $o AND span_kind = 'SERVER'
             AND status_code <> 'ERROR' AND start_time {op} make_timestamp_ns($d) ORDER BY start_time {order}"""
    p = {"s": TARGET[0], "o": TARGET[1], "d": deploy_ns}
    b = np.array([r[0] for r in con.execute(sql.format(op="<", order="DESC"), p).fetchall()], np.float64)  # type: ignore[attr-defined]
    a = np.array([r[0] for r in con.execute(sql.format(op=">=", order="ASC"), p).fetchall()], np.float64)  # type: ignore[attr-defined]
    return b, a


def benign(tmp: Path, reps: int, minutes: int) -> float:
    """Part 1: the full gate by version on ``reps`` benign deploys; prints the counts, returns the false-fail rate."""
    verdicts: list[str] = []
    spans = 0
    n_req: list[int] = []
    for seed in range(reps):
        path = tmp / f"benign-{seed}.duckdb"
        spans += simulate_store(path, scenario(minutes, None, 0.0), minutes, 1000 + seed)
        store = Store(path)
        req = GateRequest(baseline=SideSpec(version="1.0.0"), candidate=SideSpec(version="1.1.0"), service="api")
        result = run_gate(store.cursor(), req)
        verdicts.append(result.verdict)
        n_req += [m.n_candidate for m in result.metrics if m.name == "latency api:GET /items"]
        store.close()
        path.unlink()
    false_fail = verdicts.count("fail") / len(verdicts)
    not_pass = 1 - verdicts.count("pass") / len(verdicts)
    per_side = int(np.mean(n_req))
    print(f"\nbenign deploys: {len(verdicts)} runs, {spans} spans in all, ~{per_side} GET /items requests per side")
    counts = ", ".join(f"{v} {verdicts.count(v)}" for v in ("pass", "marginal", "fail", "insufficient"))
    print(f"  {counts}")
    print(f"  false-fail rate {false_fail:.3f}; not-pass rate {not_pass:.3f}")
    return false_fail


def powers(tmp: Path, seeds: int, minutes: int, deploy_ns: int) -> dict[str, list[float]]:
    """Part 2: probability of a 'fail' verdict per effect and requests per side (full gate on windows)."""
    power: dict[str, list[float]] = {}
    for label, kind, magnitude in EFFECTS:
        fails = np.zeros(len(SIZES))
        runs = np.zeros(len(SIZES))
        for seed in range(seeds):
            path = tmp / f"effect-{seed}.duckdb"
            simulate_store(path, scenario(minutes, kind, magnitude), minutes, 2000 + seed)
            store = Store(path)
            con = store.cursor()
            for i, n in enumerate(SIZES):
                sides = boundary_windows(con, deploy_ns, n)
                if sides is None:
                    continue
                runs[i] += 1
                fails[i] += (
                    run_gate(con, GateRequest(baseline=sides[0], candidate=sides[1], service="api")).verdict == "fail"
                )
            store.close()
            path.unlink()
        power[label] = [f / r if r else float("nan") for f, r in zip(fails, runs, strict=True)]
    print(f"\npower: probability of a 'fail' verdict, {seeds} seeded deploys per effect (full gate on windows)")
    print(f"  {'effect':<16}" + "".join(f"{f'n={n}/side':>14}" for n in SIZES))
    for label, row in power.items():
        print(f"  {label:<16}" + "".join(f"{p:>14.2f}" for p in row))
    return power


def minimum_size(tmp: Path, seeds: int, minutes: int, deploy_ns: int) -> int | None:
    """Part 3: smallest n per side on GRID where the latency metric fails >= 95 % of +10 % deploys."""
    runs: list[tuple[np.ndarray, np.ndarray]] = []
    for seed in range(seeds):
        path = tmp / f"ten-{seed}.duckdb"
        simulate_store(path, scenario(minutes, "latency_regression", 0.10), minutes, 3000 + seed)
        store = Store(path)
        runs.append(samples(store.cursor(), deploy_ns))
        store.close()
        path.unlink()
    spec = DEFAULT_SPECS["latency"].model_copy(update={"min_samples": 1})
    alpha = 0.01 / 4
    print(
        f"\n+10 % p99, {seeds} seeded deploys: the latency metric alone at alpha {alpha:g} (Holm's strictest step"
        " over the 4 critical metrics of the api gate), without the gate's 300-request floor"
    )
    power: list[float] = []
    for n in GRID:
        hits = [
            decide([judge_latency("api:GET /items", b[:n], a[:n], spec)], alpha)[0].outcome == "fail"
            for b, a in runs
            if b.size >= n and a.size >= n
        ]
        p = float(np.mean(hits)) if hits else float("nan")
        print(f"  n={n:>5}/side  power {p:.2f}  ({len(hits)} runs)")
        power.append(p)
    # The smallest n from which on every larger size on the grid reaches 95 %.
    ok = [all(q >= 0.95 for q in power[i:]) for i in range(len(GRID))]
    found = next((n for n, good in zip(GRID, ok, strict=True) if good), None)
    print(f"minimum requests per side to detect +10 % p99 at 95 % power: {found if found else f'> {GRID[-1]}'}")
    floor = DEFAULT_SPECS["latency"].min_samples
    print(f"  (the gate itself judges latency from {floor} requests per side on; below it says 'insufficient data')")
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=100, help="benign repetitions")
    ap.add_argument("--seeds", type=int, default=20, help="regressing repetitions per effect size")
    ap.add_argument("--size-seeds", type=int, default=60, help="+10 %% repetitions for the sample-size search")
    ap.add_argument("--minutes", type=int, default=60, help="simulated minutes per run (deploy at half)")
    args = ap.parse_args()
    deploy_ns = DEFAULT_START_NS + args.minutes // 2 * 60 * 10**9
    cpu = f"{platform.machine()} {platform.processor() or ''}".strip()
    print(f"machine: {cpu}, {os.cpu_count()} cpus, python {platform.python_version()}")
    print(f"scenario: mini, {args.minutes} min per run, api 1.0.0 -> 1.1.0 at minute {args.minutes // 2}")
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="gate-bench-"))
    false_fail = benign(tmp, args.reps, args.minutes)
    power = powers(tmp, args.seeds, args.minutes, deploy_ns)
    minimum_size(tmp, args.size_seeds, args.minutes, deploy_ns)
    tmp.rmdir()
    print(f"\nwall time {time.perf_counter() - started:.0f} s")
    print(f"gate_false_fail={false_fail:.3f} gate_power_20pct={power['latency +20 %'][0]:.2f}")


if __name__ == "__main__":
    main()
