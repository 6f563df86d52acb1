"""A digital twin: a scenario in the simulator's own format fitted from a window of a store's telemetry.

``fit_twin`` reads the window's spans, queue gauges, logs and a sample of attribute maps
(``store.twin_reads``) and fits, per operation: the calls it makes (``twin.topology``), its
self-time distribution (``twin.distfit``; own work only: the minutes where the fitted queue
kept waits negligible, when there are enough of them), its servers (``twin.servers``, from the
queue-depth gauge or else the latency-versus-load curve), its own error rate (errors not
caused by a failed call), its kind, method, attributes and log statements (``twin.extras``);
and the arrival process of the entry points (``twin.arrivals``). Every fitted value carries
its evidence, written as comments above its table by ``twin.render``. An operation with fewer than
``MIN_SAMPLES`` usable spans is a fixed-latency stub whose comment says why.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field

import duckdb
import numpy as np
import polars as pl

from simulator.scenario import Scenario
from store.twin_reads import attribute_samples, queue_gauges, window_logs, window_spans
from twin.arrivals import ArrivalFit, fit_arrivals
from twin.distfit import TAIL_SCALE, ServiceTimeFit, fit_convolved, fit_service_time
from twin.extras import infer_attributes, log_statements
from twin.queue_fit import fit_servers, hold_for, queue_minutes, servers_from_shape, wait_share, waits
from twin.servers import ServersFit
from twin.spans import Structure, covered_ms, structure
from twin.topology import EdgeFit, fit_edges

MIN_SAMPLES = 50
"""Successful spans an operation needs for a fitted service time (fewer: a fixed-latency stub)."""
LOW_WAIT = 0.02
"""Minutes whose fitted probability of waiting is below this give the self times (when enough)."""
QUEUE_METRICS = ("queue.depth", "temporal.task_queue.backlog")


class TwinError(ValueError):
    """The window cannot give a twin (no spans, no entry point); the message says what is missing."""


@dataclass
class OpFit:
    ref: str
    spans: int
    evidence: list[str] = field(default_factory=list)
    stub: str | None = None
    """Why the operation is a fixed-latency stub (None: fitted)."""
    servers: ServersFit | None = None
    median_ms: float | None = None


@dataclass
class TwinFit:
    """The fitted scenario, and per operation and edge what it rests on."""

    scenario: Scenario
    ops: dict[str, OpFit]
    edges: list[EdgeFit]
    arrivals: ArrivalFit
    start_ns: int
    end_ns: int
    notes: list[str]
    spans: int

    @property
    def stubs(self) -> dict[str, str]:
        return {r: o.stub for r, o in self.ops.items() if o.stub}


def _rtts_ms(s: Structure, edges: list[EdgeFit]) -> np.ndarray:
    """Network round trips: client span minus the callee's server span, where both are traced (ms).

    Asynchronous calls are left out: their client span is the round trip alone, so the difference is
    the round trip less the whole server span, and the few that stay positive (short callees) drag
    the measured round trips down."""
    async_edges = sorted(f"{e.caller}->{e.callee}" for e in edges if e.mode == "async")
    pairs = s.calls.filter(
        pl.col("child_dur_ms").is_not_null()
        & ~pl.col("is_error")
        & ~pl.concat_str([pl.col("caller"), pl.lit("->"), pl.col("callee")]).is_in(async_edges)
    )
    d = (pairs["dur_ms"] - pairs["child_dur_ms"]).to_numpy()
    result: np.ndarray = d[d >= 0]
    return result


def _per_op_samples(s: Structure, edges: list[EdgeFit], rtt_ms: float) -> pl.DataFrame:
    """One row per span usable for an operation's own work: ref, minute, self_ms, total_ms (operations seen only
    in client spans: with the round trip, unclipped), dur_ms, ok."""
    async_edges = {(e.caller, e.callee) for e in edges if e.mode == "async"}
    sync = s.calls.filter(
        ~pl.struct("caller", "callee").map_elements(
            lambda r: (r["caller"], r["callee"]) in async_edges, return_dtype=pl.Boolean
        )
    ) if async_edges else s.calls  # fmt: skip
    cov = covered_ms(sync.select("caller_span", "start_ns", "end_ns"))
    srv = (
        s.servers.join(cov, left_on="span_id", right_on="caller_span", how="left")
        .with_columns(pl.col("covered_ms").fill_null(0.0))
        .select(
            "ref",
            "minute",
            (pl.col("dur_ms") - pl.col("covered_ms")).alias("self_ms"),
            (pl.col("dur_ms") - pl.col("covered_ms")).alias("total_ms"),
            "dur_ms",
            (~pl.col("is_error") & (pl.col("n_failed_calls") == 0)).alias("ok"),  # retried calls leave back-off gaps
            "own_error",
        )
    )
    only = s.calls.filter(pl.col("callee").is_in(sorted(s.client_only))).select(
        pl.col("callee").alias("ref"),
        "minute",
        (pl.col("dur_ms") - rtt_ms).clip(lower_bound=1e-3).alias("self_ms"),
        pl.col("dur_ms").alias("total_ms"),  # round trip included: what the deconvolution takes apart
        (pl.col("dur_ms") - rtt_ms).clip(lower_bound=1e-3).alias("dur_ms"),
        (~pl.col("is_error")).alias("ok"),
        (pl.col("is_error") & ~pl.col("status_message").str.to_lowercase().str.contains("deadline|timeout")).alias(
            "own_error"
        ),
    )
    return pl.concat([srv, only.cast(srv.schema)])  # type: ignore[arg-type]


def _service_version(spans: pl.DataFrame) -> tuple[dict[str, str], list[dict[str, object]]]:
    """Latest version per service, and the deploys seen in the window (minute of a version's first span)."""
    versions: dict[str, str] = {}
    deploys: list[dict[str, object]] = []
    firsts = spans.group_by("service", "version").agg(pl.col("start_ns").min().alias("first")).sort("first")
    for (service,), g in firsts.group_by("service", maintain_order=True):
        rows = g.sort("first").rows()
        versions[str(service)] = str(rows[-1][1] or "1.0.0")
        for prev, cur in itertools.pairwise(rows):
            if prev[1] != cur[1] and cur[1]:
                deploys.append({"service": service, "version": cur[1], "at_ns": cur[2]})
    return versions, deploys


@dataclass(frozen=True)
class _Window:
    """What every operation's fit reads: the structure, edges, round trips, gauges, attributes, logs."""

    s: Structure
    edges: list[EdgeFit]
    rtts: np.ndarray
    gauges: pl.DataFrame
    attrs: dict[str, dict[str, object]]
    logs: dict[str, list[dict[str, object]]]
    minutes: int
    min_samples: int

    @property
    def rtt(self) -> float:
        return float(np.median(self.rtts)) if len(self.rtts) else 0.0


def _service_time(
    ref: str, ok: pl.DataFrame, per_min: pl.DataFrame, sv: ServersFit | None, w: _Window, *, evidence: list[str]
) -> ServiceTimeFit:
    """The own-work distribution of ``ref`` from its successful spans' self times, waits and round trips out."""
    chosen = ok
    drawn = np.zeros(ok.height)
    if sv is not None:
        drawn = waits(per_min, sv, ok["minute"].to_numpy())
        calm_minutes = per_min.filter(pl.Series(wait_share(per_min, sv) < LOW_WAIT))["minute"]
        calm = ok.filter(pl.col("minute").is_in(calm_minutes.implode()))
        if calm.height >= max(w.min_samples, ok.height // 4):
            chosen = calm
            drawn = waits(per_min, sv, calm["minute"].to_numpy())
        if chosen.height < ok.height:
            evidence.append(
                f"self time from the {chosen.height} spans of minutes where queueing was negligible (of {ok.height})"
            )
    self_ms = chosen["self_ms"].to_numpy()
    queued = float(np.mean(drawn > 0)) if len(drawn) else 0.0
    beyond = float(np.mean(drawn > (TAIL_SCALE - 1.0) * float(np.median(self_ms)))) if len(drawn) else 0.0
    st = fit_service_time(self_ms, beyond)
    remote = ref in w.s.client_only and len(w.rtts) > 0
    extra = drawn + (np.random.default_rng(5).choice(w.rtts, len(drawn)) if remote else 0.0)
    if remote or queued > LOW_WAIT:
        # a body much shorter than the round trip leaves half the differences dur - median round trip negative:
        # deconvolve the raw client durations, not the clipped differences
        total = chosen["total_ms"].to_numpy() if remote else self_ms
        st = fit_convolved(total, extra, st)
        evidence.append(
            f"body deconvolved from {'measured round trips and ' if remote else ''}"
            f"the fitted queue's waits ({queued:.1%} of spans wait)"
        )
    q = np.quantile(self_ms, [0.5, 0.99])
    tail = f"; tail {st.tail_prob:.2%} alpha {st.tail_alpha:.2f}" if st.tail_prob else ""
    evidence.append(
        f"service_time: {st.dist} fitted to {st.n} self times (KS distance {st.ks:.3f}); "
        f"observed self p50 {q[0]:.3g} ms, p99 {q[1]:.3g} ms{tail}"
    )
    return st


def _fit_op(ref: str, rows: pl.DataFrame, w: _Window) -> tuple[OpFit, dict[str, object]]:
    """One operation's fit and its scenario table."""
    fit = OpFit(ref, rows.height)
    ok = rows.filter(pl.col("ok"))
    own_err = float(rows["own_error"].mean()) if rows.height else 0.0  # type: ignore[arg-type]
    per_min = queue_minutes(ref, rows, w.gauges, w.minutes)
    sv = fit_servers(per_min)
    if sv is not None and per_min["queue"].is_null().all() and ok.height >= w.min_samples:
        sv = servers_from_shape(per_min, ok, sv)
        per_min = hold_for(per_min, sv.servers)
    fit.servers = sv
    table: dict[str, object] = {}
    if ok.height < w.min_samples:
        source = ok["self_ms"] if ok.height else rows["dur_ms"]
        med = max(float(source.median() or 1.0), 1e-3)  # type: ignore[arg-type]
        fit.stub = f"too little data: {ok.height} successful spans in the window (< {w.min_samples})"
        fit.median_ms = med
        table["service_time"] = {"median_ms": round(med, 4), "sigma": 0.01}
        fit.evidence.append(f"STUB ({fit.stub}): fixed latency {med:.3g} ms, the window's median")
    else:
        st = _service_time(ref, ok, per_min, sv, w, evidence=fit.evidence)
        fit.median_ms = st.median_ms
        table["service_time"] = st.fields()
    if sv is not None:
        table["servers"] = int(sv.servers)
        bound = "" if sv.identified else " (no queue formed: the least count that fits, a lower bound)"
        fit.evidence.append(
            f"servers: {sv.servers} from the {sv.method}, peak utilisation {sv.peak_utilisation:.2f}{bound}"
        )
    else:
        table["servers"] = 1000
        fit.evidence.append("servers: 1000 (under 3 busy minutes: no queue to fit)")
    table["error_rate"] = round(own_err, 6)
    fit.evidence.append(
        f"error_rate: {own_err:.4%} own failures of {rows.height} spans (errors not from a failed call)"
    )
    info = w.attrs.get(ref, {})
    table.update({k: v for k, v in info.items() if v})
    my_edges = sorted((e for e in w.edges if e.caller == ref), key=lambda e: e.offset_ms)
    if my_edges:
        table["calls"] = [e.call() for e in my_edges]
        for e in my_edges:
            fan = e.fanout if isinstance(e.fanout, int) else f"{e.fanout[0]}-{e.fanout[1]}"
            fit.evidence.append(
                f"calls {e.callee}: prob {e.prob:.3f} ({e.calls} calls from {e.parents} spans), fan-out {fan}, "
                f"{e.mode}, retries {e.retries}, {e.failed} failed, {e.timed_out} timed out"
                + ("" if e.timeout_ms is not None else " (no timeout observed: default kept)")
            )
    if ref in w.logs:
        table["logs"] = w.logs[ref]
        fit.evidence.append(f"logs: {len(w.logs[ref])} templates")
    return fit, table


def fit_twin(
    con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int, *, name: str = "twin", min_samples: int = MIN_SAMPLES
) -> TwinFit:
    """The twin of [start, end) of the store behind ``con`` (``TwinError`` when the window has no traffic)."""
    raw = window_spans(con, start_ns, end_ns)
    if raw.num_rows == 0:
        raise TwinError("the window holds no SERVER or CLIENT spans: nothing to fit a twin from")
    s = structure(raw, start_ns)
    minutes = max(1, round((end_ns - start_ns) / 60_000_000_000))
    notes: list[str] = []
    edges = fit_edges(s)
    rtts = _rtts_ms(s, edges)
    rtt = float(np.median(rtts)) if len(rtts) else 0.0
    samples = _per_op_samples(s, edges, rtt)
    gauge_frame = pl.from_arrow(queue_gauges(con, start_ns, end_ns))
    assert isinstance(gauge_frame, pl.DataFrame)
    gauges = gauge_frame.filter(pl.col("metric").is_in(QUEUE_METRICS)).with_columns(
        pl.concat_str([pl.col("service"), pl.lit(":"), pl.col("name")]).alias("ref")
    )
    attrs = infer_attributes(attribute_samples(con, start_ns, end_ns), gauge_frame)
    logs = log_statements(window_logs(con, start_ns, end_ns), s.servers)
    arrivals = fit_arrivals(s.servers, edges, start_ns, minutes)
    if not arrivals.entrypoints:
        raise TwinError("no entry point: no operation's server spans are mostly trace roots")
    frame = pl.from_arrow(raw)
    assert isinstance(frame, pl.DataFrame)
    versions, deploys = _service_version(frame)

    w = _Window(s, edges, rtts, gauges, attrs, logs, minutes, min_samples)
    ops: dict[str, OpFit] = {}
    tables: dict[str, dict[str, dict[str, object]]] = {}
    by_ref = {str(k[0]): g for k, g in samples.group_by("ref")}
    for ref in sorted(by_ref):
        fit, table = _fit_op(ref, by_ref[ref], w)
        service, _, op = ref.partition(":")
        tables.setdefault(service, {})[op] = table
        ops[ref] = fit

    start = dt.datetime.fromtimestamp(start_ns / 1e9, tz=dt.UTC)
    services: dict[str, object] = {}
    for service, op_tables in tables.items():
        gauged = gauges.filter(pl.col("service") == service).height > 0
        services[service] = {
            "version": versions.get(service, "1.0.0"),
            "operations": op_tables,
            "export": {"gauges": gauged},
        }
    deploy_rows = [
        {"service": d["service"], "version": d["version"], "at_min": round((int(d["at_ns"]) - start_ns) / 6e10, 2)}  # type: ignore[call-overload]
        for d in deploys
    ]
    data = {
        "name": name,
        "description": f"digital twin fitted from {raw.num_rows} spans of {minutes} min from {start.isoformat()}",
        "hours": round(minutes / 60, 4),
        "history_days": 0,
        "start": start,
        "arrivals": arrivals.fields(),
        "entrypoints": [{"operation": r, "weight": round(w, 5)} for r, w in arrivals.entrypoints.items()],
        "services": services,
        "deploys": deploy_rows,
    }
    scenario = Scenario.model_validate(data)
    notes += arrivals.notes
    notes.append(f"network round trip {rtt:.3g} ms (client span minus the callee's server span, median)")
    return TwinFit(scenario, ops, edges, arrivals, start_ns, end_ns, notes, raw.num_rows)
