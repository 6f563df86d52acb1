"""Digital twin: how well ``twin.fit`` recovers a world from its telemetry alone, and how the twin behaves.

For each system of the scenario library (``mini``, ``webshop-quiet``, ``platform-quiet``: every
other library scenario extends one of these with faults) and for random worlds
(``simulator.worlds``, quiet category, no hostile telemetry, seeds from ``--world-seeds``), the
world's faults are removed, ``--minutes`` of it are simulated at <= ``--rate`` root req/s (and
<= ``SPANS_MAX`` spans) into
a fresh store, a twin is fitted from the store (the fitter never sees the scenario), and the
twin is simulated over the same window (``twin.check``). Per world it prints:

- parameter recovery: call edges found / missed / invented (against the true edges whose
  expected call count in the window is at least 5), the median relative error of the fitted
  service-time medians, and of the servers where a queue identified them (lower bounds, where
  no queue formed, are counted as consistent when <= the true count);
- behaviour: the twin's relative error on rate, p50 and p99 per busy operation (>= 5 req/min;
  averaged), the mean absolute error-ratio difference (percentage points), and ``twin check``'s
  verdict; ``steady``: the same error over the operations with >= ``STEADY_N`` requests in the
  window (the headline: below that the observed p99 rests on a handful of requests, and its own
  sampling error exceeds the goal). A world whose true run sheds load (some queue overflowed: it is saturated) is marked
  and left out of ``twin_behaviour_err``, whose goal is stated below saturation.

Then, for library fault scenarios (``--verdicts``), each of two library remediations (one meant
to fix the fault, one not) is judged by the gym's test runner on the true world
(``remediation.whatif``) and on the twin (``twin.whatif``: fitted from the store the true world
wrote up to the patch time, a healthy window before the fault and the incident after it, the
difference written as faults); the verdicts agree or not.

Random fault worlds (``--random-verdicts``: ``simulator.worlds`` seeds, fault category, faults of one
operation's own work; never 10000-10099, held out for another benchmark) get the same treatment with
two generic patches: drain the faulted operation, and scale it x3.

Daily profile (``--daily``): 24 hours of a system at <= ``--daily-rate`` root req/s; the twin's hourly
arrival rate (mean, amplitude, peak hour, weekend factor) against the true one, and the fitted noise.

Saturation (``--saturation``): a library saturation scenario at its own rate with its fault moved to
minute 5, a 75-minute window; for each operation whose queue-depth gauge reached 1 or that shed load,
the true and the fitted servers.

Ends with ``twin_edge_precision= twin_edge_recall= twin_behaviour_err= twin_verdict_agreement=``
(the agreement over the library and the random verdict pairs).

Over 450 lines because it is one benchmark with five sections that share the world set-up,
the fitter run and the table printing; split per section, each script would repeat them.

Over 450 lines because a benchmark script is self-contained by design: each section (recovery,
verdicts, daily profile, saturation) builds its own worlds and prints its own table.

    .venv/bin/python benchmarks/twin.py [--minutes 60] [--rate 8] [--worlds 6] [--random-verdicts 7100,7101]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from remediation.whatif import Timing, plan_minutes, short, whatifs  # noqa: E402
from simulator.fork import Run  # noqa: E402
from simulator.labels import visits_per_request  # noqa: E402
from simulator.patches import Patch, PatchError  # noqa: E402
from simulator.plan import Plan  # noqa: E402
from simulator.run import DEFAULT_START_NS, simulate  # noqa: E402
from simulator.scenario import Scenario, load_scenario  # noqa: E402
from simulator.sinks import StoreSink  # noqa: E402
from simulator.worlds import WorldConfig, generate_world  # noqa: E402
from store import Store, open_readonly  # noqa: E402
from store.twin_reads import queue_gauges, window_spans  # noqa: E402
from twin.check import compare, op_stats, simulate_twin  # noqa: E402
from twin.fit import QUEUE_METRICS, fit_twin  # noqa: E402
from twin.recovery import edges_of, recovery  # noqa: E402
from twin.whatif import twin_whatif  # noqa: E402

NS_PER_MIN = 60_000_000_000
LIBRARY = ("mini", "webshop-quiet", "platform-quiet")
_ALL = ["frontend:GET /", "frontend:GET /product/{id}", "frontend:GET /cart", "frontend:POST /cart/items",
        "frontend:POST /checkout"]  # fmt: skip
REMEDIATIONS: dict[str, list[list[dict[str, object]]]] = {
    "error-burst": [[{"kind": "drain", "target": "inventory:Reserve"}],
                    [{"kind": "scale", "operation": "inventory:Reserve", "factor": 3}]],
    "dependency-slowdown": [[{"kind": "drain", "target": "postgres:UPDATE stock"}],
                            [{"kind": "scale", "operation": "postgres:UPDATE stock", "factor": 3}]],
    "capacity-saturation": [[{"kind": "scale", "operation": op, "factor": 3} for op in _ALL],
                            [{"kind": "drain", "target": "frontend"}]],
    "retry-storm": [[{"kind": "call_site", "caller": "payment:Charge", "callee": "bank:Authorize", "retries": 0,
                      "fallback": True}],
                    [{"kind": "drain", "target": "bank:Authorize"}]],
    "call-edge-added": [[{"kind": "disable_edge", "caller": "frontend:GET /product/{id}",
                          "callee": "postgres:SELECT product"}],
                        [{"kind": "rollback", "service": "frontend"}]],
    "combo-deploy-errors": [[{"kind": "rollback", "service": "checkout"}],
                            [{"kind": "scale", "operation": "checkout:PlaceOrder", "factor": 3}]],
}  # fmt: skip
"""Library remediations: per fault scenario, a patch that should fix it and one that should not (the runner decides)."""
RANDOM_FAULTS = ("error_burst", "latency_regression", "dependency_slowdown")
"""Fault kinds of the random verdict worlds: a fault of one operation's own work, which a drain can route around."""
VERDICT_TIMING = Timing(history_min=90, baseline_min=60, eval_min=20)


