"""Scenario files: a TOML description of a system, its load and its faults, validated.

A scenario declares services and their operations (``"service:operation"`` names), the
synchronous call graph, service-time distributions, concurrency (servers per operation),
the arrival process, error rates, retries and timeouts, log statements, attributes,
business counters, batch jobs, deploys and faults. ``load_scenario`` accepts a library
name (``simulator/scenarios/NAME.toml``) or a path and raises ``ScenarioError`` naming
every bad key. A scenario may start with ``extends = "NAME"`` to inherit a library
scenario, or ``extends = "PATH.toml"`` to inherit a file (a relative path is relative to
the directory of the scenario that names it, so users keep their own worlds side by
side): its tables merge key by key and its arrays (faults, entrypoints) replace the
inherited ones. Times in a scenario are minutes after the scenario start (history runs
before it; ``start`` says when minute 0 is, default Monday 2026-03-02 00:00 UTC);
durations are milliseconds; rates are per second.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

LIBRARY = Path(__file__).parent / "scenarios"


class ScenarioError(ValueError):
    """A scenario is invalid or missing; the message names each bad key."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Distribution(_Model):
    """A positive duration distribution in milliseconds.

    ``lognormal``: median ``median_ms`` and log-space ``sigma``. ``gamma``: mean
    ``median_ms``-scaled shape ``shape`` (median close to ``median_ms``). A heavy tail
    replaces a fraction ``tail_prob`` of draws by Pareto draws (index ``tail_alpha``)
    starting at ``tail_scale`` x the median.
    """

    dist: Literal["lognormal", "gamma"] = "lognormal"
    median_ms: float = Field(gt=0)
    sigma: float = Field(0.4, gt=0, le=3)
    shape: float = Field(4.0, gt=0)
    tail_prob: float = Field(0.0, ge=0, le=0.5)
    tail_scale: float = Field(5.0, ge=1)
    tail_alpha: float = Field(2.5, gt=1)


class Call(_Model):
    """A synchronous call from an operation to another (``to`` = "service:operation")."""

    to: str
    prob: float = Field(1.0, ge=0, le=1)
    fanout: int | tuple[int, int] = 1
    """Calls per invocation: a fixed count, or an inclusive [low, high] range."""
    mode: Literal["sequential", "parallel", "async"] = "sequential"
    """sequential: fan-out calls one after another; parallel: at once; async: enqueue and
    go on (the caller waits only for the hand-off, as with a workflow or message queue)."""
    timeout_ms: float = Field(5_000.0, gt=0)
    retries: int = Field(0, ge=0, le=5)
    """Extra attempts after a failed one (server errors; timeouts fail the client span)."""
    backoff_ms: float = Field(20.0, ge=0)

    @field_validator("fanout")
    @classmethod
    def _fanout(cls, v: int | tuple[int, int]) -> int | tuple[int, int]:
        low, high = (v, v) if isinstance(v, int) else v
        if not 0 < low <= high <= 64:
            raise ValueError("fanout must be 1..64 or a range [low, high] within it")
        return v


class LogStatement(_Model):
    """A log line an operation writes: ``template`` with ``{id}``, ``{ms}``, ``{n}``, ``{user}``."""

    template: str
    severity: Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"] = "INFO"
    prob: float = Field(0.01, ge=0, le=1)
    on: Literal["any", "error", "ok"] = "any"
    trace_context: bool = True


AttributeKind = Literal["int", "uuid", "user"]


class Operation(_Model):
    """One operation of a service: a queue with ``servers`` servers in front of its work."""

    service_time: Distribution
    servers: int = Field(8, ge=1, le=10_000)
    error_rate: float = Field(0.0, ge=0, le=1)
    kind: Literal["http", "rpc", "db", "cache", "queue", "workflow", "external"] = "http"
    """``db``, ``cache`` and ``external`` (a third-party provider) have no tracer of their own:
    only their callers' client spans show them."""
    method: str = "GET"
    attributes: dict[str, str | int | bool] = {}
    """Constant attributes of every span of the operation."""
    dynamic_attributes: dict[str, AttributeKind | list[str]] = {}
    """Attributes drawn per span: "int" (an id), "uuid", "user", or one of a list of strings."""
    calls: list[Call] = []
    logs: list[LogStatement] = []


