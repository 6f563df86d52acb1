"""OTLP trace ingest benchmark: decode, insert, and end to end over every transport.

Builds trace export requests once from the simulator's spans (scenario ``webshop``, the
simulator's engine and row builder, turned into SDK spans as its OTLP sink does) with the
OpenTelemetry SDK's own OTLP encoder (``encode_spans``), then measures:

* decode-only: the compiled protobuf decoder, the Python one (``decode_proto_python``) and
  ``decode_json`` in this process over every body;
* insert-only: ``Store.insert`` of the decoded Arrow tables, one request per commit and in
  group commits of ``batch_rows_max`` rows (what the writer does under load);
* end to end per transport: a real ``driftscope serve`` subprocess on 127.0.0.1, pinned to
  one CPU (clients on the others), fed the pre-encoded bodies by ``--clients`` separate
  processes (OTLP/HTTP protobuf, OTLP/HTTP JSON, OTLP/gRPC with raw bytes, so clients never
  re-encode), retrying on 429 / RESOURCE_EXHAUSTED so every span arrives exactly once; the
  protobuf transports run twice, with the compiled decoder and with
  ``DRIFTSCOPE_DECODER=python``, side by side in the same run;
* the real SDK pipeline (the simulator's spans into a BatchSpanProcessor + OTLP/HTTP
  exporter) end to end, which is bound by the client's encoding, not by the server.

A success answer from ``serve`` means the rows are committed, so "first request sent to
last answer received" is "first request to last row committed". Row counts are checked
in the DuckDB file after a graceful SIGTERM. The server's own ``/metrics`` say how much of
its time went to DuckDB commits. The script prints figures; it never asserts timings and
ends with one line::

    ingest_spans_per_s=<HTTP protobuf, committed> python_spans_per_s=<same, Python decoder> \
decode_spans_per_s=<compiled decode only>

Over 450 lines because a benchmark script is self-contained by design (data, server,
clients, phases and report in one file a reader can run and audit).

Usage::

    .venv/bin/python benchmarks/ingest.py --quick        # 50k spans smoke run
    .venv/bin/python benchmarks/ingest.py --spans 500000 --clients 2
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import os
import platform
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan

from collector.decode_json import decode_json
from collector.decode_proto import DECODER, decode_proto_python
from simulator.engine import Engine
from simulator.plan import Plan
from simulator.rows import RowBuilder
from simulator.run import DEFAULT_START_NS
from simulator.scenario import load_scenario
from simulator.sinks import SdkRecords
from store.connection import Store

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from otlp_json import proto_to_json_bytes  # noqa: E402

TRANSPORTS = ("http-protobuf", "http-json", "grpc")
DECODERS = ("compiled", "python")
"""Server decoders compared side by side on the protobuf transports."""
CONTENT_TYPES = {"http-protobuf": "application/x-protobuf", "http-json": "application/json"}
GRPC_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SERVICES = (("frontend", "1.8.0"), ("checkout", "2.4.1"), ("inventory", "0.9.3"))
SPANS_PER_TRACE = 8
EVENT_RATIO = 0.10
ERROR_RATIO = 0.02
GROUP_COMMIT_ROWS = 100_000
"""The writer's default ``batch_rows_max`` (largest group commit)."""

REQUEST_TIMEOUT_S = 60.0
"""Bound on one request (HTTP socket timeout, gRPC deadline)."""
RETRIES_MAX = 120
"""Bound on 429 / RESOURCE_EXHAUSTED retries of one request."""

# --------------------------------------------------------------------------- data

SCENARIO = "webshop"
"""The simulator's default scenario generates the spans (its engine and row builder, turned back into SDK
spans as its OTLP sink does): the same telemetry the demo and the detection benchmarks use."""


@dataclass
class Dataset:
    """Pre-encoded export requests: the same spans as protobuf and as OTLP/JSON bodies."""

    protobuf: list[bytes]
    json: list[bytes]
    spans: list[int]
    """Spans in each request."""
    build_s: float


