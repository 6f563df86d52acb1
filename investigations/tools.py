"""The tool belt: typed tools over the snapshot, each returning a compact, reproducible result.

Every tool has a JSON schema (from its pydantic argument model) and returns a
``ToolResult``: ``data`` (rows capped at the snapshot's row cap, ``truncated`` saying so),
a one-line ``summary``, and the ``call`` (tool + arguments) that reproduces it, which is
what report claims carry and the controller re-runs. Results are data: telemetry text
(log lines, attribute values, status messages) is returned as-is and never interpreted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from analysis import Window, signals
from analysis.effects import two_proportion_z, two_sided_p, welch_z
from investigations import tools_sql as q
from investigations.snapshot import Snapshot, SnapshotError, to_timestamp
from simulator.patches import CallSite, DisableEdge, Drain, Patch, RateLimit, Rollback, Scale


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoArgs(_Args):
    pass


class Scope(_Args):
    service: str | None = Field(None, description="service.name; omit for all services")
    operation: str | None = Field(None, description="span name; omit for all operations")


class ServiceScope(_Args):
    service: str | None = Field(None, description="service.name; omit for all services")


class SqlArgs(_Args):
    sql: str = Field(description="one read-only DuckDB SELECT over spans, logs, metric_points, ... (rows capped)")


class SignalArgs(_Args):
    kind: Literal["rate", "error_ratio", "latency_p50", "latency_p90", "latency_p99", "log_rate"]
    service: str
    operation: str | None = None


class AttributeArgs(Scope):
    target: Literal["error", "slow"] = Field("slow", description="compare failing or slow (> baseline p90) spans")


class ExemplarArgs(Scope):
    kind: Literal["slow", "error"] = "slow"
    limit: int = Field(5, ge=1, le=20)


class TraceArgs(_Args):
    trace_id: str = Field(min_length=1, max_length=64)


@dataclass(frozen=True)
class ToolResult:
    """What one tool call returned (``error`` set instead of data when it failed)."""

    tool: str
    args: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    truncated: bool = False
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"call": {"tool": self.tool, "args": self.args}}
        if self.error is not None:
            out["error"] = self.error
        else:
            out.update(summary=self.summary, truncated=self.truncated, data=self.data)
        return out


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args: type[_Args]
    run: Callable[[Snapshot, Any], tuple[dict[str, Any], str, bool]]

    def schema(self) -> dict[str, Any]:
        """The Messages API tool definition."""
        schema = self.args.model_json_schema()
        schema.pop("title", None)
        return {"name": self.name, "description": self.description, "input_schema": schema}


def _rows(snap: Snapshot, sql: str, args: _Args, **extra: Any) -> tuple[list[dict[str, Any]], bool]:
    params = {**snap.window.params(), **args.model_dump(), **extra}
    params = {k: v for k, v in params.items() if f"${k}" in sql}
    res = snap.query(sql, params)
    return res.records(), res.truncated


def _describe_schema(snap: Snapshot, args: NoArgs) -> tuple[dict[str, Any], str, bool]:
    res = snap.query(
        "SELECT table_name, string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) AS columns "
        "FROM information_schema.columns GROUP BY table_name ORDER BY table_name",
        row_cap=200,
    )
    return {"tables": res.records(), "window": snap.window.to_dict()}, f"{len(res.rows)} tables", res.truncated


class PatchArgs(_Args):
    patch: Patch = Field(description="the remediation: actions (rollback, scale, call_site, disable_edge, "
                         "rate_limit, drain), the expected effect and the rationale")  # fmt: skip


def _patch_names(patch: Patch) -> list[tuple[str, str]]:
    """(field, name) of every service or service:operation the patch's actions name."""
    out: list[tuple[str, str]] = []
    for i, a in enumerate(patch.actions):
        key = f"patch.actions.{i}"
        if isinstance(a, Rollback):
            out.append((f"{key}.service", a.service))
        elif isinstance(a, Scale):
            out.append((f"{key}.operation", a.operation))
        elif isinstance(a, CallSite | DisableEdge):
            out += [(f"{key}.caller", a.caller), (f"{key}.callee", a.callee)]
        elif isinstance(a, RateLimit):
            out.append((f"{key}.entrypoint", a.entrypoint))
        elif isinstance(a, Drain):
            out.append((f"{key}.target", a.target))
    return out


