"""Invariant drift quality on the simulator's structural-fault scenarios, and extraction/check speed.

For each structural-fault scenario (broken propagation, new log template, attribute
contract change, call edge added / removed, and the layered platform's BFF writes and auth
skip) simulate ``--baseline-hours`` before the first fault and ``--window-min`` minutes of
it, then run ``detectors.invariants.monitor.detect_invariants`` over the fault window: laws
learned from the baseline, plus, for the platform scenarios, the worked-example spec
``simulator/specs/platform.yaml`` (its boundary rules). A fault label is *detected* when a
finding names it (its service and the operation, attribute, callee or template involved).
The quiet scenarios (webshop-quiet, platform-quiet, with and without the spec) must raise
no finding at all. Speed: extraction and check over a day of the default scenario.

    .venv/bin/python benchmarks/invariants.py [--rate 50] [--day-hours 24] [--skip-speed]

Ends with ``invariant_recall=<x> quiet_violations=<n>``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analysis import Window, rollup_all  # noqa: E402
from detectors.findings import Finding  # noqa: E402
from detectors.invariants.monitor import check, detect_invariants, extract  # noqa: E402
from simulator.labels import FaultLabel  # noqa: E402
from simulator.run import DEFAULT_START_NS, simulate  # noqa: E402
from simulator.scenario import load_scenario  # noqa: E402
from simulator.sinks import StoreSink  # noqa: E402
from store.connection import Store  # noqa: E402

NS_MIN = 60_000_000_000
SPEC = ROOT / "simulator" / "specs" / "platform.yaml"
FAULTS = (
    "broken-propagation",
    "new-log-template",
    "attribute-change",
    "call-edge-added",
    "call-edge-removed",
    "platform-bff-writes",
    "platform-auth-skip",
)
QUIET = (("webshop-quiet", 180), ("platform-quiet", 240))


def _dt(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).replace(tzinfo=None)


def names_fault(f: Finding, label: FaultLabel, target_to: str | None, attribute: str | None) -> bool:
    """Does finding ``f`` name fault ``label``?"""
    s = f.signal
    if label.kind == "broken_propagation":
        return f.detector == "invariant_trace_context" and s.service == label.root_cause_service
    if label.kind == "new_log_template":
        return f.detector == "log_template" and s.service == label.root_cause_service
    if label.kind == "attribute_change":
        same_op = (s.service, s.operation) == (label.root_cause_service, label.root_cause_operation)
        return f.detector == "invariant_attribute" and same_op and s.metric == attribute
    if label.kind == "call_edge":
        if f.detector == "boundary":
            return True
        same_op = (s.service, s.operation) == (label.root_cause_service, label.root_cause_operation)
        return f.detector == "invariant_call_edge" and same_op and s.metric == target_to
    return False


def run(name: str, window_start_min: int, args: argparse.Namespace, spec: Path | None) -> tuple[list[Finding], object]:
    scenario = load_scenario(name)
    arrivals = scenario.arrivals.model_copy(update={"rate_per_s": min(args.rate, scenario.arrivals.rate_per_s)})
    scenario = scenario.model_copy(update={"arrivals": arrivals})
    path = Path(args.work) / f"{name}.duckdb"
    path.unlink(missing_ok=True)
    store = Store(path)
    first = window_start_min - int(args.baseline_hours * 60)
    end_min = window_start_min + args.window_min
    summary = simulate(scenario, StoreSink(store), hours=end_min / 60, from_minute=first, seed=args.seed)
    window = Window(_dt(DEFAULT_START_NS + window_start_min * NS_MIN), _dt(DEFAULT_START_NS + end_min * NS_MIN), 60)
    rollup_all(store.cursor())  # as the detection job does before detecting
    t = time.perf_counter()
    found = detect_invariants(store.cursor(), window, spec)
    seconds = time.perf_counter() - t
    spans = sum(summary.rows.values())
    store.close()
    path.unlink(missing_ok=True)
    print(f"  {name:22s} spec={'yes' if spec else 'no ':3s} rows {spans:>10,d}  detect {seconds:6.1f} s  "
          f"findings {len(found)}")  # fmt: skip
    for f in found:
        print(f"      {f.detector:24s} {f.signal.label():60s} {f.effect_text[:80]}")
    return found, summary.truth


def quality(args: argparse.Namespace) -> tuple[float, int]:
    detected = total = 0
    print(f"quality     baseline {args.baseline_hours} h, window {args.window_min} min, rate cap {args.rate}/s")
    for name in FAULTS:
        scenario = load_scenario(name)
        start = round(min(f.start_min for f in scenario.faults))
        spec = SPEC if name.startswith("platform-") else None
        found, truth = run(name, start, args, spec)
        for label, fault in zip(truth.faults, scenario.faults, strict=True):  # type: ignore[attr-defined]
            total += 1
            hit = any(names_fault(f, label, fault.to, fault.attribute) for f in found)
            detected += hit
            print(f"      {'DETECTED' if hit else 'MISSED  '} {label.kind} {label.root_cause_service}")
    quiet = 0
    for name, start in QUIET:
        for spec in (None, SPEC) if name.startswith("platform") else (None,):
            found, _ = run(name, start, args, spec)
            quiet += len(found)
    return detected / max(total, 1), quiet


def speed(args: argparse.Namespace) -> None:
    scenario = load_scenario("webshop")
    arrivals = scenario.arrivals.model_copy(update={"rate_per_s": min(args.rate, scenario.arrivals.rate_per_s)})
    scenario = scenario.model_copy(update={"arrivals": arrivals})
    path = Path(args.work) / "day.duckdb"
    path.unlink(missing_ok=True)
    store = Store(path)
    first = round(scenario.hours * 60 - args.day_hours * 60)
    t = time.perf_counter()
    summary = simulate(scenario, StoreSink(store), from_minute=first, seed=args.seed)
    sim_s = time.perf_counter() - t
    start, end = DEFAULT_START_NS + first * NS_MIN, DEFAULT_START_NS + round(scenario.hours * 60) * NS_MIN
    con = store.cursor()
    t = time.perf_counter()
    rollup_all(con)
    rollup_s = time.perf_counter() - t
    t = time.perf_counter()
    laws = extract(con, start, end)
    extract_s = time.perf_counter() - t
    t = time.perf_counter()
    violations = check(con, laws, start, end)
    check_s = time.perf_counter() - t
    rows = ", ".join(f"{k} {v:,d}" for k, v in summary.rows.items())
    size = path.stat().st_size / 1e6
    print(f"speed       webshop {args.day_hours:g} h: {rows} ({size:,.0f} MB store; simulated in {sim_s:.0f} s, "
          f"rolled up in {rollup_s:.0f} s)")  # fmt: skip
    print(f"            extract {extract_s:.1f} s ({len(laws)} invariants), check {check_s:.1f} s "
          f"({len(violations)} violations; the day includes the fault), total {extract_s + check_s:.1f} s")  # fmt: skip
    store.close()
    path.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=50.0, help="cap on arrivals (req/s)")
    parser.add_argument("--baseline-hours", type=float, default=3.0)
    parser.add_argument("--window-min", type=int, default=60)
    parser.add_argument("--day-hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--work", default="", help="directory for the temporary stores")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    cpu = platform.processor() or platform.machine() or "?"
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(f"machine     {cpu}, {os.cpu_count()} CPUs, {memory:.0f} GiB, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        args.work = args.work or tmp
        recall, quiet = quality(args) if not args.skip_quality else (float("nan"), -1)
        if not args.skip_speed:
            speed(args)
    print(f"invariant_recall={recall:.2f} quiet_violations={quiet}")


if __name__ == "__main__":
    main()
