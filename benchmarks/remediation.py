"""Remediation quality: a policy investigates, proposes patches, and the first one is applied and judged.

For every library scenario with faults (except the days-long slow drift) and for random
fault worlds (``simulator.worlds``, seeds from ``--world-seeds``, never looked at while the
policy and the runner were built), ``remediation.gym`` simulates 150 minutes before the first
fault at <= ``--rate`` req/s (saturation at its own rate), investigates with the policy on
what is known at the patch time (the alert, 15 minutes into the fault, plus a 5-minute
reaction), forks the world there and judges the first proposed patch with the test runner
over up to 30 minutes after 5 minutes' settling. Prints the machine, one row per scenario
(rows simulated per future, the diagnosis rank, patch 1, verdict, whether the runner saw the
incident in the unpatched future, time to recovery, wall time) and, per set (single-fault
library, combos, worlds):

- ``fixed@1``: share of scenarios whose first patch the runner calls fixed (no patch: not fixed);
- ``harm``: share whose first patch is harmful (an SLO, an invariant or acceptance worse than
  without it);
- ``seen``: scenarios where the unpatched future failed a check, or no patch was judged (where the
  runner saw nothing wrong without the patch, a "fixed" is vacuous);
- ``ttr_min``: median time to recovery of the fixed ones.

Ends with one line ``fixed_at_1= harm_rate= ttr_min=`` for the single-fault library scenarios.

    .venv/bin/python benchmarks/remediation.py [--policy playbook|claude] [--rate 8] [--worlds 10]
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

from investigations.config import InvestigationsConfig  # noqa: E402
from investigations.gym import SKIPPED  # noqa: E402
from investigations.policies import policy_for  # noqa: E402
from remediation.gym import RemediationScore, run_remediation  # noqa: E402
from simulator.scenario import Scenario, library, load_scenario  # noqa: E402
from simulator.worlds import WorldConfig, generate_world  # noqa: E402


def _summary(name: str, scores: list[RemediationScore]) -> tuple[float, float, float | None]:
    n = max(len(scores), 1)
    fixed = sum(s.fixed for s in scores) / n
    harm = sum(s.harmful for s in scores) / n
    ttrs = [s.ttr_min for s in scores if s.fixed and s.ttr_min is not None]
    ttr = statistics.median(ttrs) if ttrs else None
    seen = [s for s in scores if s.broken_before is not False]
    seen_fixed = sum(s.fixed for s in seen) / max(len(seen), 1)
    print(f"{name:28s} n={len(scores):3d}  fixed@1 {fixed:.2f}  harm {harm:.2f}  seen {len(seen)}/{len(scores)} "
          f"(fixed@1 among seen {seen_fixed:.2f})  ttr median {'-' if ttr is None else f'{ttr:g} min'}")  # fmt: skip
    return fixed, harm, ttr


def _row(score: RemediationScore, rows: int) -> None:
    ttr = "-" if score.ttr_min is None else f"{score.ttr_min:g}"
    seen = {True: "yes", False: "no", None: "-"}[score.broken_before]
    print(f"  {score.scenario[:26]:26s} {rows:>9,d} {score.rank or '-':>4} {score.patch[:44]:44s} {score.verdict:10s} "
          f"{seen:>4s} {ttr:>5s} {score.wall_s:6.1f}", flush=True)  # fmt: skip


def _run(
    scenario: str | Scenario, policy: object, config: InvestigationsConfig, tmp: str, rate: float
) -> RemediationScore:
    score = run_remediation(scenario, policy, tmp, config=config, rate_per_s=rate)  # type: ignore[arg-type]
    _row(score, score.rows)
    return score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", choices=["playbook", "claude"], default="playbook")
    parser.add_argument("--rate", type=float, default=8.0, help="arrival rate cap, req/s")
    parser.add_argument("--scenarios", help="comma-separated library names [default: every scenario with faults]")
    parser.add_argument("--worlds", type=int, default=10, help="random fault worlds (0: none)")
    parser.add_argument("--world-seeds", type=int, default=91_000, help="first world seed (held out)")
    args = parser.parse_args()
    names = args.scenarios.split(",") if args.scenarios else [
        n for n in library() if load_scenario(n).faults and n not in SKIPPED]  # fmt: skip
    config = InvestigationsConfig()
    policy = policy_for(args.policy, config)
    print(f"machine     {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.system()}")  # fmt: skip
    print(f"policy      {args.policy}; rate <= {args.rate:g} req/s; 150 min before the first fault; patch at alert "
          "(fault + 15 min) + 5 min; judged over up to 30 min after 5 min settling")  # fmt: skip
    print(f"  {'scenario':26s} {'rows':>9s} {'rank':>4s} {'patch 1':44s} {'verdict':10s} {'seen':>4s} "
          f"{'ttr':>5s} {'wall s':>6s}")  # fmt: skip
    single: list[RemediationScore] = []
    combos: list[RemediationScore] = []
    worlds: list[RemediationScore] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="driftscope-remediate-") as tmp:
        for name in names:
            (combos if name.startswith("combo-") else single).append(_run(name, policy, config, tmp, args.rate))
        wc = WorldConfig(shares=(0.0, 0.0, 1.0), hostile=0.0, rate_per_s=(2.0, 40.0))
        seed = args.world_seeds
        while len(worlds) < args.worlds:
            world = generate_world(seed, wc)
            seed += 1
            sc = world.scenario.model_copy(update={"name": f"world-{world.seed}-{world.fault}"})
            try:
                worlds.append(_run(sc, policy, config, tmp, args.rate))
            except ValueError as exc:  # a fault too short to judge after the patch, or a slow drift
                print(f"  {sc.name[:26]:26s} skipped: {str(exc)[:90]}")
    print(f"wall        {time.monotonic() - started:.0f} s")
    fixed, harm, ttr = _summary("single-fault library", single)
    if combos:
        _summary("combos (several faults)", combos)
    if worlds:
        _summary(f"random worlds (seeds {args.world_seeds}+)", worlds)
    print(f"fixed_at_1={fixed:.2f} harm_rate={harm:.2f} ttr_min={'nan' if ttr is None else f'{ttr:g}'}")


if __name__ == "__main__":
    main()
