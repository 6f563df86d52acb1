"""A digital twin: a scenario in the simulator's own format fitted from a window of a store's telemetry.

``fit_twin`` reads the window's spans, queue gauges, logs and a sample of attribute maps
(``store.twin_reads``) and fits, per operation: the calls it makes (``twin.topology``), its
self-time distribution (``twin.distfit``; own work only: the minutes where the fitted queue
kept waits negligible, when there are enough of them), its servers (``twin.servers``, from the
queue-depth gauge or else the latency-versus-load curve), its own error rate (errors not
caused by a failed call), its kind, method, attributes and log statements (``twin.extras``);
and the arrival process of the entry points (``twin.arrivals``). Every fitted value carries
its evidence, written as comments above its table by ``render``. An operation with fewer than
``MIN_SAMPLES`` usable spans is a fixed-latency stub whose comment says why.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb
import numpy as np
import polars as pl

from simulator.scenario import Scenario
from simulator.scenario_toml import dump_scenario
from store.twin_reads import attribute_samples, queue_gauges, window_logs, window_spans
from twin.arrivals import ArrivalFit, fit_arrivals
from simulator.queueing import RHO_STABLE, erlang_c
from twin.distfit import TAIL_SCALE, fit_convolved, fit_service_time
from twin.extras import infer_attributes, log_statements
from twin.servers import ServersFit, fit_servers_from_latency, fit_servers_from_queue, mean_queue
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


def _rtts_ms(s: Structure) -> np.ndarray:
    """Network round trips: client span minus the callee's server span, where both are traced (ms)."""
    pairs = s.calls.filter(pl.col("child_dur_ms").is_not_null() & ~pl.col("is_error"))
    d = (pairs["dur_ms"] - pairs["child_dur_ms"]).to_numpy()
    result: np.ndarray = d[d >= 0]
    return result


def _per_op_samples(s: Structure, edges: list[EdgeFit], rtt_ms: float) -> pl.DataFrame:
    """One row per span usable for an operation's own work: ref, minute, self_ms, dur_ms, ok."""
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
        .select("ref", "minute", (pl.col("dur_ms") - pl.col("covered_ms")).alias("self_ms"), "dur_ms",
                (~pl.col("is_error")).alias("ok"), "own_error")  # fmt: skip
    )
    only = s.calls.filter(pl.col("callee").is_in(sorted(s.client_only))).select(
        pl.col("callee").alias("ref"),
        "minute",
        (pl.col("dur_ms") - rtt_ms).clip(lower_bound=1e-3).alias("self_ms"),
        (pl.col("dur_ms") - rtt_ms).clip(lower_bound=1e-3).alias("dur_ms"),
        (~pl.col("is_error")).alias("ok"),
        (pl.col("is_error") & ~pl.col("status_message").str.to_lowercase().str.contains("deadline|timeout")).alias(
            "own_error"
        ),
    )
    return pl.concat([srv, only.cast(srv.schema)])  # type: ignore[arg-type]


def _wait_beyond(rows: pl.DataFrame, sv: ServersFit | None, median_ms: float) -> float:
    """Share of spans the fitted M/M/c queue makes wait past the tail threshold (TAIL_SCALE x median)."""
    if sv is None or rows.is_empty():
        return 0.0
    per_min = rows.group_by("minute").agg(pl.len().alias("n"), pl.col("dur_ms").mean().alias("hold"))
    n = per_min["n"].to_numpy().astype(float)
    hold = np.maximum(per_min["hold"].to_numpy().astype(float), 1e-9)
    lam = n / 60_000.0
    c = float(sv.servers)
    offered = np.minimum(lam * hold, c * RHO_STABLE)
    p_wait = erlang_c(np.full(len(n), c), offered)
    rate = np.maximum(c / hold - lam, 1e-12)
    beyond = p_wait * np.exp(-rate * (TAIL_SCALE - 1.0) * median_ms)
    return float(np.sum(beyond * n) / max(n.sum(), 1.0))


