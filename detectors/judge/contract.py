"""The feature contract: a YAML file a change carries, saying what the running system must show.

Example (every key optional except ``operations`` entries' ``name``)::

    change: "checkout: one-click payment"
    service: checkout                     # default service of the gate
    operations:
      - name: "checkout:PlaceOrder"       # service:operation (span name of its SERVER spans)
        added: false                      # a new operation: no baseline expected
        slo:
          latency_ms: 250                 # candidate latency quantile below this (ms)
          quantile: 0.99
          error_ratio: 0.01               # candidate error ratio below this (fraction)
        span_attributes: [order.id, payment.method]
    calls:
      present: [{from: "checkout:PlaceOrder", to: "payments:Charge"}]
      removed: [{from: "checkout:PlaceOrder", to: "legacy:Charge"}]
    invariants:
      held: ["checkout:PlaceOrder calls payments:Charge"]
      removed: []
    telemetry:
      metrics: [http.server.request.duration]   # metric names the service must emit
      histograms: [receipts.render.duration]    # ... as histograms (batch work, durations)
      logs_with_trace_context: true             # >= min_fraction of its logs carry trace and span id
      trace_propagation: true                   # >= min_fraction of its requests join a trace
      min_fraction: 0.99
    thresholds:                                 # override the gate's defaults per metric kind
      latency: {min_effect: 0.1}

Forward planning (``driftscope plan``) adds the rest of the Feature Contract Checklist,
every section optional (see ``detectors.judge.contract_plan``): ``tests`` (which JUnit
test cases count as unit, integration and E2E tests of this change), ``infrastructure``
(whether it touches infrastructure, where those files live), ``rollback`` (the version to
roll back to and the documented procedure) and ``notes`` (the drafter's reasoning). Edges
may say how they are called (``mode``: sequential, parallel, async; ``optional``: not on
every request), which the design checks use for latency budgets.

``load_contract`` validates with pydantic and raises :class:`ContractError` whose
message names every bad field (``operations.0.slo.quantile: ...``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from detectors.judge.contract_plan import Infrastructure, Rollback, Tests

__all__ = [
    "Contract",
    "ContractError",
    "Edge",
    "Infrastructure",
    "OperationContract",
    "Rollback",
    "Slo",
    "Tests",
    "dump_contract",
    "load_contract",
    "parse_contract",
]


class ContractError(ValueError):
    """A contract file is missing or invalid; the message names each bad field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _op_ref(value: str) -> str:
    service, sep, op = value.partition(":")
    if not (sep and service and op):
        raise ValueError(f"{value!r} is not 'service:operation'")
    return value


class Slo(_Model):
    """Service level objectives of one operation, checked on the candidate."""

    latency_ms: float | None = Field(None, gt=0)
    quantile: float = Field(0.99, gt=0, lt=1)
    error_ratio: float | None = Field(None, ge=0, le=1)
    basis: str = ""
    """Where the budget comes from (a drafter writes e.g. "2 x today's p99 31 ms"); not checked."""


class OperationContract(_Model):
    """An operation the change adds or touches."""

    name: str
    added: bool = False
    slo: Slo = Slo()
    span_attributes: list[str] = []
    tests: list[str] = []
    """Keywords naming this operation's tests (matched in JUnit test ids, case-insensitive)."""

    _name = field_validator("name")(_op_ref)


class Edge(_Model):
    """A call edge caller -> callee, both 'service:operation'."""

    caller: str = Field(alias="from")
    callee: str = Field(alias="to")
    mode: Literal["sequential", "parallel", "async"] = "sequential"
    """How the caller waits: one call after another, at once with its siblings, or not at all."""
    optional: bool = False
    """True when not every request makes the call (it then sets no latency floor)."""

    _refs = field_validator("caller", "callee")(_op_ref)


class Calls(_Model):
    present: list[Edge] = []
    removed: list[Edge] = []


class Invariants(_Model):
    held: list[str] = []
    removed: list[str] = []


class Telemetry(_Model):
    """The 'physics' of the change: the telemetry it must emit."""

    metrics: list[str] = []
    histograms: list[str] = []
    """Metric names that must arrive as histograms (explicit or exponential), e.g. batch work durations."""
    services: list[str] = []
    """Services the telemetry checks apply to; empty: every service the contract names."""
    logs_with_trace_context: bool = False
    trace_propagation: bool = False
    min_fraction: float = Field(0.99, gt=0, le=1)


class Threshold(_Model):
    """Override of a metric kind's judge settings (see detectors.judge.metrics.MetricSpec)."""

    min_effect: float | None = Field(None, ge=0)
    critical: bool | None = None
    min_samples: int | None = Field(None, ge=0)
    direction: Literal["increase", "decrease"] | None = None


class Contract(_Model):
    """A whole contract file."""

    change: str = ""
    service: str | None = None
    operations: list[OperationContract] = []
    calls: Calls = Calls()
    invariants: Invariants = Invariants()
    telemetry: Telemetry = Telemetry()
    thresholds: dict[
        Literal["latency", "latency_p99", "error_ratio", "calls_per_request", "gauge", "histogram_metric"], Threshold
    ] = {}
    tests: Tests = Tests()
    infrastructure: Infrastructure = Infrastructure()
    rollback: Rollback = Rollback()
    notes: list[str] = []
    """Free text: the drafter's reasoning (where budgets come from, what was assumed)."""

    def services(self) -> list[str]:
        """Every service the contract names (its own, its operations', its edges' callers)."""
        names = [self.service] if self.service else []
        names += [o.name.partition(":")[0] for o in self.operations]
        names += [e.caller.partition(":")[0] for e in (*self.calls.present, *self.calls.removed)]
        return sorted(set(names))


def parse_contract(text: str, source: str = "<contract>") -> Contract:
    """Validate contract YAML text."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContractError(f"contract {source} is not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ContractError(f"contract {source}: the top level must be a mapping, got {type(data).__name__}")
    try:
        return Contract.model_validate(data)
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc']) or '(contract)'}: {e['msg']}" for e in exc.errors()]
        raise ContractError(f"invalid contract {source}:\n" + "\n".join(lines)) from None


def dump_contract(contract: Contract) -> str:
    """The contract as YAML (aliases ``from``/``to``, defaults left out, keys in declaration order)."""
    data = contract.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)


def load_contract(path: str | Path) -> Contract:
    """A contract from a YAML file."""
    p = Path(path)
    if not p.is_file():
        raise ContractError(f"contract file {path} does not exist")
    return parse_contract(p.read_text(encoding="utf-8"), str(p))
