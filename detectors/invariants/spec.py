"""The human-editable spec: SLOs, invariants, the expected call graph and boundary contracts, as YAML.

``driftscope invariants extract`` writes one from a baseline, a team edits and commits it,
``driftscope invariants check --spec`` and the detection job read it back. Every field is
validated (pydantic); a bad spec is refused with the path of the offending field
("invariants.3.kind: Input should be ...").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from detectors.invariants.model import Invariant

SpanKind = Literal["SERVER", "CLIENT", "INTERNAL", "PRODUCER", "CONSUMER"]
LawKind = Literal[
    "attribute_present",
    "attribute_type",
    "attribute_values",
    "attribute_range",
    "resource_attribute",
    "call_edge",
    "required_child",
    "fanout",
    "client_server",
    "never_root",
    "conservation",
    "log_template",
    "log_templates",
    "counter_ratio",
    "littles_law",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class LawSpec(_Strict):
    """One declared invariant (see ``detectors.invariants.model.Invariant``)."""

    kind: LawKind
    service: str
    operation: str | None = None
    span_kind: SpanKind | None = None
    subject: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    support: int = Field(default=0, ge=0)
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)


class CallGraphEntry(_Strict):
    """The operations ``caller`` (``service:operation``) calls; anything else is a new edge."""

    caller: str = Field(pattern=r"^[^:]+:.+$")
    span_kind: SpanKind = "SERVER"
    calls: list[str] = Field(default_factory=list)
    support: int = Field(default=0, ge=0)


class SloSpec(_Strict):
    """Objectives of one entry operation over the checked window."""

    service: str
    operation: str
    error_ratio_max: float | None = Field(default=None, ge=0.0, le=1.0)
    latency_p99_ms_max: float | None = Field(default=None, gt=0.0)


class LayerSpec(_Strict):
    name: str
    services: list[str] = Field(min_length=1)


class ForbiddenEdge(_Strict):
    """No span of layer ``from_layer`` may call an operation of layer ``to_layer`` (matching ``operations`` globs)."""

    name: str
    from_layer: str = Field(alias="from")
    to_layer: str = Field(alias="to")
    operations: list[str] = Field(default_factory=lambda: ["*"])


class RequiredPath(_Strict):
    """Operations of layer ``to_layer`` matching ``operations`` are only called from the ``via`` layers."""

    name: str
    to_layer: str = Field(alias="to")
    operations: list[str] = Field(default_factory=lambda: ["*"])
    via: list[str] = Field(min_length=1)


class Requirement(_Strict):
    """Spans of ``layer`` matching ``operations`` (and ``span_kind``) carry ``attribute`` or call ``child``."""

    name: str
    layer: str
    operations: list[str] = Field(default_factory=lambda: ["*"])
    span_kind: SpanKind = "SERVER"
    attribute: str | None = None
    child: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Requirement:
        if (self.attribute is None) == (self.child is None):
            raise ValueError("give exactly one of attribute or child")
        return self


class Boundaries(_Strict):
    layers: list[LayerSpec] = Field(default_factory=list)
    forbidden_edges: list[ForbiddenEdge] = Field(default_factory=list)
    required_paths: list[RequiredPath] = Field(default_factory=list)
    requirements: list[Requirement] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_layers(self) -> Boundaries:
        names = {layer.name for layer in self.layers}
        used = [(f"forbidden_edges.{r.name}", r.from_layer) for r in self.forbidden_edges]
        used += [(f"forbidden_edges.{r.name}", r.to_layer) for r in self.forbidden_edges]
        used += [(f"required_paths.{r.name}", r.to_layer) for r in self.required_paths]
        used += [(f"required_paths.{r.name}", v) for r in self.required_paths for v in r.via]
        used += [(f"requirements.{r.name}", r.layer) for r in self.requirements]
        for where, layer in used:
            if layer not in names:
                raise ValueError(f"{where}: unknown layer {layer!r} (layers: {', '.join(sorted(names)) or 'none'})")
        return self

    def services(self, layer: str) -> list[str]:
        return next(x.services for x in self.layers if x.name == layer)


class Spec(_Strict):
    """A committed spec of a system's behaviour."""

    version: Literal[1] = 1
    description: str = ""
    learned_from: str | None = None
    learned_to: str | None = None
    boundaries: Boundaries = Field(default_factory=Boundaries)
    slos: list[SloSpec] = Field(default_factory=list)
    call_graph: list[CallGraphEntry] = Field(default_factory=list)
    invariants: list[LawSpec] = Field(default_factory=list)

    def to_invariants(self) -> list[Invariant]:
        """The declared laws (invariants and the call graph) as ``Invariant`` values, source 'spec'."""
        out = [
            Invariant(
                kind=law.kind, service=law.service, operation=law.operation, span_kind=law.span_kind,
                subject=law.subject, params=dict(law.params), support=law.support, confidence=law.confidence,
                source="spec",
            )
            for law in self.invariants
        ]  # fmt: skip
        for entry in self.call_graph:
            service, _, operation = entry.caller.partition(":")
            out.append(
                Invariant(
                    "callees", service, operation, entry.span_kind, params={"callees": sorted(entry.calls)},
                    support=entry.support, source="spec",
                )
            )  # fmt: skip
        return out

    @classmethod
    def from_invariants(cls, invariants: list[Invariant], **fields: Any) -> Spec:
        """A spec declaring ``invariants`` (callees become the call graph)."""
        graph = [
            CallGraphEntry(
                caller=i.entity, span_kind=i.span_kind or "SERVER", calls=list(i.params.get("callees", [])),
                support=i.support,
            )
            for i in invariants
            if i.kind == "callees"
        ]  # fmt: skip
        laws = [
            LawSpec(
                kind=i.kind, service=str(i.service), operation=i.operation, span_kind=i.span_kind,  # type: ignore[arg-type]
                subject=i.subject, params=i.params, support=i.support, confidence=round(i.confidence, 6),
            )
            for i in invariants
            if i.kind != "callees"
        ]  # fmt: skip
        return cls(call_graph=graph, invariants=laws, **fields)


def dump_spec(spec: Spec) -> str:
    """The spec as YAML (block style, keys in declaration order, unicode kept)."""
    data = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)


def parse_spec(text: str, source: str = "spec") -> Spec:
    """Validate YAML text as a spec; ValueError naming the file and field on any problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"{source}: invalid spec: {problems}") from None


def load_spec(path: Path) -> Spec:
    """Read and validate a spec file."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ValueError(f"cannot read spec {path}: {exc.strerror}") from None
    return parse_spec(text, str(path))