class Export(_Model):
    """Which telemetry a service exports besides its spans (teams differ in their habits)."""

    histograms: bool = True
    """Request-duration histograms (and batch-job histograms) of its operations."""
    gauges: bool = True
    """Queue-depth and in-flight gauges of its operations."""
    logs: bool = True
    """Its log statements (and the lines of new-template faults)."""
    traces_from_min: float | None = None
    """Minute its spans and logs start (tracing switched on then; metrics flow all along). None: always."""


class Service(_Model):
    version: str = "1.0.0"
    attributes: dict[str, str] = {}
    operations: dict[str, Operation]
    export: Export = Export()


class Entrypoint(_Model):
    operation: str
    weight: float = Field(1.0, gt=0)
    start_min: float | None = None
    """Minute (after the scenario start) the endpoint starts receiving traffic; None: always."""


class Episode(_Model):
    """A stretch of unusual demand: a surge (``factor`` > 1) or a holiday (``factor`` < 1).

    The arrival rate is multiplied by ``factor`` from ``start_min`` to ``end_min``, reached
    linearly over ``ramp_min`` minutes at both ends (0 = a step).
    """

    kind: Literal["surge", "holiday"] = "surge"
    start_min: float
    end_min: float
    factor: float = Field(gt=0, le=20)
    ramp_min: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _window(self) -> Episode:
        if self.end_min <= self.start_min:
            raise ValueError("end_min must be after start_min")
        return self


class Arrivals(_Model):
    """Poisson arrivals at ``rate_per_s`` modulated by day, week and noise."""

    rate_per_s: float = Field(gt=0, le=100_000)
    diurnal_amplitude: float = Field(0.4, ge=0, lt=1)
    """Relative swing over a day: the rate runs from (1 - a) to (1 + a) x the mean."""
    peak_hour: float = Field(14.0, ge=0, lt=24)
    weekend_factor: float = Field(0.75, gt=0, le=2)
    noise_sigma: float = Field(0.05, ge=0, le=1)
    """Log-scale standard deviation of a slow (AR(1), 30-minute) rate noise."""
    utc_offset_h: float = Field(0.0, ge=-12, le=14)
    """The users' time zone: ``peak_hour`` and weekends are in local time, UTC + this."""
    dst_shift_min: float | None = None
    """Minute (after the scenario start) local clocks move forward one hour (daylight saving)."""
    episodes: list[Episode] = []
    """Surges and holidays (benign unless they exceed capacity)."""


class Counter(_Model):
    """A business counter incremented once per successful span of ``operation``."""

    name: str
    operation: str
    per_span: float = Field(1.0, gt=0)


class BatchJob(_Model):
    """A background job in ``service`` that runs every ``every_min`` minutes."""

    name: str
    service: str
    every_min: int = Field(60, ge=1)
    duration: Distribution
    records: Distribution


class Deploy(_Model):
    service: str
    version: str
    at_min: float


FaultKind = Literal[
    "latency_regression",
    "error_burst",
    "slow_drift",
    "dependency_slowdown",
    "retry_storm",
    "capacity_saturation",
    "broken_propagation",
    "new_log_template",
    "attribute_change",
    "call_edge",
    "batch_shift",
]


