"""``driftscope demo``: the whole product in about two minutes, on the embedded DuckDB.

1. A week of history of the default scenario (``webshop``) goes straight into a fresh store
   through the simulator's direct path, simulated in parallel segments (one per core) whose
   rows this process inserts as they come.
2. ``driftscope serve`` starts on free loopback ports, its rollup job every 2 s of wall time
   (in data time); its first run folds in the week.
3. The last hours stream through real OTLP/HTTP (the SDK's exporters) into the running
   service, across the incident: payment 5.2.0 is deployed and makes ``payment:Charge``
   60 % slower, which slows checkout upstream.
4. The service's rollup and detect jobs run at once through its API (``POST
   /api/jobs/{job}/run``, as an operator would after a deploy); the detect job finds the
   regression and dispatches an investigation (Claude when ``ANTHROPIC_API_KEY`` is set, the
   offline playbook otherwise); the service is stopped gracefully; the drift report
   (linking the investigations) is written; a summary with the report's path is printed.

Everything is deterministic for a seed except wall-clock timings.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import queue as queue_module
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from simulator.run import DEFAULT_START_NS
from store.connection import Store

Echo = Callable[[str], None]


@dataclass(frozen=True)
class DemoPlan:
    """What the demo simulates and how fast the service's clock runs."""

    scenario: str = "webshop"
    history_days: float = 7.0
    rate_per_s: float = 3.0
    """Mean root arrivals per second (the scenario's 50/s would not fit the time budget)."""
    stream_from_min: int = 150
    """Scenario minute where streaming over OTLP starts (the deploy is at minute 180)."""
    stream_to_min: int = 270
    seed: int = 7
    start_ns: int = DEFAULT_START_NS + 2 * 86_400_000_000_000
    """Scenario minute 0: Wednesday 2026-03-04 00:00 UTC. One week of history cannot teach a
    weekly pattern, so a Monday morning after a quiet weekend would itself look like drift."""
    segments: int = field(default_factory=lambda: max(1, min(4, os.cpu_count() or 1)))
    rollup_interval_s: float = 2.0
    detect_interval_s: float = 3600.0
    """The scheduled detection stays out of the way: the demo runs the detect job once the stream is in
    (a run started halfway through the stream would cost a whole detection over the week for nothing)."""
    detection_window_s: float = 7_200.0
    """Covers the deploy: the change point itself lies in the window under test."""
    wait_for_detection_s: float = 900.0
    """Deadline of each job run the demo asks for (the rollup waits for the service's first rollup, which
    folds in the whole week: over 90 s on a 2-core machine shared with other work, just over 300 s at
    load average 20-25). It bounds a stuck service only."""


@dataclass
class DemoResult:
    """What the demo did, for the summary."""

    store: Path
    spans_history: int = 0
    spans_streamed: int = 0
    findings: list[dict[str, Any]] = field(default_factory=list)
    investigations: list[dict[str, Any]] = field(default_factory=list)
    report_paths: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _scenario(plan: DemoPlan) -> Any:
    from simulator.scenario import load_scenario

    scenario = load_scenario(plan.scenario)
    arrivals = scenario.arrivals.model_copy(update={"rate_per_s": plan.rate_per_s})
    return scenario.model_copy(update={"arrivals": arrivals})


class _FileSink:
    """A history segment's rows as Arrow IPC files, announced on a queue for the parent to insert."""

    def __init__(self, directory: Path, index: int, queue: Any) -> None:
        self.directory, self.index, self.queue, self.batches = directory, index, queue, 0

    def write(self, tables: dict[str, Any]) -> None:
        import pyarrow as pa

        files = []
        for name, table in tables.items():
            path = self.directory / f"seg{self.index}-{self.batches}-{name}.arrow"
            with pa.OSFile(str(path), "wb") as out, pa.ipc.new_file(out, table.schema) as writer:
                writer.write_table(table)
            files.append((name, str(path)))
        self.batches += 1
        self.queue.put(("rows", files))

    def close(self) -> None:
        """The queue belongs to the parent."""