def _propose_patch(snap: Snapshot, args: PatchArgs) -> tuple[dict[str, Any], str, bool]:
    """Check a proposed patch's names against the snapshot's spans (client spans name untraced peers)."""
    res = snap.query("SELECT DISTINCT service_name, span_name FROM spans", row_cap=100_000)
    ops = {f"{r[0]}:{r[1]}" for r in res.rows}
    services = {str(r[0]) for r in res.rows}
    unknown = [f"{k}: {name!r} is not a service or service:operation in the telemetry" for k, name in
               _patch_names(args.patch) if name not in ops and name not in services]  # fmt: skip
    if unknown:
        raise SnapshotError("; ".join(unknown))
    data = {"accepted": True, "patch": args.patch.model_dump(mode="json"), "describe": args.patch.describe()}
    return data, f"patch accepted: {args.patch.describe()}", False


WHAT_IF = "what_if"


def _what_if(snap: Snapshot, args: PatchArgs) -> tuple[dict[str, Any], str, bool]:
    """Run by the environment (it holds the twin runner the controller wired); here only when none is wired."""
    raise SnapshotError("what_if is not available in this investigation (no digital twin of the system was wired)")


def _run_sql(snap: Snapshot, args: SqlArgs) -> tuple[dict[str, Any], str, bool]:
    kinds = snap.statement_kinds(args.sql)
    if kinds != ["SELECT"]:
        raise SnapshotError(f"only one SELECT statement is allowed (got {', '.join(kinds) or 'nothing'})")
    res = snap.query(args.sql, {k: v for k, v in snap.window.params().items() if f"${k}" in args.sql})
    return {"columns": res.columns, "rows": [list(r) for r in res.rows]}, f"{len(res.rows)} rows", res.truncated


def _compare_windows(snap: Snapshot, args: Scope) -> tuple[dict[str, Any], str, bool]:
    rows, truncated = _rows(snap, q.COMPARE_WINDOWS, args)
    for r in rows:
        # Welch z of self time, two-proportion z of own errors, relative rate change: the effect sizes.
        n0, n1 = r["n_before"], r["n_after"]
        d_self = (r["self_ms_after"] or 0.0) - (r["self_ms_before"] or 0.0)
        r["self_change_ms"] = round(d_self, 4)
        r["self_change_rel"] = round(d_self / r["self_ms_before"], 4) if r["self_ms_before"] else None
        z = welch_z(
            (r["self_ms_before"] or 0.0, r["self_sd_ms_before"] or 0.0, n0),
            (r["self_ms_after"] or 0.0, r["self_sd_ms_after"] or 0.0, n1),
        )
        r["self_z"] = round(float(z), 2)
        p0, p1 = r["own_error_ratio_before"] or 0.0, r["own_error_ratio_after"] or 0.0
        r["own_error_z"] = round(float(two_proportion_z(p0, n0, p1, n1)), 2)
        r["rate_change_rel"] = round(r["rate_after"] / r["rate_before"] - 1, 4) if r["rate_before"] else None
        r["p_value_self"] = float(f"{float(two_sided_p(r['self_z'])):.3g}")
    return {"rows": rows}, f"{len(rows)} operations compared (before vs after)", truncated


def _dependencies(snap: Snapshot, args: Scope) -> tuple[dict[str, Any], str, bool]:
    rows, truncated = _rows(snap, q.DEPENDENCIES, args)
    for r in rows:
        r["contribution_change_ms"] = round(r["contribution_ms_after"] - r["contribution_ms_before"], 4)
        r["edge"] = ("appeared" if r["calls_per_s_before"] == 0 else
                     "disappeared" if r["calls_per_s_after"] == 0 else "present")  # fmt: skip
    return {"rows": rows}, f"{len(rows)} call edges", truncated


def _deploys(snap: Snapshot, args: ServiceScope) -> tuple[dict[str, Any], str, bool]:
    rows, truncated = _rows(snap, q.DEPLOYS, args)
    return {"rows": rows}, f"{len(rows)} version changes", truncated


def _log_templates(snap: Snapshot, args: ServiceScope) -> tuple[dict[str, Any], str, bool]:
    if not snap.has("logs"):
        return {"rows": []}, "no logs table", False
    rows, truncated = _rows(snap, q.LOG_TEMPLATES_DIFF, args)
    new = sum(1 for r in rows if r["new"])
    return {"rows": rows}, f"{len(rows)} templates, {new} new in the incident window", truncated


