"""Render time of the triage UI's pages with 10,000 findings in the store (a figure, never an assertion).

Builds a store with real telemetry (``combo-deploy-errors``, ``--hours`` after a day of
history, rolled up and detected as ``driftscope detect`` does) plus synthetic findings up to
``--findings`` (distinct signals spread over the scenario's services and the last hours; they
go through the real findings writer), one playbook investigation and a report; then starts a
real ``driftscope serve`` on loopback (token set, scheduler off) and fetches every page
``--repeat`` times over HTTP after one warm-up request each (the first finding page imports
the report package). Prints the machine, the data size, per page the median, p95 and max
wall time of a whole request (server render + loopback transfer) and the page size, and ends
with ``ui_pages= ui_median_ms_max= ui_p95_ms_max= ui_under_300ms=``.

    .venv/bin/python benchmarks/ui.py [--findings 10000] [--repeat 20] [--hours 4] [--history-hours 24]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "tests"))  # serverproc; after ROOT: tests/reports must not shadow reports
TOKEN = "bench-token"


def _machine() -> str:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{cpu or platform.machine()}, {os.cpu_count()} CPUs, load avg {load}; Python {platform.python_version()}, "
        f"DuckDB {duckdb.__version__}, {platform.system()} {platform.release()}"
    )


def build(path: Path, n_findings: int, hours: float, history_h: float) -> dict[str, str]:
    """The benchmark store; the ids of a real finding and a synthetic one."""
    from analysis import Window, rollup_all
    from detectors.base import SignalKey
    from detectors.findings import Finding
    from detectors.run import DetectionConfig, detect
    from reports import generate_report
    from simulator.run import DEFAULT_START_NS, simulate
    from simulator.scenario import load_scenario
    from simulator.sinks import StoreSink
    from store.connection import Store
    from store.findings import list_findings, write_findings

    sc = load_scenario("combo-deploy-errors")
    sc = sc.model_copy(update={"arrivals": sc.arrivals.model_copy(update={"rate_per_s": 5.0})})
    store = Store(path)
    try:
        simulate(sc, StoreSink(store), hours=hours, from_minute=-round(history_h * 60), seed=5)
        con = store.cursor()
        rollup_all(con)
        end_ns = DEFAULT_START_NS + round(hours * 60) * 60 * 10**9

        def naive(ns: int) -> dt.datetime:
            return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).replace(tzinfo=None)

        window = Window(naive(end_ns - 90 * 60 * 10**9), naive(end_ns), 60)
        real = detect(con, window, DetectionConfig(history_s=history_h * 3600))
        write_findings(con, real, now_ns=end_ns, resolve_after_s=10**9)
        services = sorted(sc.services)
        kinds = ("latency_p99", "latency_p50", "error_ratio", "rate")
        severities = ("critical", "warning", "info")
        synthetic = []
        for i in range(max(0, n_findings - len(real))):
            change = end_ns - (i % 240) * 60 * 10**9
            synthetic.append(Finding(
                detector=("level_shift", "distribution_shift", "bocpd", "invariant_error_free")[i % 4],
                signal=SignalKey(kinds[i % 4], services[i % len(services)], f"Op{i % 37}", None, f'{{"shard":"{i}"}}'),
                window_start_ns=change - 3600 * 10**9, window_end_ns=end_ns, change_ns=change,
                severity=severities[i % 3], score=0.5 + (i % 50) / 100, effect=0.1 + (i % 9) / 10,
                effect_text=f"p99 +{10 + i % 90} % (100.0 ms -> {110 + i % 90}.0 ms)", before=1e8, after=1.1e8,
                p_value=1e-6, q_value=1e-5 * (1 + i % 7), evidence={"sql": f"SELECT {i}", "detectors": {"a": 0.01}},
            ))  # fmt: skip
        write_findings(con, synthetic, now_ns=end_ns, resolve_after_s=10**9)
        generate_report(con, path.parent / "reports", now_ns=end_ns)
        real_ids = {f.id for f in real}  # the top real finding: its page plots a series of the store
        ranked = [f.id for f in list_findings(con, limit=n_findings)]
        top = next((i for i in ranked if i in real_ids), ranked[0])
        some = list_findings(con, limit=1, offset=n_findings // 2)[0].id
    finally:
        store.close()
    env = {**os.environ, "DRIFTSCOPE_INVESTIGATIONS__OUT_DIR": str(path.parent / "investigations")}
    cmd = [sys.executable, "-m", "controller", "investigate", top, "--policy", "playbook", "--store", str(path)]
    subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=ROOT)
    return {"top": top, "some": some}


def fetch(url: str) -> tuple[float, int]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    started = time.perf_counter()
    with urllib.request.urlopen(req, timeout=60) as r:
        body = r.read()
        assert r.status == 200
    return time.perf_counter() - started, len(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--findings", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--history-hours", type=float, default=24.0)
    args = parser.parse_args()
    from serverproc import start_server

    with tempfile.TemporaryDirectory(prefix="driftscope-ui-bench-") as tmp:
        path = Path(tmp) / "ui.duckdb"
        started = time.perf_counter()
        ids = build(path, args.findings, args.hours, args.history_hours)
        built_s = time.perf_counter() - started
        con = duckdb.connect(str(path), read_only=True)
        n_findings, n_spans, n_inv = con.execute(
            "SELECT (SELECT count(*) FROM findings), (SELECT count(*) FROM spans), "
            "(SELECT count(*) FROM investigation_steps)"
        ).fetchone() or (0, 0, 0)
        con.close()
        print(f"machine   {_machine()}")
        print(
            f"data      {n_findings:,d} findings, {n_spans:,d} spans "
            f"({args.hours:g} h after {args.history_hours:g} h of history), "
            f"{n_inv} investigation steps, store {path.stat().st_size / 2**20:.0f} MiB; built in {built_s:.0f} s"
        )
        srv = start_server(path, ("DRIFTSCOPE_AUTH__API_TOKEN", TOKEN), ("DRIFTSCOPE_JOBS__ENABLED", "false"))
        try:
            pages = {
                "findings (first 200)": "/ui/findings",
                "findings critical open": "/ui/findings?severity=critical&status=open",
                "findings page 26": "/ui/findings?offset=5000",
                "finding (real, plot)": f"/ui/findings/{ids['top']}",
                "finding (synthetic)": f"/ui/findings/{ids['some']}",
                "investigations": "/ui/investigations",
                "invariants + drift": "/ui/invariants",
                "reports": "/ui/reports",
                "jobs": "/ui/jobs",
            }
            print(f"\n{'page':26s} {'median ms':>10s} {'p95 ms':>8s} {'max ms':>8s} {'KiB':>7s}  (n={args.repeat})")
            medians, p95s = [], []
            for name, page in pages.items():
                fetch(srv.api_url + page)  # warm-up: lazy imports, DuckDB caches
                times, size = [], 0
                for _ in range(args.repeat):
                    t, size = fetch(srv.api_url + page)
                    times.append(t * 1000)
                times.sort()
                med, p95 = statistics.median(times), times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
                medians.append(med)
                p95s.append(p95)
                print(f"{name:26s} {med:10.1f} {p95:8.1f} {times[-1]:8.1f} {size / 1024:7.1f}")
        finally:
            srv.stop()
    worst = max(p95s)
    print(
        f"\nui_pages={len(pages)} ui_median_ms_max={max(medians):.1f} ui_p95_ms_max={worst:.1f} "
        f"ui_under_300ms={'yes' if worst < 300 else 'no'}"
    )


if __name__ == "__main__":
    main()
