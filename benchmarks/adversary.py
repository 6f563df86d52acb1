"""Detection and investigation quality on random worlds nobody tuned for (held-out seeds).

Worlds come from ``simulator.worlds.generate_world`` with seeds chosen before any figure
was looked at and never used for tuning: 10 000 - 10 099 (``--seeds`` overrides; the
adversary's development worlds are 0 - 999). Each world is simulated into a real DuckDB
store, rolled up, run through ``detectors.detection_run.run_detection`` (the function
``driftscope detect`` and the scheduled job call: every detector and the invariant checks), scored
against its ground truth, and, for faults and benign perturbations, investigated by the
offline playbook on an alert 15 minutes into the incident (``adversary.trial``).

Figures (the scoring rules of ``benchmarks/detection.py``):

- false alarms per series-day over the quiet and benign worlds (findings / (server
  operations x 4 kinds x window days)); invariant findings count as alarms too, with no
  series of their own in the denominator, so the figure errs high;
- recall over faults above the stated minimum effect (``simulator.world_faults.MIN_EFFECT``;
  performance kinds and call edges, and the other invariant kinds too with ``--invariants``), precision of the
  findings in fault worlds, median detection delay;
- playbook AC@1 / AC@3 over fault worlds, abstention rate on benign alerts, budget
  overruns and errors.

Prints the machine, the seeds, the data size, one row per world and a table per fault
kind, and ends with ``worlds_fa_per_series_day= recall= precision= ac1= ac3=``.

    .venv/bin/python benchmarks/adversary.py [--worlds 100] [--workers 2] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adversary.trial import TrialConfig, TrialResult, run_trial  # noqa: E402
from simulator.worlds import World, WorldConfig, generate_world  # noqa: E402

HELD_OUT_FIRST = 10_000
"""First held-out world seed (fixed before any figure was seen)."""


def _one(args: tuple[int, WorldConfig, TrialConfig]) -> tuple[World, TrialResult, float]:
    seed, wconf, tconf = args
    world = generate_world(seed, wconf)
    started = time.perf_counter()
    result = run_trial(world, None, tconf)
    return world, result, time.perf_counter() - started


def _ratio(num: float, den: float) -> float:
    return num / den if den else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=HELD_OUT_FIRST)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-rate", type=float, default=200.0, help="largest mean request rate drawn, req/s")
    parser.add_argument("--history-hours", default="6,30", help="history range LOW,HIGH")
    parser.add_argument("--spans-max", type=float, default=1.0e6, help="span budget per world (rate lowered to fit)")
    parser.add_argument("--invariants", action="store_true", help="score recall on the invariant fault kinds too")
    parser.add_argument("--quick", action="store_true", help="smoke run: 8 worlds, 6-8 h of history")
    args = parser.parse_args()
    low, high = (float(x) for x in args.history_hours.split(","))
    worlds = args.worlds
    spans_max = args.spans_max
    if args.quick:
        worlds, low, high, spans_max = min(worlds, 8), 6.0, 8.0, min(spans_max, 3e5)
    wconf = WorldConfig(rate_per_s=(1.0, args.max_rate), history_h=(low, high), spans_max=spans_max)
    tconf = TrialConfig(invariants=args.invariants)
    seeds = list(range(args.first_seed, args.first_seed + worlds))
    print(f"machine     {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.system()}; {args.workers} worker(s)")  # fmt: skip
    print(f"seeds       {seeds[0]}..{seeds[-1]} (held out: never used for tuning)" if seeds else "seeds none")
    print(f"worlds      rate 1-{args.max_rate:g} req/s log-uniform, history {low:g}-{high:g} h, "
          f"span budget {spans_max:.2g}/world, invariant kinds {'' if args.invariants else 'un'}scored")  # fmt: skip
    started = time.perf_counter()
    rows: list[tuple[World, TrialResult, float]] = []
    jobs = [(s, wconf, tconf) for s in seeds]
    with ProcessPoolExecutor(max(1, args.workers)) as pool:
        for world, r, wall in pool.map(_one, jobs):
            rows.append((world, r, wall))
            kinds = sorted({f.kind for f in r.failures})
            print(f"  {r.seed:6d} {r.category:6s} {r.subject:20s} rate {world.scenario.arrivals.rate_per_s:7.3g} "
                  f"hist {world.history_min / 60:4.1f} h spans {r.spans:8d} findings {len(r.findings):3d} "
                  f"det {'-' if r.detected is None else 'y' if r.detected else 'n'} "
                  f"rank {r.rank if r.rank is not None else '-'} {wall:5.0f} s  {', '.join(kinds) or 'ok'}",
                  flush=True)  # fmt: skip
            for f in r.failures[:4]:
                print(f"           {f.kind}: {f.detail[:150]}")
    elapsed = time.perf_counter() - started
    _summary([r for _, r, _ in rows], elapsed, sum(r.spans for _, r, _ in rows))


def _summary(results: list[TrialResult], elapsed: float, spans: int) -> None:
    calm = [r for r in results if r.category != "fault"]
    faults = [r for r in results if r.category == "fault"]
    fa = sum(r.false_alarms for r in calm)
    series_days = sum(r.series * r.days for r in calm)
    scored = [r for r in faults if r.detected is not None]
    recall = _ratio(sum(1 for r in scored if r.detected), len(scored))
    good = sum(r.good for r in faults)
    total = sum(r.good + r.false_alarms for r in faults)
    precision = _ratio(good, total)
    delays = [r.delay_min for r in scored if r.delay_min is not None]
    investigated = [r for r in faults if r.investigation_status is not None]
    ac1 = _ratio(sum(1 for r in investigated if r.rank == 1), len(investigated))
    ac3 = _ratio(sum(1 for r in investigated if r.rank is not None and r.rank <= 3), len(investigated))
    benign = [r for r in calm if r.abstained is not None]
    abstain = _ratio(sum(1 for r in benign if r.abstained), len(benign))
    budget = sum(1 for r in results if any(f.kind == "budget" for f in r.failures))
    errors = sum(1 for r in results if any(f.kind == "error" for f in r.failures))
    print(f"data        {len(results)} worlds, {spans:,d} spans, {elapsed / 60:.1f} min")
    print(f"  {'fault kind':22s} {'worlds':>6s} {'recall':>7s} {'precision':>9s} {'AC@1':>5s} {'AC@3':>5s}")
    by_kind: dict[str, list[TrialResult]] = defaultdict(list)
    for r in faults:
        by_kind[r.subject].append(r)
    for kind, rs in sorted(by_kind.items()):
        sc = [r for r in rs if r.detected is not None]
        rec = _ratio(sum(1 for r in sc if r.detected), len(sc))
        g, t = sum(r.good for r in rs), sum(r.good + r.false_alarms for r in rs)
        inv = [r for r in rs if r.investigation_status is not None]
        print(f"  {kind:22s} {len(rs):6d} {rec:7.2f} {_ratio(g, t):9.2f} "
              f"{_ratio(sum(1 for r in inv if r.rank == 1), len(inv)):5.2f} "
              f"{_ratio(sum(1 for r in inv if r.rank is not None and r.rank <= 3), len(inv)):5.2f}")  # fmt: skip
    print(f"  {'calm world':22s} {'worlds':>6s} {'findings':>9s} {'series-days':>12s} {'abstained':>10s}")
    by_calm: dict[str, list[TrialResult]] = defaultdict(list)
    for r in calm:
        by_calm[r.subject].append(r)
    for kind, rs in sorted(by_calm.items()):
        ab = [r for r in rs if r.abstained is not None]
        print(f"  {kind:22s} {len(rs):6d} {sum(r.false_alarms for r in rs):9d} "
              f"{sum(r.series * r.days for r in rs):12.1f} "
              f"{(str(sum(1 for r in ab if r.abstained)) + '/' + str(len(ab))) if ab else '-':>10s}")  # fmt: skip
    print(f"  quiet+benign: {fa} findings over {series_days:.1f} series-days; faults: recall {recall:.2f} "
          f"({sum(1 for r in scored if r.detected)}/{len(scored)}), precision {precision:.2f} ({good}/{total}), "
          f"median delay {statistics.median(delays) if delays else float('nan'):.1f} min")  # fmt: skip
    print(f"  playbook: AC@1 {ac1:.2f} AC@3 {ac3:.2f} ({len(investigated)} faults), abstention on benign alerts "
          f"{abstain:.2f} ({len(benign)}), budget overruns {budget}, errors {errors}")  # fmt: skip
    print(f"worlds_fa_per_series_day={_ratio(fa, series_days):.3f} recall={recall:.2f} precision={precision:.2f} "
          f"ac1={ac1:.2f} ac3={ac3:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