def span_batches(total: int, per_request: int, seed: int) -> Iterator[list[ReadableSpan]]:
    """SDK ``ReadableSpan`` lists of ``per_request`` spans (the last one shorter), simulated minute by minute."""
    scenario = load_scenario(SCENARIO)
    plan = Plan.compile(scenario)
    engine, rows, sdk = Engine(plan, DEFAULT_START_NS, seed), RowBuilder(plan, seed), SdkRecords()
    made, minute = 0, 0
    carry: list[ReadableSpan] = []
    while made < total:
        spans = rows.tables([engine.step(minute)]).get("spans")
        minute += 1
        if spans is not None:
            carry += sdk.spans(spans.slice(0, total - made))
            made += min(spans.num_rows, total - made)
        while len(carry) >= per_request:
            batch, carry = carry[:per_request], carry[per_request:]
            yield batch
    if carry:
        yield carry


def build_dataset(total: int, per_request: int, seed: int = 42) -> Dataset:
    """Encode ``total`` spans into protobuf and OTLP/JSON bodies once (seconds in build_s)."""
    started = time.perf_counter()
    pb_bodies: list[bytes] = []
    json_bodies: list[bytes] = []
    counts: list[int] = []
    for batch in span_batches(total, per_request, seed):
        req = encode_spans(batch)
        pb_bodies.append(req.SerializeToString())
        json_bodies.append(proto_to_json_bytes(req))
        counts.append(len(batch))
    return Dataset(pb_bodies, json_bodies, counts, time.perf_counter() - started)


def check_dataset(data: Dataset) -> str:
    """Say "ok" when both decoders make identical rows of the first and last request."""
    for i in {0, len(data.protobuf) - 1}:
        a = decode_proto_python("traces", data.protobuf[i])
        b = decode_json("traces", data.json[i])
        if a.rejected or b.rejected or not a.tables["spans"].equals(b.tables["spans"]):
            return f"MISMATCH in request {i}: proto rejected {a.rejected}, json rejected {b.rejected}"
    return "ok"


def write_bodies(path: Path, bodies: Sequence[bytes]) -> list[int]:
    """Write bodies back to back into ``path``; return their lengths in bytes."""
    with path.open("wb") as f:
        for body in bodies:
            f.write(body)
    return [len(b) for b in bodies]


# --------------------------------------------------------------------------- server


@dataclass
class Server:
    """A running ``driftscope serve`` subprocess on loopback."""

    proc: subprocess.Popen[str]
    store: Path
    otlp_http: int
    otlp_grpc: int
    api: int

    def cpu_s(self) -> float:
        """User + system CPU seconds used so far (from /proc/<pid>/stat)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mib(self) -> float:
        """Peak resident set size in MiB (VmHWM from /proc/<pid>/status)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def commit_s(self) -> float:
        """Seconds the writer spent committing to DuckDB (from the server's /metrics)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.api, timeout=30)
        try:
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        for line in text.splitlines():
            if line.startswith("driftscope_ingest_write_batch_seconds_sum"):
                return float(line.split()[-1])
        return float("nan")

    def stop(self, timeout_s: float = 120.0) -> int:
        """SIGTERM (graceful: in-flight requests finish, queue committed); kill after timeout."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout=30)
        if self.proc.stdout:
            self.proc.stdout.close()
        return code

    def count_spans(self) -> tuple[int, int]:
        """(rows, distinct span ids) in table ``spans``; call after ``stop``."""
        con = duckdb.connect(str(self.store), read_only=True)
        try:
            row = con.execute("SELECT count(*), count(DISTINCT span_id) FROM spans").fetchone()
        finally:
            con.close()
        return (int(row[0]), int(row[1])) if row else (0, 0)