class Fault(_Model):
    """A fault active from ``start_min`` to ``end_min`` (minutes after the scenario start).

    ``target`` is "service:operation" (or a service, a batch job name, or "arrivals" for
    capacity saturation). ``magnitude`` means: relative latency increase of the whole
    operation, own work plus calls (regression, slowdown: 0.6 = +60 %; batch shift),
    added error probability (error burst, retry storm), latency growth per day (slow
    drift: 0.01 = +1 %/day), peak arrival multiplier minus one
    (saturation), fraction of broken requests (propagation), log lines per minute (new
    template), call probability (edge added).
    """

    kind: FaultKind
    target: str
    start_min: float = Field(ge=0)
    end_min: float
    magnitude: float = Field(0.5, ge=0)
    deploy_version: str | None = None
    """Deploy this version of the target's service when the fault starts."""
    template: str | None = None
    severity: Literal["INFO", "WARN", "ERROR"] = "ERROR"
    attribute: str | None = None
    change: Literal["vanish", "type", "remove", "add"] | None = None
    to: str | None = None
    """For call_edge: the callee of the edge added or removed (target is the caller)."""
    ramp_min: float = Field(0.0, ge=0)
    """Minutes over which the fault grows from nothing to ``magnitude`` (0 = a step onset)."""

    @model_validator(mode="after")
    def _window(self) -> Fault:
        if self.end_min <= self.start_min:
            raise ValueError("end_min must be after start_min")
        if self.kind == "new_log_template" and not self.template:
            raise ValueError("new_log_template needs template")
        if self.kind == "attribute_change" and (not self.attribute or self.change not in ("vanish", "type")):
            raise ValueError("attribute_change needs attribute and change = 'vanish' or 'type'")
        if self.kind == "call_edge" and (not self.to or self.change not in ("remove", "add")):
            raise ValueError("call_edge needs to and change = 'remove' or 'add'")
        return self