def _attribute_diff(snap: Snapshot, args: AttributeArgs) -> tuple[dict[str, Any], str, bool]:
    rows, truncated = _rows(snap, q.ATTRIBUTE_DIFF, args)
    for r in rows:
        r["lift"] = round(r["share_target"] - r["share_baseline"], 4)
    return {"rows": rows}, f"{len(rows)} attribute values ranked by over-representation", truncated


def _exemplars(snap: Snapshot, args: ExemplarArgs) -> tuple[dict[str, Any], str, bool]:
    params = {k: v for k, v in {**snap.window.params(), **args.model_dump()}.items() if f"${k}" in q.EXEMPLARS}
    res = snap.query(q.EXEMPLARS, params, row_cap=min(args.limit, snap.row_cap))
    return {"rows": res.records()}, f"{len(res.rows)} exemplar spans", res.truncated


def _critical_path(snap: Snapshot, args: TraceArgs) -> tuple[dict[str, Any], str, bool]:
    res = snap.query(q.TRACE, {"trace_id": args.trace_id}, row_cap=2_000)
    spans = res.records()
    if not spans:
        raise SnapshotError(f"no trace {args.trace_id!r} in the snapshot")
    ids = {s["span_id"] for s in spans}
    children: dict[str, list[dict[str, Any]]] = {}
    for s in spans:
        children.setdefault(s["parent_span_id"] or "", []).append(s)
    roots = [s for s in spans if not s["parent_span_id"] or s["parent_span_id"] not in ids]
    node: dict[str, Any] | None = max(roots, key=lambda s: s["duration_ns"])
    path = []
    while node is not None:  # follow the child that ends last: it holds the parent up
        kids = children.get(node["span_id"], [])
        last = max(kids, key=lambda s: s["end_ns"]) if kids else None
        self_ns = node["duration_ns"] - sum(k["duration_ns"] for k in kids)
        path.append({"service": node["service"], "operation": node["operation"], "span_kind": node["span_kind"],
                     "duration_ms": round(node["duration_ns"] / 1e6, 3), "self_ms": round(max(self_ns, 0) / 1e6, 3),
                     "status": node["status_code"]})  # fmt: skip
        node = last
    data = {"trace_id": args.trace_id, "spans": len(spans), "roots": len(roots), "critical_path": path}
    return data, f"critical path of {len(path)} spans", res.truncated


def _attribute_contract(snap: Snapshot, args: Scope) -> tuple[dict[str, Any], str, bool]:
    rows, truncated = _rows(snap, q.ATTRIBUTE_CONTRACT, args)
    return {"rows": rows}, f"{len(rows)} attribute keys whose presence or type changed", truncated


def _saturation(snap: Snapshot, args: ServiceScope) -> tuple[dict[str, Any], str, bool]:
    rows, truncated = _rows(snap, q.SATURATION, args)
    return {"rows": rows}, f"{len(rows)} gauges (queue depth, in-flight requests)", truncated


def _points(times: list[Any], values: Any) -> list[list[Any]]:
    return [[str(t), round(float(v), 6)] for t, v in zip(times, values, strict=True)]


def _get_signal(snap: Snapshot, args: SignalArgs) -> tuple[dict[str, Any], str, bool]:
    if not snap.has("rollup_spans"):
        raise SnapshotError("the snapshot has no rollups (run `driftscope` rollups before investigating)")
    w = snap.window
    window = Window(to_timestamp(w.baseline_start_ns), to_timestamp(w.end_ns), 300)
    frame = snap.with_connection(
        lambda con: signals(con, args.kind, window, service=args.service, operation=args.operation)
    ).sort("time")
    if args.operation is None and args.kind != "log_rate":
        frame = frame.group_by("time").agg(value=pl.col("value").mean()).sort("time")
    times = frame["time"].dt.epoch("ns").to_numpy()
    values = frame["value"].to_numpy().astype(float)
    before = values[times < w.start_ns]
    after = values[times >= w.start_ns]
    b = float(np.nanmean(before)) if before.size else None
    a = float(np.nanmean(after)) if after.size else None
    data = {"kind": args.kind, "mean_before": None if b is None else round(b, 6),
            "mean_after": None if a is None else round(a, 6),
            "change_rel": round(a / b - 1, 4) if a is not None and b else None,
            "points": _points(frame["time"].to_list()[-24:], values[-24:])}  # fmt: skip
    return data, f"{args.kind} at 5-minute resolution, {len(values)} points (last 24 shown)", len(values) > 24


