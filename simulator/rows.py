"""Turn simulated minutes into raw-table rows (Arrow), exactly as ingest would store them.

The rows are what ``collector`` produces when the same telemetry arrives over OTLP, so a
direct-to-store run and an OTLP run give identical tables (``tests/test_simulator.py``
proves it). Strings are built column-wise with Arrow kernels; nothing loops per span in Python.
Rows are built a frame of consecutive minutes at a time (``RowBuilder.tables``): the cost of a
minute at demo traffic was mostly the fixed cost of its many small Arrow calls, which a frame
pays once for all its minutes.

Over 450 lines because one ``RowBuilder`` fills every raw table of a frame from the same
state (ids, resources, cumulative counters); split by table, that state would be
passed around or rebuilt. It writes the storage rows directly rather than OTLP for the
collector to decode: the direct path is what makes a simulated week take seconds, and the
equality of both paths is tested.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

import numpy as np
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from collector.columns import SCHEMAS
from simulator.engine import (
    CAUSE_ERROR,
    CAUSE_SHED,
    CAUSE_TIMEOUT,
    CAUSE_UPSTREAM,
    KIND_CLIENT,
    KIND_SERVER,
    MinuteData,
    Spans,
)
from simulator.hexids import hex64, hex128
from simulator.plan import OpInfo, Plan

SCOPE_NAME = "driftscope.simulator"
SCOPE_VERSION = "0.1.0"
DURATION_BOUNDS_S = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
"""OpenTelemetry semantic-convention advice for request-duration histograms, seconds."""
JOB_DURATION_BOUNDS_S = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
EXP_SCALE = 3
DURATION_METRICS = {
    "http": "http.server.request.duration",
    "db": "db.client.operation.duration",
    "cache": "db.client.operation.duration",
    "workflow": "temporal.workflow.duration",
}
"""Request-duration histogram name per operation kind (others: rpc.server.call.duration)."""
SEVERITY_NUMBERS = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17, "FATAL": 21}
STATUS_MESSAGES = {
    CAUSE_ERROR: "internal error",
    CAUSE_SHED: "overloaded: request shed",
    CAUSE_TIMEOUT: "deadline exceeded",
    CAUSE_UPSTREAM: "upstream call failed",
}
CLIENT_ONLY_KINDS = ("db", "cache", "external")
"""Operations of these kinds emit only the caller's client span (a database or a third-party
provider has no tracer of ours)."""
_PLACEHOLDER = re.compile(r"\{(id|ms|n|user)\}")


def _j(value: object) -> str:
    return orjson.dumps(value).decode()


def _text(values: np.ndarray) -> pa.Array:
    """Decimal text of integers, as Arrow strings."""
    return pc.cast(pa.array(values), pa.string())


def _cat(*parts: str | pa.Array) -> pa.Array:
    """Row-wise concatenation of Arrow string arrays and constant strings (one Arrow kernel: no per-row Python,
    and far less overhead per call than building a polars frame, which matters for the many small groups of a
    minute at low traffic)."""
    args = [pa.scalar(p, pa.string()) if isinstance(p, str) else p for p in parts]
    out: pa.Array = pc.binary_join_element_wise(*args, pa.scalar("", pa.string()))
    return out


def resource_attributes(plan: Plan, service: str, version: str) -> dict[str, str]:
    """The OTel resource of a simulated service."""
    return {
        "service.name": service,
        "service.version": version,
        "service.namespace": plan.scenario.name,
        "deployment.environment.name": "simulation",
        **plan.scenario.services[service].attributes,
    }


def _route(info: OpInfo) -> str:
    return info.name.split(" ", 1)[1] if info.kind == "http" and " " in info.name else info.name


def _base_attrs(info: OpInfo, kind: int, callee_service: str) -> dict[str, object]:
    if info.kind == "external":
        return {"http.request.method": info.method, "server.address": f"{info.service}.example.com"}
    if info.kind == "http":
        base: dict[str, object] = {"http.request.method": info.method}
        if kind == KIND_SERVER:
            base["http.route"] = _route(info)
        else:
            base["server.address"] = callee_service
        return base
    if info.kind == "db":
        return {"db.system.name": "postgresql", "db.operation.name": info.name}
    if info.kind == "cache":
        return {"db.system.name": "redis", "db.operation.name": info.name}
    if info.kind == "queue":
        return {"messaging.system": "kafka", "messaging.operation.name": info.name}
    return {"rpc.system": "grpc", "rpc.service": info.service, "rpc.method": info.name}


def _status_key(info: OpInfo) -> str:
    return "http.response.status_code" if info.kind == "http" else "rpc.response.status_code"


@dataclass
class _Cumulative:
    """Running totals of cumulative metrics per series, reset when a service restarts."""

    start_ns: dict[str, int] = field(default_factory=dict)
    counts: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
    sums: dict[tuple[str, int], float] = field(default_factory=dict)
    mins: dict[tuple[str, int], float] = field(default_factory=dict)
    maxs: dict[tuple[str, int], float] = field(default_factory=dict)
    values: dict[tuple[str, int], float] = field(default_factory=dict)
    version: dict[str, str] = field(default_factory=dict)


@dataclass
class Frame:
    """Several consecutive minutes as one set of span arrays (``mi``: each span's minute in ``minutes``)."""

    minutes: list[MinuteData]
    spans: Spans
    trace_ids: np.ndarray
    mi: np.ndarray

    @classmethod
    def of(cls, minutes: list[MinuteData]) -> Frame:
        offsets = np.cumsum([0] + [len(m.trace_ids) for m in minutes[:-1]])
        parts = [m.spans for m in minutes]
        cols = {f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Spans)}
        cols["trace"] = np.concatenate([p.trace + off for p, off in zip(parts, offsets, strict=True)])
        mi = np.repeat(np.arange(len(minutes)), [len(p) for p in parts])
        return cls(minutes, Spans(**cols), np.concatenate([m.trace_ids for m in minutes]), mi)