def _servers(ref: str, rows: pl.DataFrame, gauges: pl.DataFrame, minutes: int) -> ServersFit | None:
    per_min = rows.group_by("minute").agg(pl.len().alias("n"), pl.col("dur_ms").mean().alias("hold"))
    per_min = per_min.filter((pl.col("minute") >= 0) & (pl.col("minute") < minutes)).sort("minute")
    if per_min.height < 3:
        return None
    lam = per_min["n"].to_numpy().astype(float) / 60_000.0
    hold = per_min["hold"].to_numpy().astype(float)
    g = gauges.filter(pl.col("ref") == ref)
    if g.height:
        joined = per_min.join(g.select("minute", "value"), on="minute", how="inner")
        if joined.height >= 3:
            return fit_servers_from_queue(
                joined["n"].to_numpy() / 60_000.0, joined["hold"].to_numpy(), joined["value"].to_numpy()
            )
    return fit_servers_from_latency(lam, hold, hold)


def _service_version(spans: pl.DataFrame) -> tuple[dict[str, str], list[dict[str, object]]]:
    """Latest version per service, and the deploys seen in the window (minute of a version's first span)."""
    versions: dict[str, str] = {}
    deploys: list[dict[str, object]] = []
    firsts = spans.group_by("service", "version").agg(pl.col("start_ns").min().alias("first")).sort("first")
    for (service,), g in firsts.group_by("service", maintain_order=True):
        rows = g.sort("first").rows()
        versions[str(service)] = str(rows[-1][1] or "1.0.0")
        for prev, cur in zip(rows, rows[1:], strict=False):
            if prev[1] != cur[1] and cur[1]:
                deploys.append({"service": service, "version": cur[1], "at_ns": cur[2]})
    return versions, deploys


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
    rtts = _rtts_ms(s)
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

    ops: dict[str, OpFit] = {}
    tables: dict[str, dict[str, dict[str, object]]] = {}
    by_ref = {str(k[0]): g for k, g in samples.group_by("ref")}
    order = sorted(by_ref)
    for ref in order:
        rows = by_ref[ref]
        fit = OpFit(ref, rows.height)
        ok = rows.filter(pl.col("ok"))
        own_err = float(rows["own_error"].mean()) if rows.height else 0.0  # type: ignore[arg-type]
        sv = _servers(ref, rows, gauges, minutes)
        fit.servers = sv
        table: dict[str, object] = {}
        if ok.height < min_samples:
            med = float(ok["self_ms"].median()) if ok.height else float(rows["dur_ms"].median() or 1.0)  # type: ignore[arg-type]
            med = max(med, 1e-3)
            fit.stub = f"too little data: {ok.height} successful spans in the window (< {min_samples})"
            fit.median_ms = med
            table["service_time"] = {"median_ms": round(med, 4), "sigma": 0.01}
            fit.evidence.append(f"STUB ({fit.stub}): fixed latency {med:.3g} ms, the window's median")
        else:
            chosen = ok
            if sv is not None:
                per_min = rows.group_by("minute").agg(pl.len().alias("n"), pl.col("dur_ms").mean().alias("hold"))
                offered = per_min["n"].to_numpy() / 60_000.0 * per_min["hold"].to_numpy()
                lq = mean_queue(sv.servers, offered)
                calm = per_min.filter(pl.Series(lq / np.maximum(offered, 1e-12) < LOW_WAIT))["minute"]
                low = ok.filter(pl.col("minute").is_in(calm.implode()))
                if low.height >= max(min_samples, ok.height // 4):
                    chosen = low
                if chosen.height < ok.height:
                    fit.evidence.append(f"self time from the {chosen.height} spans of minutes where queueing was "
                                        f"negligible (of {ok.height})")  # fmt: skip
            wait_beyond = _wait_beyond(rows, sv, float(chosen["self_ms"].median()))  # type: ignore[arg-type]
            st = fit_service_time(chosen["self_ms"].to_numpy(), wait_beyond)
            if ref in s.client_only and len(rtts):
                st = fit_convolved(chosen["self_ms"].to_numpy() + rtt, rtts, st)
                fit.evidence.append(f"seen only in client spans: body deconvolved from {len(rtts)} measured round trips")
            fit.median_ms = st.median_ms
            table["service_time"] = st.fields()
            q = np.quantile(chosen["self_ms"].to_numpy(), [0.5, 0.99])
            fit.evidence.append(f"service_time: {st.dist} fitted to {st.n} self times (KS distance {st.ks:.3f}); "
                                f"observed self p50 {q[0]:.3g} ms, p99 {q[1]:.3g} ms"
                                + (f"; tail {st.tail_prob:.2%} alpha {st.tail_alpha:.2f}" if st.tail_prob else ""))  # fmt: skip
        if sv is not None:
            table["servers"] = int(sv.servers)
            fit.evidence.append(f"servers: {sv.servers} from the {sv.method}, peak utilisation {sv.peak_utilisation:.2f}"
                                + ("" if sv.identified else " (no queue formed: the least count that fits, a lower bound)"))  # fmt: skip
        else:
            table["servers"] = 1000
            fit.evidence.append("servers: 1000 (under 3 busy minutes: no queue to fit)")
        table["error_rate"] = round(own_err, 6)
        fit.evidence.append(f"error_rate: {own_err:.4%} own failures of {rows.height} spans (errors not from a failed call)")
        info = attrs.get(ref, {})
        table.update({k: v for k, v in info.items() if v})
        my_edges = sorted((e for e in edges if e.caller == ref), key=lambda e: e.offset_ms)
        if my_edges:
            table["calls"] = [e.call() for e in my_edges]
            for e in my_edges:
                fan = e.fanout if isinstance(e.fanout, int) else f"{e.fanout[0]}-{e.fanout[1]}"
                fit.evidence.append(
                    f"calls {e.callee}: prob {e.prob:.3f} ({e.calls} calls from {e.parents} spans), fan-out {fan}, "
                    f"{e.mode}, retries {e.retries}, {e.failed} failed, {e.timed_out} timed out"
                    + ("" if e.timeout_ms is not None else " (no timeout observed: default kept)")
                )
        if ref in logs:
            table["logs"] = logs[ref]
            fit.evidence.append(f"logs: {len(logs[ref])} templates")
        service, _, op = ref.partition(":")
        tables.setdefault(service, {})[op] = table
        ops[ref] = fit

    start = dt.datetime.fromtimestamp(start_ns / 1e9, tz=dt.UTC)
    services: dict[str, object] = {}
    for service, op_tables in tables.items():
        gauged = gauges.filter(pl.col("service") == service).height > 0
        services[service] = {"version": versions.get(service, "1.0.0"), "operations": op_tables,
                             "export": {"gauges": gauged}}  # fmt: skip
    deploy_rows = [
        {"service": d["service"], "version": d["version"], "at_min": round((int(d["at_ns"]) - start_ns) / 6e10, 2)}  # type: ignore[call-overload]
        for d in deploys
    ]
    data = {
        "name": name,
        "description": f"digital twin fitted from {raw.num_rows} spans of {minutes} minutes starting {start.isoformat()}",
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


def _key(k: str) -> str:
    import re

    return k if re.match(r"^[A-Za-z0-9_-]+$", k) else '"' + k.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(fit: TwinFit) -> str:
    """The twin as scenario TOML, each fitted value's evidence as comments above its table."""
    text = dump_scenario(fit.scenario)
    head = ["# Digital twin fitted by `driftscope twin fit`: every value below was estimated from telemetry;",
            "# the comments give the evidence (sample sizes, fit quality) and the stubs say why they are stubs."]  # fmt: skip
    head += [f"# {n}" for n in fit.notes]
    stubs = fit.stubs
    if stubs:
        head.append(f"# {len(stubs)} operation(s) had too little data and are fixed-latency stubs:")
        head += [f"#   {r}: {why}" for r, why in stubs.items()]
    lines = text.splitlines()
    out = [*head, ""]
    headers = {
        "[" + ".".join(_key(p) for p in ("services", *ref.split(":", 1)[:1], "operations", ref.split(":", 1)[1])) + "]": ref
        for ref in fit.ops
    }
    for line in lines:
        ref = headers.get(line)
        if ref is not None:
            out += [f"# {e}" for e in fit.ops[ref].evidence]
        if line == "[arrivals]":
            out += [f"# {e}" for e in fit.arrivals.evidence]
        out.append(line)
    return "\n".join(out) + "\n"