STEADY_N = 1000
"""Requests in the window an operation needs for the headline behaviour error (its p99 is then known to ~10 %)."""
SPANS_MAX = 500_000
"""Span budget of one world's window: deep worlds run at a lower root rate (2 cores, shared)."""


def _quiet(scenario: Scenario, rate: float, minutes: int) -> Scenario:
    per_request = 2.0 * float(visits_per_request(Plan.compile(scenario)).sum())
    rate = min(rate, SPANS_MAX / (per_request * minutes * 60.0))
    arrivals = scenario.arrivals.model_copy(update={"rate_per_s": min(rate, scenario.arrivals.rate_per_s)})
    return scenario.model_copy(
        update={"faults": [], "deploys": [], "arrivals": arrivals, "hours": minutes / 60, "history_days": 0.0}
    )


def run_world(name: str, scenario: Scenario, minutes: int, work: Path) -> dict[str, object]:
    t0 = time.perf_counter()
    path = work / f"{name}.duckdb"
    store = Store(path)
    start_ns = scenario.start_ns(DEFAULT_START_NS)
    try:
        summary = simulate(scenario, StoreSink(store), hours=minutes / 60, history_days=0, seed=5)
    finally:
        store.close()
    end_ns = start_ns + minutes * 60_000_000_000
    with open_readonly(path) as con:
        fit = fit_twin(con, start_ns, end_ns, name=f"twin-{name}")
        observed = op_stats(con, start_ns, end_ns)
        status = window_spans(con, start_ns, end_ns).column("status_message").to_pylist()
    shed = sum(1 for m in status if m and "overloaded" in m)
    spans_by_ref = {r: o.spans for r, o in fit.ops.items()}
    reachable = {
        (caller, c.to)
        for caller in scenario.operation_refs()
        for c in scenario.operation(caller).calls
        if (caller, c.to) in edges_of(scenario) and spans_by_ref.get(caller, 0) * c.prob >= 5
    }
    rec = recovery(scenario, fit, reachable)
    twin_path = work / f"{name}-twin.duckdb"
    twin_spans = simulate_twin(fit.scenario, twin_path)
    with open_readonly(twin_path) as con:
        twin = op_stats(con, start_ns, end_ns)
    result = compare(observed, twin, twin_spans, minutes=minutes, noise_sigma=fit.scenario.arrivals.noise_sigma)
    busy = [o for o in result.ops if o.busy and o.twin]
    # where the observed p99 itself is estimable to about 10 % (a thousand requests in the window)
    steady = [o for o in busy if o.observed["rate_per_min"] * minutes >= STEADY_N]
    steady_err = [np.mean([o.deviation(s) for s in ("rate_per_min", "p50_ms", "p99_ms")]) for o in steady]
    err_pp = float(np.mean([o.deviation("error_ratio") for o in busy])) if busy else float("nan")
    rate_e = [o.deviation("rate_per_min") for o in busy]
    p50_e = [o.deviation("p50_ms") for o in busy]
    p99_e = [o.deviation("p99_ms") for o in busy]
    for p in (path, twin_path):
        p.unlink(missing_ok=True)
    return {
        "name": name, "spans": summary.rows.get("spans", 0), "ops": len(fit.ops), "stubs": len(fit.stubs),
        "found": rec.found, "missed": len(rec.missed), "invented": len(rec.invented),
        "missed_list": rec.missed, "invented_list": rec.invented,
        "median_err": statistics.median(rec.median_err.values()) if rec.median_err else float("nan"),
        "servers_err": statistics.median(rec.servers_err.values()) if rec.servers_err else float("nan"),
        "servers_ident": len(rec.servers_err), "bounds_ok": sum(rec.servers_bound_ok.values()),
        "bounds": len(rec.servers_bound_ok), "rate_err": float(np.mean(rate_e)) if rate_e else float("nan"),
        "p50_err": float(np.mean(p50_e)) if p50_e else float("nan"),
        "p99_err": float(np.mean(p99_e)) if p99_e else float("nan"), "err_pp": err_pp,
        "behaviour": result.behaviour_error(), "verdict": result.verdict, "wall_s": time.perf_counter() - t0,
        "saturated": shed > 0,
        "steady": float(np.mean(steady_err)) if steady_err else float("nan"), "n_steady": len(steady),
    }  # fmt: skip


