"""Simulator throughput: spans/s generated into a store directly and through OTLP.

Runs the default scenario (``webshop``, 50 requests/s at the daily mean) for a simulated
day straight into a fresh DuckDB store, then a shorter stretch through the real
OpenTelemetry SDK exporters into a ``driftscope serve`` on 127.0.0.1, and prints spans/s,
the split between generation and store writes, and peak memory. Goal (issue 4): a
simulated day, about 20 M spans, in under 5 minutes direct-to-store on a 2-core machine.

    .venv/bin/python benchmarks/simulate.py [--hours 24] [--otlp-minutes 10] [--scenario webshop]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from simulator.run import simulate  # noqa: E402
from simulator.scenario import load_scenario  # noqa: E402
from simulator.sinks import OtlpSink, StoreSink  # noqa: E402
from store.connection import Store  # noqa: E402


class TimedStoreSink(StoreSink):
    """A store sink that also adds up the seconds spent writing."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.write_s = 0.0

    def write(self, tables: dict[str, pa.Table]) -> None:
        started = time.perf_counter()
        super().write(tables)
        self.write_s += time.perf_counter() - started


def machine() -> str:
    cpu = platform.processor()
    if not cpu:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {mem_kib / 2**20:.1f} GiB; Python {platform.python_version()}, "
        f"DuckDB {duckdb.__version__}"
    )


def direct(scenario_name: str, hours: float, seed: int) -> None:
    scenario = load_scenario(scenario_name)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.duckdb")
        sink = TimedStoreSink(store)
        started = time.perf_counter()
        summary = simulate(scenario, sink, hours=hours, history_days=0, seed=seed)
        elapsed = time.perf_counter() - started
        store.close()
        size_mib = (Path(tmp) / "bench.duckdb").stat().st_size / 2**20
    spans = summary.rows.get("spans", 0)
    other = sum(n for t, n in summary.rows.items() if t != "spans")
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"direct-to-store  {scenario_name}, {hours:g} simulated h ({summary.minutes:,d} minutes), seed {seed}")
    print(f"  spans          {spans:,d} (+ {other:,d} metric points and log records)")
    print(f"  wall           {elapsed:.1f} s  ->  {spans / elapsed:,.0f} spans/s")
    print(f"  generation     {elapsed - sink.write_s:.1f} s   store writes {sink.write_s:.1f} s")
    print(f"  store file     {size_mib:,.0f} MiB   peak RSS {rss_mib:,.0f} MiB")


def otlp(scenario_name: str, minutes: int, seed: int) -> None:
    from conftest import start_server

    scenario = load_scenario(scenario_name)
    with tempfile.TemporaryDirectory() as tmp:
        srv = start_server(Path(tmp) / "otlp.duckdb")
        try:
            started = time.perf_counter()
            summary = simulate(scenario, OtlpSink(srv.http_url), hours=minutes / 60, history_days=0, seed=seed)
            elapsed = time.perf_counter() - started
            srv.stop()
        finally:
            if srv.proc.poll() is None:
                srv.kill()
        stored = srv.query("SELECT count(*) FROM spans")[0][0]
    spans = summary.rows.get("spans", 0)
    print(f"OTLP/HTTP (SDK exporters -> driftscope serve)  {minutes} simulated minutes")
    print(f"  spans          {spans:,d} sent, {stored:,d} stored")
    print(f"  wall           {elapsed:.1f} s  ->  {spans / elapsed:,.0f} spans/s (client-bound)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="webshop")
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours direct-to-store (default 24)")
    parser.add_argument("--otlp-minutes", type=int, default=10, help="simulated minutes over OTLP, 0 skips")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"machine          {machine()}")
    direct(args.scenario, args.hours, args.seed)
    if args.otlp_minutes:
        otlp(args.scenario, args.otlp_minutes, args.seed)


if __name__ == "__main__":
    main()
