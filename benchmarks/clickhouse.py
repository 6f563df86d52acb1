"""ClickHouse plane benchmark: the same data in DuckDB and in ClickHouse (chdb, in-process), side by side.

1. Rollup: simulates ``--scenario`` for ``--hours`` into a DuckDB store (spans, logs, metric
   points) and times ``rollup_all``'s span and metric rollups; writes the same rows into the
   exporter's tables (``store.otel_writer``, as driftscope's receivers would: ``otel_traces``,
   ``otel_logs``, ``otel_metrics_*``) and times the plane's span and metric rollups (INSERT ...
   SELECT inside ClickHouse).
2. Parity: mirrors the plane's rollups and raw rows into a fresh state store and compares the
   rollup rows (spans: keys, counts, histograms exactly, quantiles to 1e-9; metric rollups
   exactly) and the findings of one detection run (last hour, the rest as history) on both.
3. Detection: the detection run's time on each side (ClickHouse: mirror the window, then detect).
4. Fetch: synthetic rollup rows for ``--operations`` operations x 7 days at 1 minute in ClickHouse
   (10.08 M rows with 40-bucket histograms for 1,000) and the time to fetch p50+p95+p99 of all
   of them into polars (``store.rollups_clickhouse.minute_quantiles``): the first fetch and the
   median of three more (the summary line's figure; the first pays for the engine's cold caches).

Ends with one line
``clickhouse_rollup_spans_per_s=<x> duckdb_rollup_spans_per_s=<y> clickhouse_fetch_7d_s=<z> parity=ok|FAILED``.
Goals (issue 22): rollups >= 2 M spans/s in chdb; the 7-day fetch for 1,000 operations < 2 s.
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

import duckdb
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analysis import rollup_all  # noqa: E402
from analysis.metric_rollup import merge_exp_points  # noqa: E402
from analysis.plane import ClickHousePlane  # noqa: E402
from detectors.detection_run import run_detection  # noqa: E402
from simulator.run import simulate  # noqa: E402
from simulator.scenario import load_scenario  # noqa: E402
from simulator.sinks import StoreSink  # noqa: E402
from store.clickhouse import ClickHouse, ClickHouseTarget  # noqa: E402
from store.connection import Store, fetch_arrow  # noqa: E402
from store.otel_writer import ClickHouseWriter  # noqa: E402
from store.rollups_clickhouse import create_rollup_tables, minute_quantiles, rollup_end_ns  # noqa: E402

DAY_NS = 86_400 * 10**9
START_NS = 1_772_409_600 * 10**9  # 2026-03-02T00:00Z


def machine() -> str:
    import chdb

    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor() or "?",
    )  # fmt: skip
    versions = f"Python {platform.python_version()}, DuckDB {duckdb.__version__}, chdb {chdb.__version__}"
    return f"{cpu}, {os.cpu_count()} CPUs; {versions}"


def _findings(con: duckdb.DuckDBPyConnection, history_s: float) -> tuple[list[tuple[str, str, str]], float]:
    started = time.perf_counter()
    done = run_detection(con, window_s=3600, history_s=history_s, resolve_after_s=3600)
    elapsed = time.perf_counter() - started
    found = [] if done is None else sorted((f.detector, f.signal.label(), f.severity) for f in done.findings)
    return found, elapsed


METRIC_ROLLUPS = ("rollup_sums", "rollup_gauges", "rollup_histograms", "rollup_exp_histograms")
METRIC_SOURCES = ("metric_points", "histogram_points", "exp_histogram_points")
RAW = ("spans", "logs", *METRIC_SOURCES, "summary_points")


def _same_metric_rollups(a: duckdb.DuckDBPyConnection, b: duckdb.DuckDBPyConnection, end_ns: int) -> bool:
    # The mirrored window ends with the last minute of spans; a metric point stamped at that end falls after it.
    for table in METRIC_ROLLUPS:
        sql = f"SELECT * FROM {table} WHERE epoch_ns(minute) < {end_ns}"
        if sorted(a.execute(sql).fetchall(), key=repr) != sorted(b.execute(sql).fetchall(), key=repr):
            return False
    return True


def _same_rollups(a: duckdb.DuckDBPyConnection, b: duckdb.DuckDBPyConnection) -> bool:
    left = sorted(a.execute("SELECT * FROM rollup_spans").fetchall(), key=repr)
    right = sorted(b.execute("SELECT * FROM rollup_spans").fetchall(), key=repr)
    if len(left) != len(right):
        return False
    for x, y in zip(left, right, strict=True):
        if x[:13] != y[:13]:
            return False
        for qx, qy in zip(x[13:], y[13:], strict=True):
            if (qx is None) != (qy is None) or (qx is not None and abs(qx - qy) > 1e-9 * abs(qx)):
                return False
    return True


def bench_rollups(tmp: Path, scenario: str, hours: float) -> tuple[float, float, bool]:
    duck = Store(tmp / "duck.duckdb")
    started = time.perf_counter()
    simulate(load_scenario(scenario), StoreSink(duck), hours=hours, history_days=0, seed=1)
    dcon = duck.cursor()
    dcon.execute("CHECKPOINT")
    spans = int(dcon.execute("SELECT count(*) FROM spans").fetchone()[0])  # type: ignore[index]
    points = int(
        dcon.execute("SELECT " + " + ".join(f"(SELECT count(*) FROM {t})" for t in METRIC_SOURCES)).fetchone()[0]
    )  # type: ignore[index]
    print(f"data        {spans:,d} spans, {points:,d} metric points, {hours:g} simulated h of {scenario} "
          f"({time.perf_counter() - started:.0f} s)")  # fmt: skip
    reports = rollup_all(dcon)
    duck_s = next(r.seconds for r in reports if r.source == "spans")
    duck_metrics_s = sum(r.seconds for r in reports if r.source in METRIC_SOURCES)

    plane = ClickHousePlane(ClickHouseTarget(url="chdb:", database="otel_bench"))
    ch = ClickHouse(plane.target)
    ch.create_exporter_tables()
    started = time.perf_counter()
    raw = {t: fetch_arrow(dcon, f"SELECT * FROM {t}") for t in RAW}
    ClickHouseWriter(ch).insert(raw)
    print(f"load        into otel_traces/otel_logs/otel_metrics_* via store.otel_writer: "
          f"{time.perf_counter() - started:.1f} s")  # fmt: skip
    state = Store(tmp / "state.duckdb")
    scon = state.cursor()
    from store.rollups_clickhouse import rollup_plane

    runs = rollup_plane(plane.connection(), scon, plane.config, merge_exp_points)
    ch_s = next(r.seconds for r in runs if r.source == "otel_traces")
    tables = plane.target.tables
    metric_tables = (tables.gauge, tables.sum, tables.histogram, tables.exponential_histogram)
    ch_metrics_s = sum(r.seconds for r in runs if r.source in metric_tables)
    print(f"rollup      duckdb {duck_s:.2f} s -> {spans / duck_s:,.0f} spans/s   clickhouse {ch_s:.2f} s -> "
          f"{spans / ch_s:,.0f} spans/s (INSERT ... SELECT, zero fill, deploy markers)")  # fmt: skip
    print(f"  metrics   duckdb {duck_metrics_s:.2f} s   clickhouse {ch_metrics_s:.2f} s ({points:,d} points: gauges, "
          "counter and histogram deltas with reset detection, exponential histograms)")  # fmt: skip
    started = time.perf_counter()
    again = rollup_plane(plane.connection(), scon, plane.config, merge_exp_points)
    print(f"  re-run    clickhouse {time.perf_counter() - started:.2f} s ({sum(r.rows_written for r in again):,d} rows "
          "recomputed in the lateness window)")  # fmt: skip

    history_s = max(hours * 3600 - 3600, 3600)
    on_duck, duck_detect_s = _findings(dcon, history_s)
    started = time.perf_counter()
    copied = plane.prepare(scon, hours * 3600 + 60, hours * 3600 + 60)
    mirror_s = time.perf_counter() - started
    on_ch, ch_detect_s = _findings(scon, history_s)
    print(f"detect      duckdb {duck_detect_s:.2f} s   clickhouse mirror {mirror_s:.2f} s "
          f"({copied.get('rollup_spans', 0):,d} rollup rows, {copied.get('spans', 0):,d} spans) "
          f"+ detect {ch_detect_s:.2f} s")  # fmt: skip
    end_ns = rollup_end_ns(plane.connection())
    same_rollups = _same_rollups(dcon, scon) and end_ns is not None and _same_metric_rollups(dcon, scon, end_ns)
    parity = same_rollups and on_duck == on_ch
    print(f"parity      span and metric rollup rows {'equal' if same_rollups else 'DIFFER'}; "
          f"findings {len(on_duck)} vs {len(on_ch)}, {'equal' if on_duck == on_ch else 'DIFFER'}")  # fmt: skip
    plane.close()
    ch.close()
    duck.close()
    state.close()
    return spans / ch_s, spans / duck_s, parity


def bench_fetch(operations: int, days: int) -> float:
    ch = ClickHouse(ClickHouseTarget(url="chdb:", database="otel_fetch"))
    create_rollup_tables(ch)
    minutes = days * 1440
    started = time.perf_counter()
    ch.command(f"""
        INSERT INTO otel_fetch.rollup_spans
        SELECT toDateTime({START_NS // 10**9} + m * 60, 'UTC'), concat('svc-', toString(o % 50)),
               concat('op-', toString(o)), 'SERVER', 'ok', 100, 0, 1e9, 1000000, 90000000, 0,
               arrayMap(i -> toInt32(1500 + (o % 20) + i), range(40)),
               arrayMap(i -> toInt64(1 + (i * 7 + m) % 5), range(40)),
               1e7 * (1 + (m % 60) / 600), 2e7, 3e7, 5e7
        FROM (SELECT intDiv(number, {operations}) AS m, number % {operations} AS o FROM numbers({minutes * operations}))
    """)  # fmt: skip
    ch.command("OPTIMIZE TABLE otel_fetch.rollup_spans FINAL")  # a running plane has merged its parts long ago
    rows = ch.scalar("SELECT count() FROM otel_fetch.rollup_spans")
    print(f"fetch       {rows:,d} rollup rows ({operations:,d} operations x {days} days at 1 min) in ClickHouse, "
          f"written in {time.perf_counter() - started:.1f} s")  # fmt: skip
    times = []
    height = 0
    for _ in range(4):
        started = time.perf_counter()
        frame = pl.from_arrow(minute_quantiles(ch, START_NS, START_NS + days * DAY_NS, (0.5, 0.95, 0.99)))
        times.append(time.perf_counter() - started)
        assert isinstance(frame, pl.DataFrame)
        height = frame.height
        del frame  # keep the next run from paying for this frame's memory
    fetch_s = statistics.median(times[1:])
    print(f"  p50+p95+p99 at 1 min into polars: first {times[0]:.2f} s, then median {fetch_s:.2f} s of "
          f"{', '.join(f'{t:.2f}' for t in times[1:])} ({height * 3:,d} values)")  # fmt: skip
    ch.command("DROP DATABASE otel_fetch")
    ch.close()
    return fetch_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="webshop")
    parser.add_argument("--hours", type=float, default=4.0, help="webshop's incident starts at 3 h")
    parser.add_argument("--operations", type=int, default=1000)
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args()
    print(f"machine     {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        ch_rate, duck_rate, parity = bench_rollups(Path(tmp), args.scenario, args.hours)
    fetch = bench_fetch(args.operations, args.days)
    print(
        f"clickhouse_rollup_spans_per_s={ch_rate:.0f} duckdb_rollup_spans_per_s={duck_rate:.0f} "
        f"clickhouse_fetch_7d_s={fetch:.3f} parity={'ok' if parity else 'FAILED'}"
    )


if __name__ == "__main__":
    main()