def _findings(snap: Snapshot, args: ServiceScope) -> tuple[dict[str, Any], str, bool]:
    if not snap.has("findings"):
        return {"rows": []}, "no findings table", False
    rows, truncated = _rows(snap, q.FINDINGS, args)
    return {"rows": rows}, f"{len(rows)} findings overlapping the window", truncated


def _invariants(snap: Snapshot, args: ServiceScope) -> tuple[dict[str, Any], str, bool]:
    if not snap.has("invariants"):
        return {"rows": []}, "no invariants table", False
    res = snap.query("SELECT * FROM invariants WHERE $service IS NULL OR CAST(to_json(invariants) AS VARCHAR) "
                     "LIKE '%' || $service || '%'", {"service": args.service})  # fmt: skip
    return {"rows": res.records()}, f"{len(res.rows)} invariants", res.truncated


TOOLS: dict[str, Tool] = {t.name: t for t in (
    Tool("describe_schema", "Tables and columns of the snapshot, and the incident window.", NoArgs, _describe_schema),
    Tool("run_sql", "Run one read-only SELECT on the snapshot (rows capped; $b0/$i0/$i1 are the baseline start, "
         "incident start and end).", SqlArgs, _run_sql),
    Tool("get_signal", "A signal (rate, error ratio, latency quantile, log rate) before vs during the incident.",
         SignalArgs, _get_signal),
    Tool("compare_windows", "Per operation, baseline vs incident: rate, latency, self time (Welch z), error ratio, "
         "own errors (errors not caused by a failing child; two-proportion z), share of root spans.",
         Scope, _compare_windows),
    Tool("attribute_diff", "Attribute values over-represented in slow or failing incident spans vs the baseline "
         "(BubbleUp).", AttributeArgs, _attribute_diff),
    Tool("exemplar_traces", "The slowest or failing spans of the incident window, with their trace ids.",
         ExemplarArgs, _exemplars),
    Tool("critical_path", "A trace's critical path: the chain of spans that held the request up, with self times.",
         TraceArgs, _critical_path),
    Tool("log_templates_diff", "Log templates (numbers and ids masked) before vs during the incident; new ones first.",
         ServiceScope, _log_templates),
    Tool("deploys", "Service version changes since the baseline start.", ServiceScope, _deploys),
    Tool("dependencies", "Call graph edges with calls per caller span and each edge's latency contribution "
         "(ms per caller span) before vs during; appeared and disappeared edges.", Scope, _dependencies),
    Tool("attribute_contract", "Attribute keys whose presence share (> 20 points) or JSON type changed per operation.",
         Scope, _attribute_contract),
    Tool("saturation", "Queue depth and in-flight request gauges before vs during.", ServiceScope, _saturation),
    Tool("findings", "Detector findings overlapping the window.", ServiceScope, _findings),
    Tool("invariants", "Learned invariants (if any) mentioning the service.", ServiceScope, _invariants),
    Tool("propose_patch", "Propose a remediation patch (checked against the telemetry's services and operations; "
         "accepted patches join the report, first proposed first).", PatchArgs, _propose_patch),
    Tool(WHAT_IF, "Test a patch on a digital twin of the system (fitted from its telemetry, the incident as faults) "
         "before recommending it: the gym's test runner's verdict (fixed / not fixed / harmful) and reasons. Slow and "
         "budgeted: a few calls per investigation.", PatchArgs, _what_if),
)}  # fmt: skip


def run_tool(snap: Snapshot, name: str, args: dict[str, Any]) -> ToolResult:
    """Run tool ``name`` with ``args``; bad names, bad arguments and SQL errors come back as ``error``."""
    tool = TOOLS.get(name)
    if tool is None:
        return ToolResult(name, args, error=f"unknown tool {name!r}; tools: {', '.join(TOOLS)}")
    try:
        parsed = tool.args.model_validate(args)
    except ValidationError as exc:
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(args)'}: {e['msg']}" for e in exc.errors())
        return ToolResult(name, args, error=f"bad arguments: {detail}")
    try:
        data, summary, truncated = tool.run(snap, parsed)
    except SnapshotError as exc:
        return ToolResult(name, args, error=str(exc))
    return ToolResult(name, args, _plain(data), summary, truncated)


def _plain(value: Any) -> Any:
    """JSON-ready values (timestamps and decimals as strings, NaN as null)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def tool_definitions() -> list[dict[str, Any]]:
    """Every tool's Messages API definition, in a stable order."""
    return [t.schema() for t in TOOLS.values()]
