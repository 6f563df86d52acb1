"""Forward planning on the worked example: how long `driftscope plan` takes on a realistic store.

What is measured: the ``platform-receipts`` scenario (the layered platform; domain-gate
3.5.0 ships order receipts at minute 240) simulated from ``--from-minute`` to
``--to-minute`` at ``--rate`` requests/s into a fresh store; the example's service
repository built for real (git, two commits) and its tests run by pytest into JUnit XML.
Then, each as a real ``driftscope`` process (start-up included), timed with the wall clock:

1. ``plan draft`` (playbook) of the feature, baselines over the hours before the deploy;
2. ``plan check-design`` of the refused plan and of the accepted one;
3. ``plan check`` of the accepted contract: design rules, tests per layer, the gate on
   3.4.0 vs 3.5.0 with the contract's telemetry and invariants, infrastructure, Terraform,
   CI status, rollback: the whole checklist (the issue's goal: under 30 s).

Prints the machine, the data size and a table of times, then ``plan_check_s=<t>``.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "plan"))

from receipts_repo import EXAMPLE, SPEC, make_repo, run_pytest  # noqa: E402

from simulator.run import DEFAULT_START_NS, simulate  # noqa: E402
from simulator.scenario import load_scenario  # noqa: E402
from simulator.sinks import StoreSink  # noqa: E402
from store.connection import Store  # noqa: E402

DEPLOY_MIN = 240


def _timed(args: list[str]) -> tuple[float, int, str]:
    cmd = [sys.executable, "-c", "from controller.cli import main; main()", *args]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    first = next((line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()), "-")
    return time.perf_counter() - t, proc.returncode, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="arrivals, requests/s (the scenario's own: 20)")
    parser.add_argument("--from-minute", type=int, default=120, help="first simulated minute (deploy at 240)")
    parser.add_argument("--to-minute", type=int, default=360, help="last simulated minute")
    args = parser.parse_args()
    machine = f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"
    print(f"machine     {machine}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        scenario = load_scenario("platform-receipts")
        scenario = scenario.model_copy(
            update={"arrivals": scenario.arrivals.model_copy(update={"rate_per_s": args.rate})}
        )
        store_path = root / "platform.duckdb"
        t = time.perf_counter()
        store = Store(store_path)
        simulate(scenario, StoreSink(store), hours=args.to_minute / 60, from_minute=args.from_minute, seed=7)
        store.close()
        sim_s = time.perf_counter() - t
        con = duckdb.connect(str(store_path), read_only=True)
        spans, logs = (con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("spans", "logs"))  # type: ignore[index]
        con.close()
        minutes = args.to_minute - args.from_minute
        size = f"{spans:,} spans, {logs:,} logs, store {store_path.stat().st_size / 2**20:.0f} MiB"
        print(f"data        platform-receipts, {minutes} min at {args.rate:g} req/s (deploy at minute {DEPLOY_MIN}): "
              f"{size}, simulated in {sim_s:.0f} s")  # fmt: skip
        repo = make_repo(root / "domain-gate")
        junit = root / "junit.xml"
        t = time.perf_counter()
        run_pytest(repo, junit)
        print(
            f"repository  {sum(1 for _ in repo.rglob('*') if _.is_file() and '.git' not in _.parts)} files, "
            f"2 commits; its pytest run {time.perf_counter() - t:.1f} s"
        )
        end = (DEFAULT_START_NS + DEPLOY_MIN * 60_000_000_000) // 1_000_000_000
        base = [
            "--store",
            str(store_path),
            "--spec",
            str(SPEC),
            "--window",
            f"{min(DEPLOY_MIN - args.from_minute, 360)}m",
            "--end",
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(end)),
        ]
        feature = "Order receipts: when POST /api/orders accepts an order, store a receipt in object storage"
        edge = "domain-gate:POST /api/orders -> supabase-storage:PutObject"
        accepted, refused = str(EXAMPLE / "receipts.yaml"), str(EXAMPLE / "receipts-refused.yaml")
        evidence = ["--repo", str(repo), "--junit", str(junit), "--ci-status", "success"]
        sides = ["--baseline", "version=3.4.0", "--candidate", "version=3.5.0", "--service", "domain-gate"]
        runs = [
            ("plan draft (playbook)", ["plan", "draft", *base, "--feature", feature, "--call", edge,
                                       "--out", str(root / "d.yaml")]),
            ("plan check-design (refused plan)", ["plan", "check-design", *base, refused]),
            ("plan check-design (accepted plan)", ["plan", "check-design", *base, accepted]),
            ("plan check (whole checklist)", ["plan", "check", *base, accepted, *evidence, *sides]),
            ("driftscope --help (process start-up alone)", ["--help"]),
        ]  # fmt: skip
        print(f"\n{'command':<44} {'wall s':>7}  exit  first line")
        check_s = 0.0
        for label, argv in runs:
            seconds, code, first = _timed(argv)
            if label.startswith("plan check ("):
                check_s = seconds
            print(f"{label:<44} {seconds:7.2f}  {code:>4}  {first[:90]}")
    print(f"\nplan_check_s={check_s:.2f}")


if __name__ == "__main__":
    main()