class Scenario(_Model):
    """A whole scenario file."""

    name: str
    description: str
    hours: float = Field(6.0, gt=0)
    """Default hours simulated after the history."""
    history_days: float = Field(0.0, ge=0)
    """Default days of history before the scenario start."""
    start: dt.datetime | None = None
    """When scenario minute 0 is (UTC unless an offset is given); None: Monday 2026-03-02 00:00 UTC."""
    arrivals: Arrivals
    entrypoints: Annotated[list[Entrypoint], Field(min_length=1)]
    services: dict[str, Service]
    counters: list[Counter] = []
    batch_jobs: list[BatchJob] = []
    deploys: list[Deploy] = []
    faults: list[Fault] = []

    def start_ns(self, default_ns: int) -> int:
        """Scenario minute 0 in ns since the epoch (``default_ns`` when ``start`` is unset)."""
        if self.start is None:
            return default_ns
        start = self.start if self.start.tzinfo else self.start.replace(tzinfo=dt.UTC)
        return int(start.timestamp()) * 1_000_000_000 + start.microsecond * 1000

    def operation(self, ref: str) -> Operation:
        service, _, op = ref.partition(":")
        return self.services[service].operations[op]

    def operation_refs(self) -> list[str]:
        """Every "service:operation", in declaration order."""
        return [f"{s}:{o}" for s, svc in self.services.items() for o in svc.operations]

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        ops = set(self.operation_refs())
        problems: list[str] = []
        for e in self.entrypoints:
            if e.operation not in ops:
                problems.append(f"entrypoints: unknown operation {e.operation!r}")
        for ref in self.operation_refs():
            for call in self.operation(ref).calls:
                if call.to not in ops:
                    problems.append(f"services.{ref.replace(':', '.operations.')}.calls: unknown operation {call.to!r}")
        for c in self.counters:
            if c.operation not in ops:
                problems.append(f"counters.{c.name}: unknown operation {c.operation!r}")
        for job in self.batch_jobs:
            if job.service not in self.services:
                problems.append(f"batch_jobs.{job.name}: unknown service {job.service!r}")
        for d in self.deploys:
            if d.service not in self.services:
                problems.append(f"deploys: unknown service {d.service!r}")
        jobs = {j.name for j in self.batch_jobs}
        for i, f in enumerate(self.faults):
            valid = (
                ops | set(self.services) | jobs | {"arrivals"}
                if f.kind in ("broken_propagation", "new_log_template", "batch_shift", "capacity_saturation")
                else ops
            )
            if f.target not in valid:
                problems.append(f"faults[{i}].target: unknown {f.target!r} for {f.kind}")
            if f.to is not None and f.to not in ops:
                problems.append(f"faults[{i}].to: unknown operation {f.to!r}")
        cycle = self._find_cycle()
        if cycle:
            problems.append(f"services: the call graph has a cycle: {' -> '.join(cycle)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _find_cycle(self) -> list[str] | None:
        state: dict[str, int] = {}
        stack: list[str] = []

        def visit(ref: str) -> list[str] | None:
            state[ref] = 1
            stack.append(ref)
            for call in self.operation(ref).calls:
                if call.to not in self.operation_refs():
                    continue
                if state.get(call.to) == 1:
                    return [*stack[stack.index(call.to) :], call.to]
                if call.to not in state:
                    found = visit(call.to)
                    if found:
                        return found
            stack.pop()
            state[ref] = 2
            return None

        for ref in self.operation_refs():
            if ref not in state:
                found = visit(ref)
                if found:
                    return found
        return None


def library() -> dict[str, Path]:
    """Scenario name -> file, for every scenario shipped with driftscope."""
    return {p.stem: p for p in sorted(LIBRARY.glob("*.toml"))}


def _format(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(scenario)"
        lines.append(f"  {key}: {err['msg']}")
    return f"invalid scenario {source}:\n" + "\n".join(lines)


def _merge(base: dict[str, object], over: dict[str, object]) -> dict[str, object]:
    """``over`` on top of ``base``: tables merge key by key, everything else is replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)  # type: ignore[arg-type]
        else:
            out[key] = value
    return out


def _parent(parent: object, source: str, base_dir: Path | None) -> tuple[str, Path]:
    """(key for cycle detection, file) of the scenario ``extends`` names."""
    lib = library()
    if not isinstance(parent, str) or not parent:
        raise ScenarioError(f"scenario {source}: extends must be a library name or a path, got {parent!r}")
    if parent.endswith(".toml") or "/" in parent or "\\" in parent:
        path = Path(parent)
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        if not path.is_file():
            raise ScenarioError(f"scenario {source}: extends {parent!r}, but {path} is not a file")
        return str(path.resolve()), path
    if parent not in lib:
        raise ScenarioError(
            f"scenario {source}: extends {parent!r}, which is not in the library ({', '.join(lib)}) "
            "and not a path (paths end in .toml)"
        )
    return str(lib[parent].resolve()), lib[parent]


def _read(text: str, source: str, seen: tuple[str, ...] = (), base_dir: Path | None = None) -> dict[str, object]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"scenario {source} is not valid TOML: {exc}") from None
    parent = data.pop("extends", None)
    if parent is None:
        return data
    key, path = _parent(parent, source, base_dir)
    if key in seen:
        raise ScenarioError(f"scenario {source}: extends forms a cycle through {parent!r}")
    base = _read(path.read_text(encoding="utf-8"), str(path), (*seen, key), path.parent)
    return _merge(base, data)


def parse_scenario(text: str, source: str = "<text>", base_dir: Path | None = None) -> Scenario:
    """Validate scenario TOML text (``extends`` inherits a library scenario or a file; a relative
    path is relative to ``base_dir``, the current directory when None)."""
    seen = (str(Path(source).resolve()),) if Path(source).is_file() else ()
    data = _read(text, source, seen, base_dir)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_format(exc, source)) from None


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A scenario from the library by name, or from a TOML file path."""
    lib = library()
    path = lib.get(str(name_or_path)) or Path(name_or_path)
    if not path.is_file():
        raise ScenarioError(f"no scenario {name_or_path!r}: not a file, and the library has {', '.join(lib)}")
    return parse_scenario(path.read_text(encoding="utf-8"), str(path), path.parent)