def cpu_split() -> tuple[set[int], set[int]]:
    """(server CPUs, client CPUs): the server alone on one CPU when there are several."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return set(cpus), set(cpus)
    return {cpus[0]}, set(cpus[1:])


def start_server(store: Path, log: Path, timeout_s: float = 60.0, decoder: str = "compiled") -> Server:
    """Start ``driftscope serve`` on free 127.0.0.1 ports and wait for its listening line.

    Same command as tests/conftest.py ``start_server``; stderr goes to ``log`` so a chatty
    server can never block on a full pipe. The server runs on the CPUs of ``cpu_split``
    with the ``decoder`` asked for (``compiled`` or ``python``).
    """
    cmd = [sys.executable, "-m", "controller", "serve", "--store", str(store)]
    cmd += ["--otlp-http", "127.0.0.1:0", "--otlp-grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"]
    env = {**os.environ, "DRIFTSCOPE_DECODER": "native" if decoder == "compiled" else "python"}
    server_cpus = cpu_split()[0]
    with log.open("w") as err:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            cwd=REPO,
            env=env,
        )
    # Before the interpreter has started its threads: they all inherit the affinity.
    os.sched_setaffinity(proc.pid, server_cpus)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    line = proc.stdout.readline() if ready else ""
    if not line:
        proc.kill()
        proc.wait(timeout=30)
        raise RuntimeError(f"driftscope serve did not start within {timeout_s}s: {log.read_text()[-2000:]}")
    info = orjson.loads(line)
    return Server(proc, store, int(info["otlp_http"]), int(info["otlp_grpc"]), int(info["http"]))


# --------------------------------------------------------------------------- clients


@dataclass(frozen=True)
class ClientJob:
    """One client process's share of the requests: a byte range of the bodies file."""

    transport: str
    port: int
    data_path: str
    offset: int
    lengths: list[int]
    spans: list[int]
    deadline_s: float
    """Wall-clock budget of the whole client, seconds."""


@dataclass
class ClientResult:
    """What one client sent; times are ``time.monotonic()`` seconds (system-wide clock)."""

    spans: int = 0
    requests: int = 0
    retries: int = 0
    rejected: int = 0
    first_send: float = 0.0
    last_done: float = 0.0
    cpu_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    error: str = ""


class Refused(Exception):
    """The server asked to retry later (429 / RESOURCE_EXHAUSTED) after ``delay_s``."""

    def __init__(self, delay_s: float) -> None:
        super().__init__(f"retry after {delay_s}s")
        self.delay_s = delay_s


