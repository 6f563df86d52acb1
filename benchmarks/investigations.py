"""Investigation quality: run a policy over the simulator's scenario library and score it.

For every scenario with faults (except the days-long slow drift), ``investigations.gym``
simulates ``--history-min`` minutes before the first fault to ``--after-min`` after it at
``--rate`` req/s (saturation scenarios at their own rate), rolls up, snapshots the store,
runs the policy on an alert fired 15 minutes into the fault, verifies the report and
scores it: the rank of the first candidate naming a root cause (service, and operation
when the truth names one), steps, tokens, wall time and claims verified. Prints the
machine, one table row per scenario, AC@1 / AC@3 over single-fault scenarios (all but the
``combo-*`` ones, which inject faults with different root causes) and over all,
and ends with one line ``AC@1=<x> AC@3=<y>`` (single-fault scenarios) for scripts.

    .venv/bin/python benchmarks/investigations.py [--policy playbook] [--rate 8] [--scenarios a,b]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from investigations.config import InvestigationsConfig  # noqa: E402
from investigations.gym import SKIPPED, GymScore, run_gym  # noqa: E402
from investigations.policies import policy_for  # noqa: E402
from simulator.scenario import library, load_scenario  # noqa: E402


def _ac(scores: list[GymScore]) -> tuple[float, float]:
    n = max(len(scores), 1)
    return sum(s.at1 for s in scores) / n, sum(s.at3 for s in scores) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", choices=["playbook", "claude"], default="playbook")
    parser.add_argument("--rate", type=float, default=8.0, help="arrival rate cap, req/s")
    parser.add_argument("--scenarios", help="comma-separated names [default: every scenario with faults]")
    args = parser.parse_args()
    names = (
        args.scenarios.split(",")
        if args.scenarios
        else [n for n in library() if load_scenario(n).faults and n not in SKIPPED]
    )
    config = InvestigationsConfig()
    print(
        f"machine     {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()}"
    )
    print(f"policy      {args.policy}; rate <= {args.rate:g} req/s; 150 min before the first fault, 40 min after")
    header = f"  {'scenario':24s} {'faults':>6s} {'rank':>4s} {'@1':>3s} {'@3':>3s} {'steps':>5s} {'tokens':>7s} "
    print(header + f"{'wall s':>7s} {'claims':>7s}  top candidate")
    scores: list[GymScore] = []
    with tempfile.TemporaryDirectory(prefix="driftscope-gym-") as tmp:
        for name in names:
            started = time.perf_counter()
            s = run_gym(name, policy_for(args.policy, config), Path(tmp) / name, config=config, rate_per_s=args.rate)
            scores.append(s)
            print(
                f"  {name:24s} {s.faults:6d} {s.rank or '-':>4} {'y' if s.at1 else 'n':>3s} "
                f"{'y' if s.at3 else 'n':>3s} {s.steps:5d} {s.tokens:7d} {time.perf_counter() - started:7.1f} "
                f"{s.verified:>3d}/{s.claims:<3d}  {s.top}",
                flush=True,
            )
    # combo-* scenarios inject several faults with different root causes; the others one (attribute-change
    # labels two attributes of one release of one operation: one root cause)
    single = [s for s in scores if not s.scenario.startswith("combo")]
    a1, a3 = _ac(single)
    b1, b3 = _ac(scores)
    print(
        f"  single-fault scenarios ({len(single)}): AC@1 {a1:.2f}  AC@3 {a3:.2f};  all ({len(scores)}): "
        f"AC@1 {b1:.2f}  AC@3 {b3:.2f}"
    )
    print(f"AC@1={a1:.2f} AC@3={a3:.2f}")


if __name__ == "__main__":
    main()
