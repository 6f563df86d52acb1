"""Random topologies for generated worlds: services in layers, their operations and calls.

A topology is ``depth`` layers deep (2-6): edge services (HTTP endpoints) at the top,
domain services (RPC) in the middle, and at the bottom the shared dependencies a real
system has: databases, caches, an external provider, a message queue with its consumer
workflow. Every operation below the edge is called by someone (nothing is dead code) and
calls go only downwards (no cycles). Service times, error rates, retries, timeouts,
attributes, logs and export habits are drawn per operation and service; server counts are
set afterwards by ``simulator.worlds`` from the traffic, so that utilisation is known.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

_DOMAINS = (
    "ledger", "booking", "fleet", "claims", "quote", "pricing", "policy", "roster", "parcel", "route",
    "tariff", "invoice", "tenant", "lease", "ticket", "seat", "menu", "kitchen", "courier", "loyalty",
    "voucher", "catalog", "search", "profile", "session", "consent", "audit", "ranking", "media", "notify",
)  # fmt: skip
_EDGE = ("gateway", "web", "bff", "mobile-api", "edge", "portal")
_STORES = ("postgres", "mysql", "mongo", "cockroach")
_CACHES = ("redis", "memcached", "valkey")
_PROVIDERS = ("stripe-api", "maps-provider", "sms-gateway", "kyc-vendor", "tax-service")
_QUEUES = ("kafka", "rabbitmq", "sqs")
_VERBS_HTTP = ("GET", "GET", "GET", "POST", "PUT", "DELETE")
_VERBS_RPC = ("Get", "List", "Create", "Update", "Validate", "Compute", "Resolve", "Check")
_VERBS_DB = ("SELECT", "SELECT", "INSERT", "UPDATE")
_LOG_TEMPLATES = (
    ("handled {id} in {ms} ms", "INFO", "ok"),
    ("processed {n} items for {user}", "INFO", "any"),
    ("request {id} failed after {ms} ms", "ERROR", "error"),
    ("retrying {id}: upstream unavailable", "WARN", "error"),
    ("cache refresh for {n} keys", "DEBUG", "any"),
)


@dataclass
class DraftOp:
    """One operation while the world is being drawn (plain data, becomes a scenario table)."""

    service: str
    name: str
    kind: str
    layer: int
    method: str = "GET"
    median_ms: float = 1.0
    dist: str = "lognormal"
    sigma: float = 0.4
    shape: float = 4.0
    tail_prob: float = 0.0
    error_rate: float = 0.0
    calls: list[dict[str, object]] = field(default_factory=list)
    logs: list[dict[str, object]] = field(default_factory=list)
    attributes: dict[str, str | int | bool] = field(default_factory=dict)
    dynamic: dict[str, object] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.service}:{self.name}"


@dataclass
class DraftService:
    name: str
    version: str
    layer: int
    export: dict[str, bool]
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class Topology:
    services: list[DraftService]
    ops: list[DraftOp]
    entry_refs: list[str]
    entry_weights: list[float]

    def op(self, ref: str) -> DraftOp:
        return next(o for o in self.ops if o.ref == ref)


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return str(options[int(rng.integers(len(options)))])


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _op_name(rng: np.random.Generator, kind: str, noun: str) -> tuple[str, str]:
    """(operation name, HTTP method) for an operation of ``kind`` about ``noun``."""
    if kind in ("http", "external"):
        verb = _pick(rng, _VERBS_HTTP) if kind == "http" else "POST"
        path = f"/{noun}s/{{id}}" if verb in ("GET", "PUT", "DELETE") and rng.random() < 0.6 else f"/{noun}s"
        return (f"{verb} /v1{path}" if kind == "external" else f"{verb} {path}"), verb
    if kind == "db":
        return f"{_pick(rng, _VERBS_DB)} {noun}", "GET"
    if kind == "cache":
        return f"{_pick(rng, ('GET', 'GET', 'SET'))} {noun}", "GET"
    if kind == "queue":
        return f"publish {noun}", "POST"
    if kind == "workflow":
        return f"Process{noun.capitalize()}", "POST"
    return f"{_pick(rng, _VERBS_RPC)}{noun.capitalize()}", "GET"


_MEDIAN_MS = {
    "http": (1.0, 12.0),
    "rpc": (0.5, 8.0),
    "db": (0.4, 6.0),
    "cache": (0.1, 0.6),
    "external": (30.0, 300.0),
    "queue": (0.2, 1.0),
    "workflow": (20.0, 400.0),
}


def _draw_op(rng: np.random.Generator, service: str, kind: str, *, layer: int, noun: str, taken: set[str]) -> DraftOp:
    name, method = _op_name(rng, kind, noun)
    while f"{service}:{name}" in taken:
        name = f"{name}-{int(rng.integers(2, 99))}"
    taken.add(f"{service}:{name}")
    low, high = _MEDIAN_MS[kind]
    op = DraftOp(service, name, kind, layer, method=method, median_ms=round(_log_uniform(rng, low, high), 3))
    if rng.random() < 0.25:
        op.dist, op.shape = "gamma", round(float(rng.uniform(2.0, 8.0)), 2)
    op.sigma = round(float(rng.uniform(0.2, 0.8)), 2)
    op.tail_prob = round(float(rng.choice([0.0, 0.0, 0.002, 0.01, 0.02])), 4)
    op.error_rate = round(float(rng.choice([0.0, 0.0, 0.0005, 0.001, 0.003, 0.005])), 4)
    if kind in ("http", "rpc", "workflow"):
        for template, severity, on in _LOG_TEMPLATES:
            if rng.random() < 0.3:
                prob = 1.0 if on == "error" else round(float(rng.uniform(0.01, 0.3)), 3)
                op.logs.append({"template": template, "severity": severity, "on": on, "prob": prob})
        if rng.random() < 0.6:
            op.dynamic[f"{noun}.id"] = "int"
        if rng.random() < 0.3:
            op.dynamic["user.id"] = "user"
        if rng.random() < 0.3:
            op.dynamic[f"{noun}.tier"] = ["free", "pro", "enterprise"]
    return op


def _version(rng: np.random.Generator) -> str:
    return f"{int(rng.integers(1, 9))}.{int(rng.integers(0, 20))}.{int(rng.integers(0, 9))}"


def _export(rng: np.random.Generator) -> dict[str, bool]:
    """Telemetry habits of a service: most export histograms, gauges and logs; some do not."""
    return {
        "histograms": bool(rng.random() < 0.75),
        "gauges": bool(rng.random() < 0.75),
        "logs": bool(rng.random() < 0.85),
    }


def draw_topology(rng: np.random.Generator, *, depth: int, services: int) -> Topology:
    """A random layered topology with ``services`` services (at least depth + 1) and call depth ``depth``."""
    services = max(services, depth + 1)
    nouns = list(rng.permutation(_DOMAINS))
    drafts: list[DraftService] = []
    ops: list[DraftOp] = []
    taken: set[str] = set()
    # the bottom layer: shared dependencies; the top: one or two edge services; the rest in between
    bottom_kinds = ["db", "cache", "external", "queue"]
    n_bottom = min(len(bottom_kinds), max(1, services - depth))
    chosen_bottom = ["db", *list(rng.permutation(bottom_kinds[1:]))[: n_bottom - 1]]
    n_edge = 1 if services - n_bottom < depth + 1 or rng.random() < 0.6 else 2
    middle = services - n_bottom - n_edge
    layers = [0] * n_edge + sorted(int(x) for x in rng.integers(1, max(depth - 1, 1) + 1, max(middle, 0)))
    # every middle layer holds at least one service so the depth is real
    for i, layer in enumerate(range(1, depth)):
        if n_edge + i < len(layers):
            layers[n_edge + i] = layer
    layers = sorted(layers)
    used: set[str] = set()

    def unique(name: str) -> str:
        while name in used:
            name = f"{name}-{int(rng.integers(2, 9))}"
        used.add(name)
        return name

    for layer in layers:
        noun = nouns.pop() if nouns else f"svc{len(drafts)}"
        if layer == 0:
            name = unique(_pick(rng, _EDGE))
            kind = "http"
            n_ops = int(rng.integers(2, 6))
        else:
            name = unique(noun)
            kind = "rpc" if rng.random() < 0.8 else "http"
            n_ops = int(rng.integers(1, 4))
        drafts.append(DraftService(name, _version(rng), layer, _export(rng)))
        for _ in range(n_ops):
            ops.append(_draw_op(rng, name, kind, layer=layer, noun=nouns[-1] if nouns else noun, taken=taken))
            if nouns and rng.random() < 0.5:
                nouns.pop()
    for kind in chosen_bottom:
        pool = {"db": _STORES, "cache": _CACHES, "external": _PROVIDERS, "queue": _QUEUES}[kind]
        name = unique(_pick(rng, pool))
        drafts.append(DraftService(name, "external" if kind == "external" else _version(rng), depth, _export(rng)))
        n_ops = 1 if kind in ("external", "queue") else int(rng.integers(2, 5))
        for _ in range(n_ops):
            noun = _pick(rng, tuple(n for n in _DOMAINS))
            ops.append(_draw_op(rng, name, kind, layer=depth, noun=noun, taken=taken))
        if kind == "queue":  # a consumer workflow behind the queue
            consumer = unique(f"{name}-worker")
            drafts.append(DraftService(consumer, _version(rng), depth, _export(rng)))
            ops.append(_draw_op(rng, consumer, "workflow", layer=depth, noun=_pick(rng, _DOMAINS), taken=taken))
    _wire(rng, ops, depth)
    edge_ops = [o for o in ops if o.layer == 0]
    weights = [round(_log_uniform(rng, 0.3, 5.0), 2) for _ in edge_ops]
    return Topology(drafts, ops, [o.ref for o in edge_ops], weights)


def _call(rng: np.random.Generator, caller: DraftOp, callee: DraftOp) -> dict[str, object]:
    call: dict[str, object] = {"to": callee.ref}
    if rng.random() < 0.3:
        call["prob"] = round(float(rng.uniform(0.3, 0.95)), 2)
    if callee.kind in ("db", "cache") and rng.random() < 0.25:
        call["fanout"] = [1, int(rng.integers(2, 5))]
        call["mode"] = "parallel" if rng.random() < 0.5 else "sequential"
    if callee.kind in ("queue", "workflow"):
        call["mode"] = "async"
    if callee.kind == "external" or rng.random() < 0.15:
        call["retries"] = int(rng.integers(1, 4))
        call["backoff_ms"] = round(float(rng.uniform(5, 100)), 1)
    return call


def _wire(rng: np.random.Generator, ops: list[DraftOp], depth: int) -> None:
    """Calls from each layer to deeper ones; every operation below the edge gets at least one caller."""
    by_layer: dict[int, list[DraftOp]] = {}
    for o in ops:
        by_layer.setdefault(o.layer, []).append(o)
    callers_of: dict[str, int] = {o.ref: 0 for o in ops}
    workflow = [o for o in ops if o.kind == "workflow"]
    queue = [o for o in ops if o.kind == "queue"]
    for q in queue:  # the queue hands its messages to the consumer
        for w in workflow:
            if w.service.startswith(q.service):
                q.calls.append({"to": w.ref, "mode": "async"})
                callers_of[w.ref] += 1
    for layer in range(depth):
        deeper = [o for o in ops if o.layer > layer and o.kind != "workflow"]
        next_layer = [o for o in by_layer.get(layer + 1, []) if o.kind != "workflow"]
        for caller in by_layer.get(layer, []):
            if caller.kind == "workflow":
                continue
            k = int(rng.integers(1, 4))
            targets: list[DraftOp] = []
            if next_layer:
                targets.append(next_layer[int(rng.integers(len(next_layer)))])
            for _ in range(k - 1):
                if deeper:
                    targets.append(deeper[int(rng.integers(len(deeper)))])
            for callee in {t.ref: t for t in targets}.values():
                if callee.service != caller.service:
                    caller.calls.append(_call(rng, caller, callee))
                    callers_of[callee.ref] += 1
    # orphans (below the edge, never called): a caller one layer up or anywhere above
    for o in ops:
        if o.layer > 0 and callers_of[o.ref] == 0 and o.kind != "workflow":
            above = [c for c in ops if c.layer < o.layer and c.kind not in ("workflow", "queue", "db", "cache")]
            above = [c for c in above if c.service != o.service and c.kind != "external"] or above
            caller = above[int(rng.integers(len(above)))]
            caller.calls.append(_call(rng, caller, o))
            callers_of[o.ref] += 1
    for w in workflow:  # the consumer works on a few store operations
        stores = [o for o in ops if o.kind in ("db", "cache")]
        chosen = {stores[int(i)].ref: stores[int(i)] for i in rng.integers(0, len(stores), 2)} if stores else {}
        for callee in chosen.values():
            w.calls.append(_call(rng, w, callee))