def _http_sender(transport: str, port: int) -> Callable[[bytes], int]:
    """A function POSTing one body over a keep-alive connection; returns rejected spans."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
    headers = {"Content-Type": CONTENT_TYPES[transport]}

    def send(body: bytes) -> int:
        conn.request("POST", "/v1/traces", body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status == 429:
            raise Refused(float(resp.getheader("Retry-After") or 1))
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}: {data[:300]!r}")
        return _rejected(data, json=transport == "http-json")

    return send


def _grpc_sender(port: int) -> Callable[[bytes], int]:
    """A function sending one raw protobuf body over gRPC; returns rejected spans."""
    import grpc  # only the gRPC client processes need it
    from google.rpc.error_details_pb2 import RetryInfo

    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(channel).result(timeout=30)
    export = channel.unary_unary(GRPC_EXPORT, request_serializer=None, response_deserializer=None)

    def send(body: bytes) -> int:
        try:
            data = export(body, timeout=REQUEST_TIMEOUT_S)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise
            delay = 1.0
            for key, value in exc.trailing_metadata() or ():
                if key == "google.rpc.retryinfo-bin":
                    d = RetryInfo.FromString(value).retry_delay
                    delay = d.seconds + d.nanos / 1e9
            raise Refused(delay) from None
        return _rejected(data, json=False)

    return send


def _rejected(data: bytes, *, json: bool) -> int:
    """Rejected spans in an export response body (0 for the usual empty answer)."""
    if json:
        doc = orjson.loads(data) if data else {}
        return int(doc.get("partialSuccess", {}).get("rejectedSpans", 0))
    if not data:
        return 0
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    return int(ExportTraceServiceResponse.FromString(data).partial_success.rejected_spans)


def _send_all(job: ClientJob, bodies: list[bytes], send: Callable[[bytes], int], out: ClientResult) -> None:
    """Send every body once, sleeping and retrying when refused; fills ``out``."""
    deadline = time.monotonic() + job.deadline_s
    out.first_send = time.monotonic()
    cpu0 = time.process_time()
    for body, spans in zip(bodies, job.spans, strict=True):
        started = time.monotonic()
        for _ in range(RETRIES_MAX):
            try:
                out.rejected += send(body)
                break
            except Refused as exc:
                out.retries += 1
                if time.monotonic() + exc.delay_s > deadline:
                    raise TimeoutError(f"client deadline of {job.deadline_s}s passed") from None
                time.sleep(exc.delay_s)
        else:
            raise TimeoutError(f"request refused {RETRIES_MAX} times")
        out.last_done = time.monotonic()
        out.latencies_s.append(out.last_done - started)
        out.requests += 1
        out.spans += spans
    out.cpu_s = time.process_time() - cpu0


def client_main(job: ClientJob, barrier: Any, results: Any) -> None:
    """Client process: load its bodies, connect, wait for the start, send, report."""
    out = ClientResult()
    try:
        os.sched_setaffinity(0, cpu_split()[1])
        with open(job.data_path, "rb") as f:
            f.seek(job.offset)
            blob = f.read(sum(job.lengths))
        bodies, pos = [], 0
        for n in job.lengths:
            bodies.append(blob[pos : pos + n])
            pos += n
        del blob
        send = _grpc_sender(job.port) if job.transport == "grpc" else _http_sender(job.transport, job.port)
        barrier.wait()
        _send_all(job, bodies, send, out)
    except Exception as exc:
        out.error = f"{type(exc).__name__}: {exc}"
        barrier.abort()
    results.put(out)


def split_jobs(
    transport: str, port: int, data_path: Path, *, lengths: list[int], spans: list[int], clients: int, deadline_s: float
) -> list[ClientJob]:
    """Contiguous, near-equal shares of the requests for each client."""
    jobs, start = [], 0
    for i in range(clients):
        end = start + len(lengths) // clients + (1 if i < len(lengths) % clients else 0)
        offset = sum(lengths[:start])
        jobs.append(
            ClientJob(transport, port, str(data_path), offset, lengths[start:end], spans[start:end], deadline_s)
        )
        start = end
    return jobs


def run_clients(jobs: list[ClientJob], server: Server, timeout_s: float) -> tuple[list[ClientResult], float]:
    """Run the client processes together; return their results and the server CPU s used."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(len(jobs) + 1, timeout=180)
    results = ctx.Queue()
    procs = [ctx.Process(target=client_main, args=(job, barrier, results), daemon=True) for job in jobs]
    for p in procs:
        p.start()
    try:
        barrier.wait()
        cpu0 = server.cpu_s()
        out = [results.get(timeout=timeout_s) for _ in procs]
        cpu = server.cpu_s() - cpu0
    except Exception as exc:
        out, cpu = [ClientResult(error=f"run aborted: {type(exc).__name__}: {exc}")], float("nan")
        out += _drain(results, len(procs), timeout_s=5.0)
    for p in procs:
        p.join(timeout=30)
        if p.is_alive():
            p.terminate()
            p.join(timeout=10)
    return out, cpu


def _drain(results: Any, most: int, timeout_s: float) -> list[ClientResult]:
    """Whatever results the clients of an aborted run still report (their errors)."""
    out: list[ClientResult] = []
    try:
        for _ in range(most):
            out.append(results.get(timeout=timeout_s))
    except Exception:
        pass
    return out


# --------------------------------------------------------------------------- phases