def daily_profile(name: str, scenario: Scenario, rate: float, work: Path) -> dict[str, float]:
    """The hourly arrival profile of a twin fitted to 24 hours of ``scenario`` (<= ``rate`` root req/s) vs the truth.

    The truth per minute is the engine's rate without noise (diurnal in local time, weekend factor);
    the twin's is its fitted mean, amplitude and peak (UTC) and weekend factor. Both averaged per hour
    of the day; the error is the mean absolute relative difference over the 24 hours."""
    minutes = 1440
    sc = _quiet(scenario, rate, minutes)
    path = work / f"{name}-day.duckdb"
    store = Store(path)
    start_ns = sc.start_ns(DEFAULT_START_NS)
    try:
        summary = simulate(sc, StoreSink(store), hours=24, history_days=0, seed=5)
    finally:
        store.close()
    with open_readonly(path) as con:
        fit = fit_twin(con, start_ns, start_ns + minutes * NS_PER_MIN, name=f"twin-{name}")
    path.unlink(missing_ok=True)
    true_arr, twin_arr = sc.arrivals, fit.scenario.arrivals
    t_ns = start_ns + np.arange(minutes) * NS_PER_MIN + NS_PER_MIN // 2
    hour_utc = (t_ns / 3.6e12) % 24.0

    def curve(a: object, offset_h: float) -> np.ndarray:
        local = t_ns + int(offset_h * 3.6e12)
        hours = (local / 3.6e12) % 24.0
        weekend = ((local // 86_400_000_000_000) + 3) % 7 >= 5
        diurnal = 1 + a.diurnal_amplitude * np.cos(2 * np.pi * (hours - a.peak_hour) / 24.0)  # type: ignore[attr-defined]
        result: np.ndarray = a.rate_per_s * diurnal * np.where(weekend, a.weekend_factor, 1.0)  # type: ignore[attr-defined]
        return result

    truth = curve(true_arr, true_arr.utc_offset_h)
    twin = curve(twin_arr, twin_arr.utc_offset_h)
    by_hour = np.floor(hour_utc).astype(int)
    t_h = np.bincount(by_hour, truth, 24) / np.maximum(np.bincount(by_hour, minlength=24), 1)
    w_h = np.bincount(by_hour, twin, 24) / np.maximum(np.bincount(by_hour, minlength=24), 1)
    peak_true = (true_arr.peak_hour - true_arr.utc_offset_h) % 24.0
    gap = abs((twin_arr.peak_hour - twin_arr.utc_offset_h - peak_true + 12) % 24 - 12)
    return {
        "spans": float(summary.rows.get("spans", 0)), "rate": true_arr.rate_per_s,
        "amp_true": true_arr.diurnal_amplitude, "amp_twin": twin_arr.diurnal_amplitude,
        "peak_true": peak_true, "peak_twin": (twin_arr.peak_hour - twin_arr.utc_offset_h) % 24.0, "peak_gap_h": gap,
        "profile_err": float(np.mean(np.abs(w_h / t_h - 1))), "noise_true": true_arr.noise_sigma,
        "noise_twin": twin_arr.noise_sigma,
    }  # fmt: skip


def saturated_servers(name: str, work: Path, minutes: int = 75) -> list[tuple[str, int, int, str, float]]:
    """Servers recovered for the operations that queued in a library saturation scenario.

    The scenario runs at its own rate (saturation needs it) with its fault moved to minute 5 so that the
    ramp and the saturation fall in a ``minutes`` window; a twin is fitted on the window. Returns, for each
    operation whose queue-depth gauge reached 1 or that shed requests: (operation, true servers, fitted
    servers, method, peak queue)."""
    sc = load_scenario(name)
    faults = [f.model_copy(update={"start_min": 5.0, "end_min": 5.0 + (f.end_min - f.start_min)}) for f in sc.faults]
    sc = sc.model_copy(update={"faults": faults, "deploys": [], "hours": minutes / 60, "history_days": 0.0})
    path = work / f"{name}-sat.duckdb"
    store = Store(path)
    start_ns = sc.start_ns(DEFAULT_START_NS)
    end_ns = start_ns + minutes * NS_PER_MIN
    try:
        simulate(sc, StoreSink(store), hours=minutes / 60, history_days=0, seed=5)
    finally:
        store.close()
    with open_readonly(path) as con:
        fit = fit_twin(con, start_ns, end_ns, name=f"twin-{name}")
        gauges = queue_gauges(con, start_ns, end_ns).to_pylist()
        status = window_spans(con, start_ns, end_ns).select(["service", "name", "status_message"]).to_pylist()
    path.unlink(missing_ok=True)
    peak: dict[str, float] = {}
    for g in gauges:
        if g["metric"] in QUEUE_METRICS:
            ref = f"{g['service']}:{g['name']}"
            peak[ref] = max(peak.get(ref, 0.0), float(g["value"]))
    shed = {
        f"{r['service']}:{r['name']}" for r in status if r["status_message"] and "overloaded" in r["status_message"]
    }
    rows = []
    for ref, op in sorted(fit.ops.items()):
        if (peak.get(ref, 0.0) >= 1.0 or ref in shed) and op.servers is not None and ref in sc.operation_refs():
            rows.append((ref, sc.operation(ref).servers, op.servers.servers, op.servers.method, peak.get(ref, 0.0)))
    return rows


def random_verdict_worlds(seeds: list[int]) -> list[tuple[str, Scenario, list[Patch]]]:
    """Fault worlds of ``simulator.worlds`` (faults with an operation to act on) and two patches each: drain the
    faulted operation (meant to fix) and scale it x3 (a capacity change, meant not to fix a fault of its own
    work); the fault is moved to minute 100 so that the runner's history fits before it."""
    config = WorldConfig(shares=(0.0, 0.0, 1.0), hostile=0.0, fault_kinds=RANDOM_FAULTS)
    out = []
    for seed in seeds:
        w = generate_world(seed, config)
        fault = w.scenario.faults[0]
        moved = fault.model_copy(update={"start_min": 100.0, "end_min": 100.0 + (fault.end_min - fault.start_min)})
        sc = w.scenario.model_copy(update={"faults": [moved], "deploys": [], "history_days": 0.0,
                                           "hours": (moved.end_min + 30) / 60, "name": f"world-{seed}"})  # fmt: skip
        target = str(fault.target)
        actions = [{"kind": "drain", "target": target}, {"kind": "scale", "operation": target, "factor": 3}]
        patches = [Patch.model_validate({"version": 1, "actions": [act]}) for act in actions]
        out.append((f"world-{seed} ({fault.kind} on {target})", sc, patches))
    return out


def run_verdicts(name: str, rate: float, work: Path) -> list[tuple[str, str, str]]:
    """(patch, verdict on the true world, verdict on the twin) for each library remediation of ``name``."""
    truth = load_scenario(name)
    patches = [Patch.model_validate({"version": 1, "actions": acts}) for acts in REMEDIATIONS[name]]
    return verdict_pairs(name, truth, patches, rate, work)


def verdict_pairs(
    name: str, scenario: Scenario, patches: list[Patch], rate: float, work: Path
) -> list[tuple[str, str, str]]:
    """(patch, verdict on the true world, verdict on the twin fitted from the true world's store up to the patch)."""
    truth = short(scenario, rate)
    tag = name.split(" ", maxsplit=1)[0]
    m = plan_minutes(truth, None, VERDICT_TIMING)
    true = whatifs(truth, patches, work / f"{tag}-truth", timing=VERDICT_TIMING, rate_per_s=rate)
    # what the on-call engineer's store holds at the patch time: the run up to it (another seed)
    obs = work / f"{tag}-observed.duckdb"
    store = Store(obs)
    start_ns = truth.start_ns(DEFAULT_START_NS)
    try:
        Run(truth, from_minute=m.start, seed=9, start_ns=start_ns).advance(m.patch, [StoreSink(store)])
    finally:
        store.close()
    verdicts: list[str]
    try:
        with open_readonly(obs) as con:
            tw = twin_whatif(con, patches, start_ns + m.fault * NS_PER_MIN, start_ns + m.patch * NS_PER_MIN,
                             work / f"{tag}-twin", timing=VERDICT_TIMING)  # fmt: skip
        verdicts = [r.result.verdict for r in tw.results]
        print(f"    {name}: twin incident: {'; '.join(tw.twin.changes.notes)}")
    except (ValueError, PatchError) as exc:
        verdicts = [f"error: {exc}"[:60]] * len(patches)
    obs.unlink(missing_ok=True)
    return [(p.describe(), t.result.verdict, v) for p, t, v in zip(patches, true, verdicts, strict=True)]


def random_section(seeds: list[int], rate: float) -> list[tuple[str, str, str]]:
    """Verdict pairs on random fault worlds, printed."""
    pairs: list[tuple[str, str, str]] = []
    if seeds:
        print(f"remediation verdicts on random fault worlds (seeds {','.join(map(str, seeds))}; drain the faulted "
              f"operation / scale it x3):")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="driftscope-twin-random-") as tmp:
        for name, sc, patches in random_verdict_worlds(seeds):
            t0 = time.perf_counter()
            got = verdict_pairs(name, sc, patches, rate, Path(tmp))
            pairs += got
            for patch, true, twin in got:
                mark = "agree" if true == twin else "DISAGREE"
                print(f"  {name[:50]:50s} {patch[:30]:30s} true {true:10s} twin {twin:10s} {mark}", flush=True)
            print(f"    ({time.perf_counter() - t0:.0f} s)", flush=True)
    return pairs


def daily_section(names: list[str], rate: float) -> list[float]:
    """Daily-profile recovery per system, printed; the profile errors."""
    if names:
        print(f"daily profile (24 h at <= {rate:g} root req/s; peak in UTC hours; profile error: mean "
              f"|twin/true - 1| of the 24 hourly mean rates):")  # fmt: skip
        print(f"  {'system':14s} {'spans':>9s} {'amp true/twin':>14s} {'peak true/twin':>15s} {'gap h':>6s} "
              f"{'profile err':>11s} {'noise true/twin':>16s} {'wall s':>7s}")  # fmt: skip
    errs = []
    config = WorldConfig(shares=(1.0, 0.0, 0.0), hostile=0.0)
    with tempfile.TemporaryDirectory(prefix="driftscope-twin-day-") as tmp:
        for name in names:
            t0 = time.perf_counter()
            base = generate_world(int(name[6:]), config).scenario if name.startswith("world-") else load_scenario(name)
            d = daily_profile(name, base, rate, Path(tmp))
            errs.append(d["profile_err"])
            print(f"  {name:14s} {int(d['spans']):9d} {d['amp_true']:6.3f}/{d['amp_twin']:<7.3f} "
                  f"{d['peak_true']:6.2f}/{d['peak_twin']:<8.2f} {d['peak_gap_h']:6.2f} {d['profile_err']:11.3f} "
                  f"{d['noise_true']:7.3f}/{d['noise_twin']:<8.3f} {time.perf_counter() - t0:7.0f}",
                  flush=True)  # fmt: skip
    return errs


def saturation_section(names: list[str]) -> list[tuple[str, int, int, str, float]]:
    """Servers of the queued operations of library saturation scenarios, printed."""
    rows: list[tuple[str, int, int, str, float]] = []
    with tempfile.TemporaryDirectory(prefix="driftscope-twin-sat-") as tmp:
        for name in names:
            t0 = time.perf_counter()
            got = saturated_servers(name, Path(tmp))
            rows += got
            print(f"servers of the operations that queued in {name} (fault moved to minute 5, 75-minute window at "
                  f"the scenario's own rate; {time.perf_counter() - t0:.0f} s):")  # fmt: skip
            for ref, true_c, fit_c, method, peak_q in got:
                print(f"  {ref:36s} true {true_c:4d} fitted {fit_c:5d}  peak queue {peak_q:7.1f}  ({method})")
    return rows


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--rate", type=float, default=8.0)
    parser.add_argument("--library", default=",".join(LIBRARY), help="Library systems for the world table.")
    parser.add_argument("--worlds", type=int, default=6)
    parser.add_argument("--world-seeds", type=int, default=7000, help="First random world seed.")
    parser.add_argument("--verdicts", default=",".join(REMEDIATIONS), help="Fault scenarios for verdict agreement.")
    parser.add_argument("--random-verdicts", default="7100,7101,7102,7103",
                        help="Seeds of random fault worlds for verdicts (not 10000-10099: held out).")  # fmt: skip
    parser.add_argument("--daily", default="mini,world-7000", help="Systems whose 24-hour daily profile is fitted.")
    parser.add_argument("--daily-rate", type=float, default=2.0, help="Root req/s cap of the 24-hour runs.")
    parser.add_argument("--saturation", default="capacity-saturation", help="Library saturation scenarios.")
    return parser.parse_args()


def main() -> None:
    args = _args()
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, {platform.python_implementation()} "
          f"{platform.python_version()}; window {args.minutes} min at <= {args.rate:g} root req/s")  # fmt: skip
    library = [n for n in args.library.split(",") if n]
    worlds: list[tuple[str, Scenario]] = [(n, _quiet(load_scenario(n), args.rate, args.minutes)) for n in library]
    config = WorldConfig(shares=(1.0, 0.0, 0.0), hostile=0.0)
    for seed in range(args.world_seeds, args.world_seeds + args.worlds):
        w = generate_world(seed, config)
        worlds.append((f"world-{seed}", _quiet(w.scenario, args.rate, args.minutes)))
    header = (f"{'world':16s} {'spans':>8s} {'ops':>4s} {'stub':>4s} {'edges f/m/i':>12s} {'med err':>8s} "
              f"{'srv err':>8s} {'srv id':>6s} {'bounds':>7s} {'rate':>6s} {'p50':>6s} {'p99':>6s} {'err pp':>7s} "
              f"{'verdict':>9s} {'wall s':>7s}")  # fmt: skip
    print(header)
    rows = []
    with tempfile.TemporaryDirectory(prefix="driftscope-twin-bench-") as tmp:
        for name, sc in worlds:
            r = run_world(name, sc, args.minutes, Path(tmp))
            rows.append(r)
            print(f"{name:16s} {r['spans']:8d} {r['ops']:4d} {r['stubs']:4d} "
                  f"{r['found']:>4}/{r['missed']}/{r['invented']:<4} {r['median_err']:8.3f} {r['servers_err']:8.3f} "
                  f"{r['servers_ident']:6d} {r['bounds_ok']:>3}/{r['bounds']:<3} {r['rate_err']:6.3f} "
                  f"{r['p50_err']:6.3f} {r['p99_err']:6.3f} {r['err_pp']:7.3f} {r['verdict']:>9s} "
                  f"{r['wall_s']:7.1f}  steady {r['steady']:.3f} ({r['n_steady']} ops)"
                  + ("  SATURATED" if r["saturated"] else ""), flush=True)  # fmt: skip
            if r["missed_list"] or r["invented_list"]:
                print(f"    missed {r['missed_list']}  invented {r['invented_list']}")
    found = sum(int(r["found"]) for r in rows)  # type: ignore[call-overload]
    missed = sum(int(r["missed"]) for r in rows)  # type: ignore[call-overload]
    invented = sum(int(r["invented"]) for r in rows)  # type: ignore[call-overload]
    precision = found / max(found + invented, 1)
    recall = found / max(found + missed, 1)
    pairs: list[tuple[str, str, str]] = []
    names = [n for n in args.verdicts.split(",") if n]
    if names:
        print(f"remediation verdicts, true world vs twin (timing: {VERDICT_TIMING.history_min} min history, patch at "
              f"fault + {VERDICT_TIMING.alert_delay_min + VERDICT_TIMING.reaction_min} min):")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="driftscope-twin-verdicts-") as tmp:
        for name in names:
            t0 = time.perf_counter()
            got = run_verdicts(name, args.rate, Path(tmp))
            pairs += got
            for patch, true, twin in got:
                mark = "agree" if true == twin else "DISAGREE"
                print(f"  {name:22s} {patch[:58]:58s} true {true:10s} twin {twin:10s} {mark}", flush=True)
            print(f"    ({time.perf_counter() - t0:.0f} s)", flush=True)
    library_pairs = list(pairs)
    random_pairs = random_section([int(x) for x in args.random_verdicts.split(",") if x], args.rate)
    pairs += random_pairs
    profile_errs = daily_section([n for n in args.daily.split(",") if n], args.daily_rate)
    sat_rows = saturation_section([n for n in args.saturation.split(",") if n])
    agreement = sum(t == w for _, t, w in pairs) / len(pairs) if pairs else float("nan")
    lib_agree = sum(t == w for _, t, w in library_pairs)
    rnd_agree = sum(t == w for _, t, w in random_pairs)
    print(f"verdict agreement: library {lib_agree}/{len(library_pairs)}, random worlds {rnd_agree}/"
          f"{len(random_pairs)}; daily profile error {np.mean(profile_errs) if profile_errs else np.nan:.3f} (over "
          f"{len(profile_errs)} systems); saturated servers exact in "
          f"{sum(t == f for _, t, f, _, _ in sat_rows)}/{len(sat_rows)} queued operations")  # fmt: skip
    below = [r for r in rows if not r["saturated"]]
    behaviour_busy = float(np.nanmean([float(r["behaviour"]) for r in below])) if below else float("nan")  # type: ignore[arg-type]
    behaviour = float(np.nanmean([float(r["steady"]) for r in below])) if below else float("nan")  # type: ignore[arg-type]
    sat = [float(r["behaviour"]) for r in rows if r["saturated"]]  # type: ignore[arg-type]
    saturated = float(np.nanmean(sat)) if sat else float("nan")
    faithful = sum(r["verdict"] == "faithful" for r in rows)
    print(f"worlds {len(rows)}: twin check faithful in {faithful}; {len(rows) - len(below)} saturated (the true world "
          f"sheds load; behaviour error there {saturated:.3f}, left out of twin_behaviour_err, whose goal is below "
          f"saturation); spans simulated {sum(int(r['spans']) for r in rows):,}")  # type: ignore[call-overload]  # fmt: skip
    print(f"behaviour error below saturation: {behaviour:.3f} over operations with >= {STEADY_N} requests in the "
          f"window, {behaviour_busy:.3f} over every operation with >= 5/min (whose observed p99 rests on a few "
          f"requests); verdict agreement over {len(pairs)} patch verdicts")  # fmt: skip
    print(f"twin_edge_precision={precision:.3f} twin_edge_recall={recall:.3f} twin_behaviour_err={behaviour:.3f} "
          f"twin_verdict_agreement={agreement:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