def _simulate_segment(plan: DemoPlan, index: int, minutes: tuple[int, int], directory: Path, queue: Any) -> None:
    """Simulate scenario minutes [first, last) as Arrow files in ``directory``; report on ``queue``."""
    first, last = minutes
    try:
        from simulator.run import simulate

        summary = simulate(
            _scenario(plan),
            _FileSink(directory, index, queue),
            hours=last / 60,
            from_minute=first,
            seed=plan.seed * 1_000 + index + 1,
            start_ns=plan.start_ns,
        )
        queue.put(("done", summary.rows.get("spans", 0)))
    except BaseException as exc:  # the parent must not wait for rows that never come
        queue.put(("failed", f"history segment {index}: {exc!r}"))
        raise


def load_history(plan: DemoPlan, store_path: Path, echo: Echo) -> int:
    """Simulate the history in parallel segments, inserting their rows into ``store_path`` as they come.

    The segments (one per core, each starting cold) write Arrow files; this process inserts them while
    the segments simulate on, so the store write overlaps the simulation and rows are written once
    (not into a store per segment and then copied)."""
    import pyarrow as pa

    first, last = -round(plan.history_days * 1440), plan.stream_from_min
    cuts = [first + (last - first) * i // plan.segments for i in range(plan.segments + 1)]
    tmp = Path(tempfile.mkdtemp(prefix="driftscope-demo-"))
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_simulate_segment, args=(plan, i, (a, b), tmp, queue), daemon=True)
        for i, (a, b) in enumerate(itertools.pairwise(cuts))
    ]
    echo(f"simulating {plan.history_days:g} days of {plan.scenario} history in {len(procs)} parallel segments")
    store = Store(store_path)
    try:
        for proc in procs:
            proc.start()
        spans, running = 0, len(procs)
        with click.progressbar(length=len(procs), label="  history", file=sys.stderr) as bar:
            while running:
                try:
                    kind, value = queue.get(timeout=5.0)
                except queue_module.Empty:
                    if any(p.exitcode not in (None, 0) for p in procs):
                        raise click.ClickException("a history segment died") from None
                    continue
                if kind == "failed":
                    raise click.ClickException(value)
                if kind == "done":
                    spans += value
                    running -= 1
                    bar.update(1)
                    continue
                tables = {}
                for name, path in value:
                    with pa.memory_map(path) as source:
                        tables[name] = pa.ipc.open_file(source).read_all()
                store.insert(tables)
                for _, path in value:
                    os.unlink(path)
        store.checkpoint()
        return spans
    finally:
        store.close()
        for proc in procs:
            proc.join(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class _Service:
    proc: subprocess.Popen[str]
    otlp_http: int
    http: int
    log: Path

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}{path}", timeout=30) as response:
            return json.loads(response.read())

    def post(self, path: str, timeout_s: float) -> Any:
        request = urllib.request.Request(f"http://127.0.0.1:{self.http}{path}", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return json.loads(response.read())

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=120)


def start_service(plan: DemoPlan, store_path: Path, out_dir: Path) -> _Service:
    """``driftscope serve`` on free loopback ports with the demo's accelerated schedule; investigations
    are written under ``out_dir`` (beside the reports), so the report's links stay short and resolve."""
    env = {
        **os.environ,
        "DRIFTSCOPE_JOBS__ROLLUP_INTERVAL_S": str(plan.rollup_interval_s),
        "DRIFTSCOPE_JOBS__DETECT_INTERVAL_S": str(plan.detect_interval_s),
        "DRIFTSCOPE_DETECTION__WINDOW_S": str(plan.detection_window_s),
        "DRIFTSCOPE_DETECTION__HISTORY_S": str(plan.history_days * 86_400),
        # Investigations: Claude when an API key is set, the offline playbook otherwise.
        "DRIFTSCOPE_INVESTIGATIONS__POLICY": "claude" if os.environ.get("ANTHROPIC_API_KEY") else "playbook",
        "DRIFTSCOPE_INVESTIGATIONS__PERSISTENCE_RUNS": "1",  # the accelerated clock runs few detections
        "DRIFTSCOPE_INVESTIGATIONS__OUT_DIR": str(out_dir / "investigations"),
        "DRIFTSCOPE_REPORTS__OUT_DIR": str(out_dir),
    }
    ports = ["--otlp-http", "127.0.0.1:0", "--otlp-grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"]
    cmd = [sys.executable, "-m", "controller", "serve", "--store", str(store_path), *ports]
    log = store_path.with_suffix(".serve.log")
    with open(log, "ab") as sink:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=sink, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the service prints one JSON line once it listens
    if not line:
        proc.wait(timeout=30)
        raise click.ClickException(f"the service exited before listening; see {log}")
    info = json.loads(line)
    return _Service(proc, int(info["otlp_http"]), int(info["http"]), log)