class RowBuilder:
    """Stateful (cumulative metrics) and deterministic (seeded) row factory for one run."""

    def __init__(self, plan: Plan, seed: int) -> None:
        self.plan = plan
        self.rng = np.random.default_rng([seed, 7])
        self.cum = _Cumulative()
        self._const = [{k: v for k, v in plan.scenario.operation(info.ref).attributes.items()} for info in plan.ops]
        self._dynamic = [dict(plan.scenario.operation(info.ref).dynamic_attributes) for info in plan.ops]
        self._resources: dict[tuple[str, str], str] = {}

    def tables(self, minutes: list[MinuteData]) -> dict[str, pa.Table]:
        """Every raw table's rows for consecutive minutes (empty tables left out)."""
        f = Frame.of(minutes)
        tables = {"spans": self.spans(f), **self.metrics(f)}
        logs = self.logs(f)
        if logs is not None:
            tables["logs"] = logs
        return {name: t for name, t in tables.items() if t.num_rows}

    # ---- spans -------------------------------------------------------------------------

    def _restart_if_deployed(self, service: str, version: str, now_ns: int) -> None:
        if self.cum.version.get(service) != version:
            self.cum.version[service] = version
            self.cum.start_ns[service] = now_ns
            for key in [k for k in self.cum.counts if k[0] == service]:
                del self.cum.counts[key]
            for d in (self.cum.sums, self.cum.mins, self.cum.maxs, self.cum.values):
                for key in [k for k in d if k[0] == service]:
                    del d[key]

    def _traced(self, service: str, minute: int) -> bool:
        """Whether ``service`` exports spans and logs in ``minute`` (``Export.traces_from_min``)."""
        start = self.plan.scenario.services[service].export.traces_from_min
        return start is None or minute >= start

    def _dynamic_json(self, op: int, n: int, changes: dict[str, str]) -> pa.Array | None:
        pieces: list[str | pa.Array] = []
        for key, kind in self._dynamic[op].items():
            change = changes.get(key)
            if change == "vanish":
                continue
            if kind == "int":
                values = _text(self.rng.integers(1, 10_000_000, n))
                quote = '"' if change == "type" else ""
                piece = _cat(f",{_j(key)}:{quote}", values, quote)
            elif kind == "user":
                values = _text(self.rng.zipf(1.6, n) % 100_000)
                piece = _cat(f",{_j(key)}:", values) if change == "type" else _cat(f',{_j(key)}:"user-', values, '"')
            elif kind == "uuid":
                ids = self.rng.integers(0, 2**63, (n, 2), dtype=np.int64).astype(np.uint64)
                piece = _cat(f',{_j(key)}:"', hex128(ids), '"')
            else:
                choices = np.array([_j(c) for c in kind], dtype=object)
                picks = pa.array(choices[self.rng.integers(0, len(kind), n)], pa.string())
                if change == "type":
                    picks = _text(self.rng.integers(0, len(kind), n))
                piece = _cat(f",{_j(key)}:", picks)
            pieces.append(piece)
        return _cat(*pieces) if pieces else None

    def _variants(self, f: Frame) -> tuple[np.ndarray, list[tuple[int, str, dict[str, str]]], np.ndarray]:
        """Per (minute, op): an index into the distinct (op, version, attribute changes) of the frame, the
        list of those, and whether the op's service is dark (sends no spans yet) in that minute."""
        ops = self.plan.ops
        variant_of = np.empty((len(f.minutes), len(ops)), np.int64)
        dark = np.empty((len(f.minutes), len(ops)), bool)
        seen: dict[tuple[int, str, tuple[tuple[str, str], ...]], int] = {}
        for k, m in enumerate(f.minutes):
            changes: dict[int, dict[str, str]] = {}
            for op, attr, change in m.effects.attribute_changes:
                changes.setdefault(op, {})[attr] = change
            for i, info in enumerate(ops):
                key = (i, m.effects.versions[info.service], tuple(changes.get(i, {}).items()))
                variant_of[k, i] = seen.setdefault(key, len(seen))
                dark[k, i] = not self._traced(info.service, m.minute)
        return variant_of, [(op, v, dict(ch)) for op, v, ch in seen], dark

    def spans(self, f: Frame) -> pa.Table:
        """Rows of table ``spans`` for the frame's minutes (server, client and batch-job spans)."""
        plan = self.plan
        sp = f.spans
        variant_of, variants, dark = self._variants(f)
        client_only = np.array([info.kind in CLIENT_ONLY_KINDS for info in plan.ops])
        keep = ~((sp.kind == KIND_SERVER) & client_only[sp.op])
        if dark.any():  # services whose tracing starts later send no spans yet (a client span is its caller's)
            emitter = np.where(sp.kind == KIND_CLIENT, sp.caller, sp.op)
            keep &= ~dark[f.mi, np.maximum(emitter, 0)]
        var = variant_of[f.mi, sp.op]
        order = np.lexsort((sp.start_ns, var, sp.kind))
        order = order[keep[order]]
        kinds = sp.kind[order]
        var = var[order]
        cause = sp.cause[order]
        n = len(order)
        attrs = self._attribute_columns(variants, kinds, var, cause)
        start = sp.start_ns[order]
        end = sp.end_ns[order]
        parent = sp.parent_id[order]
        ops = [plan.ops[op] for op, _, _ in variants]
        pairs = list(zip(ops, variants, strict=True))
        var_idx = pa.array(var)
        err = cause != 0
        status_msg = np.array([None] + [STATUS_MESSAGES.get(i) for i in range(1, 5)], dtype=object)

        def per_variant(values: list[str]) -> pa.Array:
            return pa.DictionaryArray.from_arrays(var_idx, pa.array(values, pa.string())).cast(pa.string())

        table = pa.table(
            {
                "trace_id": hex128(f.trace_ids[sp.trace[order]]),
                "span_id": hex64(sp.span_id[order]),
                "parent_span_id": pc.if_else(pa.array(parent == 0), pa.scalar(None, pa.string()), hex64(parent)),
                "trace_state": pa.nulls(n, pa.string()),
                "flags": pa.array(np.where(sp.remote_parent[order], 0x300, 0x100).astype(np.uint32)),
                "service_name": per_variant([o.service for o in ops]),
                "service_version": per_variant([v for _, v, _ in variants]),
                "span_name": per_variant([o.name for o in ops]),
                "span_kind": pa.array(np.where(kinds == KIND_CLIENT, "CLIENT", "SERVER")),
                "start_time": pa.array(start, pa.timestamp("ns")),
                "end_time": pa.array(end, pa.timestamp("ns")),
                "duration_ns": pa.array(end - start),
                "status_code": pa.array(np.where(err, "ERROR", "UNSET")),
                "status_message": pa.array(status_msg[cause.astype(np.int64)], pa.string()),
                "http_route": attrs["http_route"],
                "http_status_code": attrs["http_status_code"],
                "events": self._events(cause, end, kinds),
                "links": pa.nulls(n, pa.string()),
                "dropped_attributes_count": pa.array(np.zeros(n, np.uint32)),
                "dropped_events_count": pa.array(np.zeros(n, np.uint32)),
                "dropped_links_count": pa.array(np.zeros(n, np.uint32)),
                "attributes": attrs["attributes"],
                "resource_attributes": per_variant([self._resource_json(o.service, v) for o, (_, v, _) in pairs]),
                "resource_schema_url": pa.nulls(n, pa.string()),
                "scope_name": pa.repeat(pa.scalar(SCOPE_NAME), n),
                "scope_version": pa.repeat(pa.scalar(SCOPE_VERSION), n),
                "scope_attributes": pa.nulls(n, pa.string()),
            }
        ).cast(SCHEMAS["spans"])
        if len(f.minutes) > 1:  # minute by minute, as a per-minute run stores them (time-ordered row groups)
            table = table.take(pa.array(np.argsort(f.mi[order], kind="stable")))
        jobs = [t for t in (self._job_spans(m) for m in f.minutes) if t is not None]
        return pa.concat_tables([table, *jobs]) if jobs else table

    def _resource_json(self, service: str, version: str) -> str:
        key = (service, version)
        text = self._resources.get(key)
        if text is None:
            text = self._resources[key] = _j(resource_attributes(self.plan, service, version))
        return text

    def _attribute_columns(
        self, variants: list[tuple[int, str, dict[str, str]]], kinds: np.ndarray, var: np.ndarray, cause: np.ndarray
    ) -> dict[str, pa.Array]:
        """attributes / http_route / http_status_code for spans sorted by (kind, variant)."""
        plan = self.plan
        n = len(var)
        attributes: list[pa.Array] = []
        routes: list[pa.Array] = []
        codes: list[pa.Array] = []
        # group boundaries of (kind, variant)
        key = kinds.astype(np.int64) * (len(variants) + 1) + var
        bounds = np.flatnonzero(np.diff(key)) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [n]])
        for lo, hi in zip(starts, ends, strict=True):
            if hi <= lo:
                continue
            op, _, changes = variants[int(var[lo])]
            kind = int(kinds[lo])
            info = plan.ops[op]
            base = _base_attrs(info, kind, info.service)
            head = "{" + _j(base)[1:-1]
            consts = {k: v for k, v in self._const[op].items() if changes.get(k) != "vanish"}
            for k, change in changes.items():
                if change == "type" and k in consts:
                    consts[k] = str(consts[k]) if not isinstance(consts[k], str) else len(str(consts[k]))
            const_json = "," + _j(consts)[1:-1] if consts else ""
            c = cause[lo:hi]
            status = (
                np.where(c == 0, 200, np.where(c == CAUSE_SHED, 503, 500))
                if info.kind == "http"
                else np.where(c == 0, 0, np.where(c == CAUSE_SHED, 8, 13))
            )
            has_status = c != CAUSE_TIMEOUT
            status_piece = pc.if_else(pa.array(has_status), _cat(f",{_j(_status_key(info))}:", _text(status)), "")
            parts: list[str | pa.Array] = [head, status_piece, const_json]
            if kind == KIND_SERVER:
                dyn = self._dynamic_json(op, hi - lo, changes)
                if dyn is not None:
                    parts.append(dyn)
            attributes.append(_cat(*parts, "}"))
            route = _route(info) if info.kind == "http" and kind == KIND_SERVER else None
            routes.append(pa.repeat(pa.scalar(route, pa.string()), hi - lo))
            if info.kind == "http":
                codes.append(pa.array(status.astype(np.int32), pa.int32(), mask=~has_status))
            else:
                codes.append(pa.nulls(hi - lo, pa.int32()))
        if not attributes:
            return {k: pa.array([], t) for k, t in (("attributes", pa.string()), ("http_route", pa.string()),
                                                     ("http_status_code", pa.int32()))}  # fmt: skip
        return {
            "attributes": pa.concat_arrays(attributes),
            "http_route": pa.concat_arrays(routes),
            "http_status_code": pa.concat_arrays(codes),
        }

    def _events(self, cause: np.ndarray, end: np.ndarray, kinds: np.ndarray) -> pa.Array:
        """An ``exception`` event on failed server spans (as the SDK records one)."""
        failed = ((cause == CAUSE_ERROR) | (cause == CAUSE_SHED)) & (kinds == KIND_SERVER)
        out = np.full(len(cause), None, dtype=object)
        if failed.any():
            kinds_txt = np.where(cause[failed] == CAUSE_SHED, "OverloadedError", "InternalError")
            frame = pl.DataFrame({"t": end[failed], "k": kinds_txt})
            text = frame.select(
                pl.concat_str(
                    [
                        pl.lit('[{"time_unix_nano":'),
                        pl.col("t").cast(pl.String),
                        pl.lit(',"name":"exception","attributes":{"exception.type":"'),
                        pl.col("k"),
                        pl.lit('"},"dropped_attributes_count":0}]'),
                    ]
                )
            ).to_series()
            out[failed] = text.to_numpy()
        return pa.array(out, pa.string())

    def _job_spans(self, m: MinuteData) -> pa.Table | None:
        if not m.jobs:
            return None
        rows = []
        for run in m.jobs:
            job = self.plan.scenario.batch_jobs[run.job]
            if not self._traced(job.service, m.minute):
                continue
            version = m.effects.versions[job.service]
            rows.append(
                {
                    "trace_id": hex128(m.trace_ids[[run.trace]])[0].as_py(),
                    "span_id": f"{run.span_id:016x}",
                    "flags": 0x100,
                    "service_name": job.service,
                    "service_version": version,
                    "span_name": f"job {job.name}",
                    "span_kind": "INTERNAL",
                    "start_time": run.start_ns,
                    "end_time": run.start_ns + run.duration_ns,
                    "duration_ns": run.duration_ns,
                    "status_code": "UNSET",
                    "dropped_attributes_count": 0,
                    "dropped_events_count": 0,
                    "dropped_links_count": 0,
                    "attributes": _j({"job.name": job.name, "job.records": run.records}),
                    "resource_attributes": _j(resource_attributes(self.plan, job.service, version)),
                    "scope_name": SCOPE_NAME,
                    "scope_version": SCOPE_VERSION,
                }
            )
        return pa.Table.from_pylist(rows, schema=SCHEMAS["spans"])

    # ---- logs --------------------------------------------------------------------------

    def _render(self, template: str, durations_ms: np.ndarray) -> pa.Array:
        n = len(durations_ms)
        parts: list[str | pa.Array] = []
        pos = 0
        for match in _PLACEHOLDER.finditer(template):
            parts.append(template[pos : match.start()])
            name = match.group(1)
            if name == "ms":
                values = durations_ms.astype(np.int64)
            elif name == "id":
                values = self.rng.integers(1, 10_000_000, n)
            elif name == "n":
                values = self.rng.integers(1, 50, n)
            else:
                values = self.rng.zipf(1.6, n) % 100_000
            parts.append(_cat("user-", _text(values)) if name == "user" else _text(values))
            pos = match.end()
        parts.append(template[pos:])
        if not n:
            return pa.array([], pa.string())
        if all(isinstance(p, str) for p in parts):
            return pa.repeat(pa.scalar("".join(p for p in parts if isinstance(p, str)), pa.string()), n)
        return _cat(*parts)

    def logs(self, f: Frame) -> pa.Table | None:
        """Rows of table ``logs``: statements of served requests plus new-template faults."""
        plan = self.plan
        sp = f.spans
        chunks: list[dict[str, object]] = []
        server = sp.kind == KIND_SERVER
        for i, info in enumerate(plan.ops):
            statements = plan.scenario.operation(info.ref).logs
            if not statements or not plan.scenario.services[info.service].export.logs:
                continue
            traced = np.array([self._traced(info.service, m.minute) for m in f.minutes])
            if not traced.any():
                continue
            mine = np.flatnonzero(server & (sp.op == i) & traced[f.mi])
            for st in statements:
                if st.on == "error":
                    pool = mine[sp.cause[mine] != 0]
                elif st.on == "ok":
                    pool = mine[sp.cause[mine] == 0]
                else:
                    pool = mine
                chosen = pool[self.rng.random(len(pool)) < st.prob]
                if len(chosen):
                    chunks.append(self._log_chunk(f, info.service, chosen, template=st.template,
                                                  severity=st.severity, with_trace=st.trace_context))  # fmt: skip
        op_service = np.array([plan.services.index(o.service) for o in plan.ops])
        for k, m in enumerate(f.minutes):
            for fault in m.effects.new_templates:
                service = fault.target.partition(":")[0]
                if not plan.scenario.services[service].export.logs:
                    continue
                pool = np.flatnonzero(server & (f.mi == k) & (op_service[sp.op] == plan.services.index(service)))
                n = min(int(self.rng.poisson(fault.magnitude)), len(pool))
                if n and fault.template:
                    chosen = np.sort(self.rng.choice(pool, n, replace=False))
                    chunks.append(self._log_chunk(f, service, chosen, template=fault.template,
                                                  severity=fault.severity, with_trace=True))  # fmt: skip
        if not chunks:
            return None
        tables = [pa.table(c) for c in chunks]  # type: ignore[arg-type]
        return pa.concat_tables(tables).cast(SCHEMAS["logs"])

    def _log_chunk(
        self, f: Frame, service: str, spans: np.ndarray, *, template: str, severity: str, with_trace: bool
    ) -> dict[str, object]:
        sp = f.spans
        n = len(spans)
        t = sp.end_ns[spans]
        versions = [m.effects.versions[service] for m in f.minutes]
        minute = pa.array(f.mi[spans])
        durations = (sp.end_ns[spans] - sp.start_ns[spans]) / 1e6
        none = pa.nulls(n, pa.string())

        def const(value: str) -> pa.Array:
            return pa.repeat(pa.scalar(value, pa.string()), n)

        def per_minute(values: list[str]) -> pa.Array:
            return pa.DictionaryArray.from_arrays(minute, pa.array(values, pa.string())).cast(pa.string())

        return {
            "time": pa.array(t, pa.timestamp("ns")),
            "observed_time": pa.array(t, pa.timestamp("ns")),
            "service_name": const(service),
            "service_version": per_minute(versions),
            "severity_number": pa.array(np.full(n, SEVERITY_NUMBERS[severity], np.int32)),
            "severity_text": const(severity),
            "body": self._render(template, durations),
            "body_type": const("string"),
            "event_name": none,
            "trace_id": hex128(f.trace_ids[sp.trace[spans]]) if with_trace else none,
            "span_id": hex64(sp.span_id[spans]) if with_trace else none,
            "flags": pa.array(np.full(n, 1 if with_trace else 0, np.uint32)),
            "dropped_attributes_count": pa.array(np.zeros(n, np.uint32)),
            "attributes": const("{}"),
            "resource_attributes": per_minute([self._resource_json(service, v) for v in versions]),
            "resource_schema_url": none,
            "scope_name": const(SCOPE_NAME),
            "scope_version": const(SCOPE_VERSION),
            "scope_attributes": none,
        }

    # ---- metrics -----------------------------------------------------------------------

    def _metric_head(
        self,
        name: str,
        unit: str,
        service: str,
        version: str,
        *,
        t_ns: int,
        start_ns: int | None,
        attrs: Mapping[str, object],
    ) -> dict[str, object]:
        return {
            "metric_name": name,
            "metric_description": None,
            "metric_unit": unit,
            "service_name": service,
            "service_version": version,
            "time": t_ns,
            "start_time": start_ns,
            "flags": 0,
            "attributes": _j(attrs),
            "resource_attributes": self._resource_json(service, version),
            "scope_name": SCOPE_NAME,
            "scope_version": SCOPE_VERSION,
        }

    def metrics(self, f: Frame) -> dict[str, pa.Table]:
        """Rows of the metric tables for the frame's minutes (one point per series and minute)."""
        hist: list[dict[str, object]] = []
        points: list[dict[str, object]] = []
        exp: list[dict[str, object]] = []
        for m in f.minutes:
            self._minute_metrics(m, hist, points)
            points += self._counter_points(m)
            exp += self._job_metrics(m, hist)
        out = {
            "histogram_points": pa.Table.from_pylist(hist, schema=SCHEMAS["histogram_points"]),
            "metric_points": pa.Table.from_pylist(points, schema=SCHEMAS["metric_points"]),
        }
        if exp:
            out["exp_histogram_points"] = pa.Table.from_pylist(exp, schema=SCHEMAS["exp_histogram_points"])
        return out

    def _minute_metrics(self, m: MinuteData, hist: list[dict[str, object]], points: list[dict[str, object]]) -> None:
        """Histogram and gauge points of one minute (appended to ``hist`` and ``points``)."""
        plan = self.plan
        sp = m.spans
        t_end = m.start_ns + 60_000_000_000
        for service in plan.services:
            self._restart_if_deployed(service, m.effects.versions[service], m.start_ns)
        # per operation at once: bucket counts, sums, extremes and the slowest span (the exemplar) of the minute
        srv = np.flatnonzero(sp.kind == KIND_SERVER)
        n_ops, width = len(plan.ops), len(DURATION_BOUNDS_S) + 1
        op_of, d_all = sp.op[srv].astype(np.int64), (sp.end_ns[srv] - sp.start_ns[srv]) / 1e9
        bucket = np.searchsorted(np.array(DURATION_BOUNDS_S), d_all, side="left")
        new_counts = np.bincount(op_of * width + bucket, minlength=n_ops * width).reshape(n_ops, width)
        n_of = np.bincount(op_of, minlength=n_ops)
        sum_of = np.bincount(op_of, weights=d_all, minlength=n_ops)
        by_op = np.lexsort((d_all, op_of))  # per operation, slowest last
        first = np.minimum(np.cumsum(n_of) - n_of, max(len(srv) - 1, 0))
        min_of = d_all[by_op[first]] if len(srv) else np.zeros(n_ops)
        slowest_of = srv[by_op[(np.cumsum(n_of) - 1)[n_of > 0]]]
        slowest = dict(zip(np.flatnonzero(n_of > 0).tolist(), slowest_of.tolist(), strict=True))
        for i, info in enumerate(plan.ops):
            export = plan.scenario.services[info.service].export
            if not (export.histograms or export.gauges):
                continue
            version = m.effects.versions[info.service]
            start = self.cum.start_ns[info.service]
            key = (info.service, i)
            counts = self.cum.counts.setdefault(key, np.zeros(width, dtype=np.int64))
            counts += new_counts[i]
            self.cum.sums[key] = self.cum.sums.get(key, 0.0) + float(sum_of[i])
            exemplars = None
            if i in slowest:
                top = slowest[i]
                d_top = float((sp.end_ns[top] - sp.start_ns[top]) / 1e9)
                self.cum.mins[key] = min(self.cum.mins.get(key, np.inf), float(min_of[i]))
                self.cum.maxs[key] = max(self.cum.maxs.get(key, -np.inf), d_top)
                hi, lo = m.trace_ids[sp.trace[top]]
                exemplars = _j(
                    [
                        {
                            "time_unix_nano": int(sp.end_ns[top]),
                            "value": d_top,
                            "trace_id": f"{int(hi):016x}{int(lo):016x}",
                            "span_id": f"{int(sp.span_id[top]):016x}",
                            "filtered_attributes": {},
                        }
                    ]
                )
            attrs: dict[str, object] = (
                {"http.request.method": info.method, "http.route": _route(info)}
                if info.kind == "http"
                else {"rpc.method": info.name}
            )
            name = DURATION_METRICS.get(info.kind, "rpc.server.call.duration")
            if export.histograms:
                hist.append(
                    {
                        **self._metric_head(name, "s", info.service, version, t_ns=t_end, start_ns=start, attrs=attrs),
                        "count": int(counts.sum()),
                        "sum": self.cum.sums[key],
                        "min": self.cum.mins.get(key),
                        "max": self.cum.maxs.get(key),
                        "bounds": list(DURATION_BOUNDS_S),
                        "bucket_counts": counts.tolist(),
                        "temporality": "cumulative",
                        "exemplars": exemplars,
                    }
                )
            op_attrs = {"operation": info.name}
            lam = m.arrivals_per_op[i] / 60.0
            mean_s = float(sum_of[i] / n_of[i]) if n_of[i] else 0.0
            gauges = (
                (
                    "temporal.task_queue.backlog" if info.kind == "workflow" else "queue.depth",
                    "{request}",
                    float(m.queue.queue_depth[i]),
                ),
                ("server.active_requests", "{request}", lam * mean_s),
            )
            for metric, unit, value in gauges if export.gauges else ():
                points.append(
                    {
                        **self._metric_head(
                            metric, unit, info.service, version, t_ns=t_end, start_ns=None, attrs=op_attrs
                        ),
                        "value": value,
                        "value_int": None,
                        "kind": "gauge",
                        "temporality": None,
                        "is_monotonic": None,
                        "exemplars": None,
                    }
                )

    def _counter_points(self, m: MinuteData) -> list[dict[str, object]]:
        """Cumulative business-counter points of the minute."""
        plan = self.plan
        sp = m.spans
        server = sp.kind == KIND_SERVER
        t_end = m.start_ns + 60_000_000_000
        points: list[dict[str, object]] = []
        for counter in plan.scenario.counters:
            i = plan.op_index[counter.operation]
            info = plan.ops[i]
            ok = int(np.count_nonzero(server & (sp.op == i) & (sp.cause == 0)))
            key = (info.service, -1 - plan.scenario.counters.index(counter))
            self.cum.values[key] = self.cum.values.get(key, 0.0) + ok * counter.per_span
            total = self.cum.values[key]
            is_int = float(counter.per_span).is_integer()
            points.append(
                {
                    **self._metric_head(
                        counter.name,
                        "1",
                        info.service,
                        m.effects.versions[info.service],
                        t_ns=t_end,
                        start_ns=self.cum.start_ns[info.service],
                        attrs={},
                    ),
                    "value": float(total),
                    "value_int": int(total) if is_int else None,
                    "kind": "sum",
                    "temporality": "cumulative",
                    "is_monotonic": True,
                    "exemplars": None,
                }
            )
        return points

    def _job_metrics(self, m: MinuteData, hist: list[dict[str, object]]) -> list[dict[str, object]]:
        exp: list[dict[str, object]] = []
        bounds = np.array(JOB_DURATION_BOUNDS_S)
        for run in m.jobs:
            job = self.plan.scenario.batch_jobs[run.job]
            if not self.plan.scenario.services[job.service].export.histograms:
                continue
            version = m.effects.versions[job.service]
            end = run.start_ns + run.duration_ns
            seconds = run.duration_ns / 1e9
            key = (job.service, 10_000 + run.job)
            counts = self.cum.counts.setdefault(key, np.zeros(len(bounds) + 1, dtype=np.int64))
            counts[int(np.searchsorted(bounds, seconds, side="left"))] += 1
            self.cum.sums[key] = self.cum.sums.get(key, 0.0) + seconds
            self.cum.mins[key] = min(self.cum.mins.get(key, np.inf), seconds)
            self.cum.maxs[key] = max(self.cum.maxs.get(key, -np.inf), seconds)
            attrs = {"job.name": job.name}
            hist.append(
                {
                    **self._metric_head(
                        "job.duration",
                        "s",
                        job.service,
                        version,
                        t_ns=end,
                        start_ns=self.cum.start_ns[job.service],
                        attrs=attrs,
                    ),
                    "count": int(counts.sum()),
                    "sum": self.cum.sums[key],
                    "min": self.cum.mins[key],
                    "max": self.cum.maxs[key],
                    "bounds": list(JOB_DURATION_BOUNDS_S),
                    "bucket_counts": counts.tolist(),
                    "temporality": "cumulative",
                    "exemplars": None,
                }
            )
            index = int(np.ceil(np.log2(run.records) * 2**EXP_SCALE)) - 1
            exp.append(
                {
                    **self._metric_head(
                        "job.records", "{record}", job.service, version, t_ns=end, start_ns=run.start_ns, attrs=attrs
                    ),
                    "count": 1,
                    "sum": float(run.records),
                    "min": float(run.records),
                    "max": float(run.records),
                    "scale": EXP_SCALE,
                    "zero_count": 0,
                    "zero_threshold": 0.0,
                    "positive_offset": index,
                    "positive_counts": [1],
                    "negative_offset": 0,
                    "negative_counts": [],
                    "temporality": "delta",
                    "exemplars": None,
                }
            )
        return exp