@dataclass
class Row:
    """One line of the result table."""

    phase: str
    spans: int
    seconds: float
    server_cpu_s: float | None = None
    client_cpu_s: float | None = None
    peak_rss_mib: float | None = None
    retries: int | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    commit_s: float | None = None
    """Server seconds spent in DuckDB commits (writer thread)."""
    check: str = ""

    @property
    def rate(self) -> float:
        """Spans per second."""
        return self.spans / self.seconds if self.seconds > 0 else float("nan")


def _count_check(rows: tuple[int, int], expected: int, problems: str = "") -> str:
    """'ok N' when ``rows`` (count, distinct span ids) both equal ``expected``."""
    count, distinct = rows
    if count == expected and distinct == expected and not problems:
        return f"ok {count}"
    return f"MISMATCH rows {count} distinct {distinct} expected {expected} {problems}".strip()


def _quantile_ms(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3


def _compiled_decode(signal: str, body: bytes) -> Any:
    """The compiled decoder alone (no fallback: a declined body counts as not accepted)."""
    assert DECODER.decoder is not None
    return DECODER.decoder.decode(signal, body)


def decode_only(fmt: str, bodies: list[bytes], spans: int, *, keep: bool) -> tuple[Row, list[pa.Table]]:
    """Decode every body in this process; the Row and (when ``keep``) the ``spans`` tables.

    ``fmt``: ``compiled`` or ``python`` (protobuf), or ``json``.
    """
    decode: Callable[[str, bytes], Any] = {
        "compiled": _compiled_decode,
        "python": decode_proto_python,
        "json": decode_json,
    }[fmt]
    tables: list[pa.Table] = []
    accepted = 0
    cpu0, started = time.process_time(), time.perf_counter()
    for body in bodies:
        decoded = decode("traces", body)
        if decoded is None:
            continue
        accepted += decoded.accepted
        if keep:
            tables.append(decoded.tables["spans"])
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu0
    check = f"ok {accepted}" if accepted == spans else f"MISMATCH accepted {accepted} expected {spans}"
    label = "json (Python)" if fmt == "json" else f"protobuf ({fmt})"
    return Row(f"decode-only {label}", spans, seconds, client_cpu_s=cpu, check=check), tables


def insert_only(tables: list[pa.Table], store_path: Path, group_rows: int) -> Row:
    """Insert decoded tables into a fresh store, up to ``group_rows`` rows per commit."""
    batches: list[pa.Table] = []
    pending: list[pa.Table] = []
    for t in tables:
        if pending and sum(p.num_rows for p in pending) + t.num_rows > group_rows:
            batches.append(pa.concat_tables(pending))
            pending = []
        pending.append(t)
    if pending:
        batches.append(pa.concat_tables(pending))
    store = Store(store_path)
    cpu0, started = time.process_time(), time.perf_counter()
    for batch in batches:
        store.insert({"spans": batch})
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu0
    store.close()
    con = duckdb.connect(str(store_path), read_only=True)
    row = con.execute("SELECT count(*), count(DISTINCT span_id) FROM spans").fetchone()
    con.close()
    spans = sum(t.num_rows for t in tables)
    label = "1 request" if group_rows <= tables[0].num_rows else f"{group_rows // 1000}k rows"
    counts = (int(row[0]), int(row[1])) if row else (0, 0)
    return Row(f"insert-only ({label}/commit)", spans, seconds, client_cpu_s=cpu, check=_count_check(counts, spans))


def transport_run(
    transport: str, data_path: Path, data: Dataset, workdir: Path, args: argparse.Namespace, *, decoder: str
) -> Row:
    """Replay the pre-encoded bodies through one transport to a fresh ``driftscope serve``."""
    bodies = data.json if transport == "http-json" else data.protobuf
    lengths = write_bodies(data_path, bodies)
    name = f"{transport}-{decoder}"
    server = start_server(workdir / f"{name}.duckdb", workdir / f"{name}.log", decoder=decoder)
    try:
        port = server.otlp_grpc if transport == "grpc" else server.otlp_http
        jobs = split_jobs(
            transport, port, data_path, lengths=lengths, spans=data.spans, clients=args.clients, deadline_s=args.timeout
        )
        results, cpu = run_clients(jobs, server, args.timeout + 60)
        rss = server.peak_rss_mib()
        commit = server.commit_s()
    finally:
        code = server.stop()
    data_path.unlink()
    errors = "; ".join(r.error for r in results if r.error)
    sent = sum(r.spans for r in results)
    rejected = sum(r.rejected for r in results)
    problems = " ".join(
        p for p in (f"exit {code}" if code else "", f"rejected {rejected}" if rejected else "", errors) if p
    )
    active = [r for r in results if r.requests]
    seconds = max(r.last_done for r in active) - min(r.first_send for r in active) if active else float("nan")
    latencies = [x for r in results for x in r.latencies_s]
    label = f"serve {transport} [{decoder}]" if transport != "http-json" else "serve http-json [Python JSON]"
    return Row(
        label,
        sent,
        seconds,
        server_cpu_s=cpu,
        client_cpu_s=sum(r.cpu_s for r in results),
        peak_rss_mib=rss,
        retries=sum(r.retries for r in results),
        p50_ms=_quantile_ms(latencies, 0.5),
        p99_ms=_quantile_ms(latencies, 0.99),
        commit_s=commit,
        check=_count_check(server.count_spans(), sum(data.spans), problems),
    )


def sdk_run(spans: int, workdir: Path, seed: int = 7) -> Row:
    """Real SDK pipeline: the simulator's spans -> BatchSpanProcessor -> OTLP/HTTP exporter -> serve."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    server = start_server(workdir / "sdk.duckdb", workdir / "sdk.log")
    try:
        exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{server.otlp_http}/v1/traces", timeout=30)
        # A queue as large as the run, so the benchmark measures throughput, not drops.
        processor = BatchSpanProcessor(
            exporter, max_queue_size=spans + 2048, max_export_batch_size=512, schedule_delay_millis=200
        )
        cpu0, client0, started = server.cpu_s(), time.process_time(), time.perf_counter()
        for batch in span_batches(spans, 512, seed):
            for span in batch:
                processor.on_end(span)
        flushed = processor.force_flush(timeout_millis=600_000)
        seconds = time.perf_counter() - started
        client_cpu, cpu = time.process_time() - client0, server.cpu_s() - cpu0
        rss = server.peak_rss_mib()
        processor.shutdown()  # type: ignore[no-untyped-call]
    finally:
        code = server.stop()
    problems = " ".join(p for p in ("" if flushed else "flush timed out", f"exit {code}" if code else "") if p)
    return Row(
        "SDK BatchSpanProcessor -> OTLP/HTTP",
        spans,
        seconds,
        server_cpu_s=cpu,
        client_cpu_s=client_cpu,
        peak_rss_mib=rss,
        check=_count_check(server.count_spans(), spans, problems),
    )


# --------------------------------------------------------------------------- report


def machine() -> list[str]:
    """Header lines describing the machine and software versions."""
    cpu = platform.processor()
    if not cpu:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:")
    )
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"machine   {cpu or platform.machine()}, {os.cpu_count()} CPUs, {mem_kib / 2**20:.1f} GiB, load avg {load}",
        f"software  Python {platform.python_version()}, DuckDB {duckdb.__version__}, pyarrow {pa.__version__}, "
        f"{platform.system()} {platform.release()}",
    ]


def dataset_lines(data: Dataset, check: str) -> list[str]:
    """Header lines describing the data set."""
    spans = sum(data.spans)
    pb, js = sum(map(len, data.protobuf)), sum(map(len, data.json))
    return [
        f"data      {spans:,} spans in {len(data.spans):,} requests of {max(data.spans)} spans, "
        f"simulated (scenario {SCENARIO})",
        f"          protobuf {pb / 2**20:,.1f} MiB ({pb / spans:.0f} B/span), "
        f"OTLP/JSON {js / 2**20:,.1f} MiB ({js / spans:.0f} B/span); "
        f"built in {data.build_s:.1f}s; proto/JSON decoders agree: {check}",
    ]


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(rows: list[Row]) -> list[str]:
    """The result table; CPU and commit columns are seconds per 100k spans."""
    head = (
        f"{'phase':<40} {'spans':>9} {'wall s':>8} {'spans/s':>9} {'srv CPU':>8} {'commit':>7} {'cli CPU':>8} "
        f"{'srv RSS':>8} {'retries':>7} {'p50 ms':>7} {'p99 ms':>7}  check"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        per100k = 100_000 / r.spans if r.spans else float("nan")
        srv = None if r.server_cpu_s is None else r.server_cpu_s * per100k
        cli = None if r.client_cpu_s is None else r.client_cpu_s * per100k
        commit = None if r.commit_s is None else r.commit_s * per100k
        lines.append(
            f"{r.phase:<40} {r.spans:>9,} {r.seconds:>8.2f} {r.rate:>9,.0f} {_fmt(srv, '8.2f'):>8} "
            f"{_fmt(commit, '7.2f'):>7} {_fmt(cli, '8.2f'):>8} {_fmt(r.peak_rss_mib, '8.0f'):>8} "
            f"{_fmt(r.retries, '7d'):>7} {_fmt(r.p50_ms, '7.1f'):>7} {_fmt(r.p99_ms, '7.1f'):>7}  {r.check}"
        )
    lines += [
        "",
        "spans/s: decode/insert-only = in this process; serve = first request sent to last answer",
        "  (an answer means committed); SDK = first span created to force_flush() done.",
        "srv CPU / cli CPU: CPU seconds per 100k spans (server from /proc/<pid>/stat, clients summed).",
        "commit: seconds per 100k spans the server's writer spent in DuckDB commits (its /metrics).",
        "srv RSS: server peak resident memory (VmHWM), MiB. p50/p99: per request, retries included.",
    ]
    return lines


def _find(rows: list[Row], phase: str) -> Row | None:
    return next((r for r in rows if r.phase == phase), None)


def ratios(rows: list[Row]) -> list[str]:
    """Compiled / Python ratios of the pairs measured side by side in this run."""
    pairs = [(f"serve {t} [compiled]", f"serve {t} [python]") for t in TRANSPORTS if t != "http-json"] + [
        ("decode-only protobuf (compiled)", "decode-only protobuf (python)")
    ]
    lines = ["compiled / python, same run:"]
    for fast_name, slow_name in pairs:
        fast, slow = _find(rows, fast_name), _find(rows, slow_name)
        if fast is None or slow is None:
            continue
        cpu = ""
        fast_cpu = fast.server_cpu_s if fast.server_cpu_s is not None else fast.client_cpu_s
        slow_cpu = slow.server_cpu_s if slow.server_cpu_s is not None else slow.client_cpu_s
        if fast_cpu and slow_cpu:
            cpu = f", CPU per span {fast_cpu / fast.spans / (slow_cpu / slow.spans):.2f}x"
        lat = ""
        if fast.p99_ms and slow.p99_ms:
            lat = f", p99 {fast.p99_ms:.1f} vs {slow.p99_ms:.1f} ms"
        rss = ""
        if fast.peak_rss_mib and slow.peak_rss_mib:
            rss = f", peak RSS {fast.peak_rss_mib:.0f} vs {slow.peak_rss_mib:.0f} MiB"
        lines.append(
            f"  {fast_name.replace(' [compiled]', '').replace(' (compiled)', ''):<32} "
            f"throughput {fast.rate / slow.rate:5.2f}x{cpu}{lat}{rss}"
        )
    return lines


def summary(rows: list[Row]) -> str:
    """The issue's one-line result (0 for a phase that did not run)."""

    def rate(phase: str) -> int:
        row = _find(rows, phase)
        return round(row.rate) if row is not None and row.check.startswith("ok") else 0

    return (
        f"ingest_spans_per_s={rate('serve http-protobuf [compiled]')} "
        f"python_spans_per_s={rate('serve http-protobuf [python]')} "
        f"decode_spans_per_s={rate('decode-only protobuf (compiled)')}"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line flags; ``--quick`` shrinks the defaults for a smoke run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, help="spans to replay (default 500000, --quick 50000)")
    parser.add_argument("--clients", type=int, default=2, help="client processes per transport (default 2)")
    parser.add_argument("--transports", default=",".join(TRANSPORTS), help="comma list of " + ", ".join(TRANSPORTS))
    parser.add_argument("--sdk-spans", type=int, help="spans for the SDK exporter run, 0 skips (default 50000)")
    parser.add_argument("--spans-per-request", type=int, default=512, help="spans per export request (default 512)")
    parser.add_argument("--timeout", type=float, default=900.0, help="budget of one transport run, s (default 900)")
    parser.add_argument("--quick", action="store_true", help="50k spans, 10k SDK spans: a fast smoke run")
    args = parser.parse_args(argv)
    if args.spans is None:
        args.spans = 50_000 if args.quick else 500_000
    if args.sdk_spans is None:
        args.sdk_spans = 10_000 if args.quick else 50_000
    args.transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    unknown = sorted(set(args.transports) - set(TRANSPORTS))
    if unknown:
        parser.error(f"unknown transports {unknown}; choose from {', '.join(TRANSPORTS)}")
    if args.spans < 1 or args.clients < 1 or args.spans_per_request < 1 or args.sdk_spans < 0:
        parser.error("--spans, --clients and --spans-per-request must be >= 1, --sdk-spans >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Build the data once, run every phase, print the header, the table and the summary line."""
    args = parse_args(argv)
    if DECODER.decoder is None:
        sys.exit(f"{DECODER.notice}: build it (scripts/setup with cargo) to compare it with the Python decoder")
    server_cpus, client_cpus = cpu_split()
    print("\n".join(machine()), flush=True)
    print(f"cpus      server on {sorted(server_cpus)}, clients on {sorted(client_cpus)}; {DECODER.notice}")
    print(f"building {args.spans:,} spans ...", flush=True)
    data = build_dataset(args.spans, args.spans_per_request)
    print("\n".join(dataset_lines(data, check_dataset(data))), flush=True)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="driftscope-bench-") as tmp:
        workdir = Path(tmp)
        for transport in args.transports:
            for decoder in DECODERS if transport != "http-json" else ("python",):
                print(f"running serve over {transport} with the {decoder} decoder ...", flush=True)
                rows.append(transport_run(transport, workdir / "bodies.bin", data, workdir, args, decoder=decoder))
        print("running decode-only and insert-only ...", flush=True)
        # Timed without keeping the tables (memory is reused, as in the server), then again
        # untimed to keep them for insert-only.
        rows.append(decode_only("compiled", data.protobuf, args.spans, keep=False)[0])
        tables = decode_only("compiled", data.protobuf, args.spans, keep=True)[1]
        rows.append(decode_only("python", data.protobuf, args.spans, keep=False)[0])
        rows.append(decode_only("json", data.json, args.spans, keep=False)[0])
        rows.append(insert_only(tables, workdir / "insert-1.duckdb", 1))
        rows.append(insert_only(tables, workdir / "insert-group.duckdb", GROUP_COMMIT_ROWS))
        del tables
        if args.sdk_spans:
            print(f"running the SDK exporter with {args.sdk_spans:,} spans ...", flush=True)
            rows.append(sdk_run(args.sdk_spans, workdir))
    print()
    print("\n".join(table(rows)))
    print()
    print("\n".join(ratios(rows)))
    print("load avg at the end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (other work skews the figures)")
    print(summary(rows))


if __name__ == "__main__":
    main()