def stream_incident(plan: DemoPlan, service: _Service) -> int:
    """Send the scenario minutes [stream_from, stream_to) over OTLP/HTTP; return spans sent."""
    from simulator.run import simulate
    from simulator.sinks import OtlpSink

    minutes = plan.stream_to_min - plan.stream_from_min
    with click.progressbar(length=minutes, label="  streaming over OTLP", file=sys.stderr) as bar:
        summary = simulate(
            _scenario(plan),
            OtlpSink(f"http://127.0.0.1:{service.otlp_http}"),
            hours=plan.stream_to_min / 60,
            from_minute=plan.stream_from_min,
            seed=plan.seed,
            start_ns=plan.start_ns,
            progress=bar.update,
        )
    return summary.rows.get("spans", 0)


def detect_now(plan: DemoPlan, service: _Service) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Once the stream is in, run the service's rollup job and then its detect job (which dispatches and
    runs the investigations) through ``POST /api/jobs/{job}/run``, an operator's "run now": each waits
    for a run of its job already going (the first rollup folds in the whole week) and then sees every
    streamed row. Return (open findings, investigations)."""
    for job in ("rollup", "detect"):
        try:
            outcome = service.post(f"/api/jobs/{job}/run", timeout_s=plan.wait_for_detection_s)
        except OSError as exc:
            raise click.ClickException(f"the {job} job did not answer ({exc}); see {service.log}") from None
        if outcome["outcome"] != "ok":
            raise click.ClickException(f"the {job} job failed: {outcome['error']}; see {service.log}")
    investigations = service.get("/api/investigations")["items"]
    findings = service.get("/api/findings?status=open")["items"]
    return list(findings), [i for i in investigations if i["status"] != "running"]


def write_report(store_path: Path, out_dir: Path, findings: list[dict[str, Any]]) -> dict[str, Path]:
    """The drift report of the last day of data (HTML, Markdown, JSON); returns the paths by form.
    Puts each of ``findings`` (API answers) metric effect text in the unit its points declare."""
    from reports import generate_report
    from reports.read import effect_in_unit

    store = Store(store_path)
    try:
        con = store.cursor()
        _, paths = generate_report(con, out_dir, window_s=86_400.0)
        units: dict[tuple[str | None, str], str | None] = {}
        for f in findings:
            f["effect_text"] = effect_in_unit(con, f["effect_text"], f["kind"], service=f.get("service"),
                                              metric=f.get("metric"), before=f.get("before"), after=f.get("after"),
                                              units=units)  # fmt: skip
    finally:
        store.close()
    return dict(paths)


def run_demo(plan: DemoPlan, store_path: Path, out_dir: Path, echo: Echo) -> DemoResult:
    """Run the whole demo (see the module docstring); the store file is recreated."""
    for path in (store_path, store_path.with_suffix(store_path.suffix + ".wal")):
        path.unlink(missing_ok=True)
    result = DemoResult(store_path)
    t0 = time.perf_counter()
    result.spans_history = load_history(plan, store_path, echo)
    result.seconds["history"] = time.perf_counter() - t0

    echo(f"starting driftscope serve (rollups every {plan.rollup_interval_s:g} s)")
    service = start_service(plan, store_path, out_dir)
    try:
        t1 = time.perf_counter()
        echo("streaming the incident window: payment 5.2.0 is deployed at minute 180")
        result.spans_streamed = stream_incident(plan, service)
        result.seconds["stream"] = time.perf_counter() - t1
        echo("running the service's rollup and detect jobs now (POST /api/jobs/{job}/run)")
        t2 = time.perf_counter()
        result.findings, result.investigations = detect_now(plan, service)
        result.seconds["detect"] = time.perf_counter() - t2
    finally:
        code = service.stop()
    if code != 0:
        raise click.ClickException(f"the service exited with status {code}; see {service.log}")
    t3 = time.perf_counter()
    result.report_paths = write_report(store_path, out_dir, result.findings)
    result.seconds["report"] = time.perf_counter() - t3
    return result
