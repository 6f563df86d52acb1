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

Ends with ``twin_edge_precision= twin_edge_recall= twin_behaviour_err= twin_verdict_agreement=``.

    .venv/bin/python benchmarks/twin.py [--minutes 60] [--rate 8] [--worlds 6]
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
from store.twin_reads import window_spans  # noqa: E402
from twin.check import compare, op_stats, simulate_twin  # noqa: E402
from twin.fit import fit_twin  # noqa: E402
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


def run_verdicts(name: str, rate: float, work: Path) -> list[tuple[str, str, str]]:
    """(patch, verdict on the true world, verdict on the twin) for each library remediation of ``name``."""
    truth = short(load_scenario(name), rate)
    patches = [Patch.model_validate({"version": 1, "actions": acts}) for acts in REMEDIATIONS[name]]
    m = plan_minutes(truth, None, VERDICT_TIMING)
    true = whatifs(truth, patches, work / f"{name}-truth", timing=VERDICT_TIMING, rate_per_s=rate)
    # what the on-call engineer's store holds at the patch time: the run up to it (another seed)
    obs = work / f"{name}-observed.duckdb"
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
                             work / f"{name}-twin", timing=VERDICT_TIMING)  # fmt: skip
        verdicts = [r.result.verdict for r in tw.results]
        print(f"    {name}: twin incident: {'; '.join(tw.twin.changes.notes)}")
    except (ValueError, PatchError) as exc:
        verdicts = [f"error: {exc}"[:60]] * len(patches)
    obs.unlink(missing_ok=True)
    return [(p.describe(), t.result.verdict, v) for p, t, v in zip(patches, true, verdicts, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--rate", type=float, default=8.0)
    parser.add_argument("--worlds", type=int, default=6)
    parser.add_argument("--world-seeds", type=int, default=7000, help="First random world seed.")
    parser.add_argument("--verdicts", default=",".join(REMEDIATIONS), help="Fault scenarios for verdict agreement.")
    args = parser.parse_args()
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, {platform.python_implementation()} "
          f"{platform.python_version()}; window {args.minutes} min at <= {args.rate:g} root req/s")  # fmt: skip
    worlds: list[tuple[str, Scenario]] = [(n, _quiet(load_scenario(n), args.rate, args.minutes)) for n in LIBRARY]
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
    agreement = sum(t == w for _, t, w in pairs) / len(pairs) if pairs else float("nan")
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
