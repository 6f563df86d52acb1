"""Signals benchmark: rollup throughput and the 7-day quantile fetch for 1,000 operations.

1. Rollup: simulates the web shop straight into a fresh store (``--hours``, default 2 h,
   about 1.3 M spans) and times ``rollup_all`` over it (spans/s), then times an
   incremental re-run (the steady-state cost per run).
2. Fetch: writes synthetic ``rollup_spans`` rows for 1,000 operations x 7 days at
   1-minute resolution (10.08 M rows, each with a 40-bucket log histogram) and times
   fetching p50, p95 and p99 for all of them at 1-minute resolution, and p99 at 1-hour
   resolution (which merges histograms).

Ends with one line ``rollup_spans_per_s=<x> fetch_7d_s=<y>`` for scripts (the fetch is
the one-read ``latency_quantiles``; three separate ``signals`` calls are printed too). Goals (issue
5): rollups >= 1 M spans/s; the 7-day fetch (p50+p95+p99) under 1 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analysis import Window, latency_quantiles, rollup_all, signals  # noqa: E402
from simulator.run import simulate  # noqa: E402
from simulator.scenario import load_scenario  # noqa: E402
from simulator.sinks import StoreSink  # noqa: E402
from store.connection import Store  # noqa: E402
from store.migrations import migrate_all  # noqa: E402


def machine() -> str:
    cpu = platform.processor() or next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    return f"{cpu}, {os.cpu_count()} CPUs; Python {platform.python_version()}, DuckDB {duckdb.__version__}"


def bench_rollup(tmp: Path, hours: float) -> float:
    store = Store(tmp / "rollup.duckdb")
    simulate(load_scenario("webshop-quiet"), StoreSink(store), hours=hours, history_days=0, seed=1)
    con = store.cursor()
    spans = con.execute("SELECT count(*) FROM spans").fetchone()[0]  # type: ignore[index]
    started = time.perf_counter()
    reports = rollup_all(con)
    elapsed = time.perf_counter() - started
    span_s = next(r.seconds for r in reports if r.source == "spans")
    started = time.perf_counter()
    rollup_all(con)
    again = time.perf_counter() - started
    store.close()
    print(f"rollup      {spans:,d} spans ({hours:g} simulated h of webshop-quiet)")
    print(f"  all tables  {elapsed:.2f} s   spans alone {span_s:.2f} s  ->  {spans / span_s:,.0f} spans/s")
    print(f"  re-run      {again:.2f} s (recomputes the lateness window only)")
    return float(spans / span_s)


def bench_fetch(tmp: Path, operations: int, days: int) -> float:
    con = duckdb.connect(str(tmp / "fetch.duckdb"))
    migrate_all(con)
    minutes = days * 1440
    start = datetime(2026, 3, 2)
    started = time.perf_counter()
    con.execute(
        f"""
        INSERT INTO rollup_spans
        SELECT TIMESTAMP '2026-03-02' + m * INTERVAL 1 MINUTE, 'svc-' || (o % 50), 'op-' || o, 'SERVER', 'ok',
               100, 0, 1e9, 1000000, 90000000, 0,
               list_transform(range(40), lambda i: (1500 + (o % 20) + i)::INTEGER),
               list_transform(range(40), lambda i: (1 + (i * 7 + m) % 5)::BIGINT),
               1e7 * (1 + (m % 60) / 600), 2e7, 3e7, 5e7
        FROM range({minutes}) t(m), range({operations}) u(o)
        """
    )
    con.execute("CHECKPOINT")  # a running store has checkpointed its rollups long ago
    rows = con.execute("SELECT count(*) FROM rollup_spans").fetchone()[0]  # type: ignore[index]
    print(f"fetch       {rows:,d} rollup rows ({operations:,d} operations x {days} days at 1 min), "
          f"written in {time.perf_counter() - started:.1f} s")  # fmt: skip
    window = Window(start, start + timedelta(days=days), 60)
    started = time.perf_counter()
    wide = latency_quantiles(con, window, (0.5, 0.95, 0.99))
    fetch_s = time.perf_counter() - started
    print(f"  p50+p95+p99 at 1 min in one read (latency_quantiles): {fetch_s:.2f} s ({wide.height * 3:,d} values)")
    del wide  # keep the next figure from paying for the previous frame's memory
    started = time.perf_counter()
    total = 0
    for kind in ("latency_p50", "latency_p95", "latency_p99"):
        total += signals(con, kind, window).height  # type: ignore[arg-type]
    print(f"  p50, p95, p99 at 1 min as three signals: {time.perf_counter() - started:.2f} s ({total:,d} values)")
    hourly = Window(start, start + timedelta(days=days), 3600)
    started = time.perf_counter()
    merged = signals(con, "latency_p99", hourly, service="svc-7")
    print(f"  p99 at 1 h for 20 operations (merging 60 histograms per value): {time.perf_counter() - started:.2f} s "
          f"({merged.height:,d} values)")  # fmt: skip
    con.close()
    return fetch_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--operations", type=int, default=1000)
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args()
    print(f"machine     {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        rate = bench_rollup(Path(tmp), args.hours)
        fetch = bench_fetch(Path(tmp), args.operations, args.days)
    print(f"rollup_spans_per_s={rate:.0f} fetch_7d_s={fetch:.3f}")


if __name__ == "__main__":
    main()
