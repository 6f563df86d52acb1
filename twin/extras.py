"""What a twin's operations look like besides timing: kind, method, attributes and log statements.

The kind comes from the semantic-convention keys of the spans (``http.*``, ``rpc.*``,
``db.system.name``, ``messaging.*``) and from who reports the operation (an operation only its
callers' client spans show is a database, a cache or an external provider). Attributes other
than those conventions are constant (one value in the sample) or drawn (integers, uuids,
``user-N`` ids, or one of a few strings). Log templates are the bodies with their numbers,
hex ids and user ids replaced by placeholders, per operation whose server span wrote them,
with the share of its spans that write each and whether only failures or only successes do.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import orjson
import polars as pl
import pyarrow as pa

CONVENTION = re.compile(r"^(http\.|rpc\.|db\.|messaging\.|server\.address)")
_UUID = re.compile(r"^[0-9a-f]{32}$|^[0-9a-f-]{36}$")
_USER = re.compile(r"^user-\d+$")
_NUM = re.compile(r"\b\d+\b")
_USER_TOKEN = re.compile(r"\buser-\d+\b")
CHOICES_MAX = 12


def _kind(server: list[dict[str, object]], client: list[dict[str, object]], queue_gauge: str | None) -> str:
    if not server:
        first = client[0] if client else {}
        system = first.get("db.system.name")
        if system == "redis":
            return "cache"
        return "db" if system else "external"
    first = server[0]
    if queue_gauge == "temporal.task_queue.backlog":
        return "workflow"
    if "messaging.system" in first:
        return "queue"
    if "http.route" in first or "http.request.method" in first:
        return "http"
    return "rpc"


def _dynamic(values: list[object]) -> str | list[str] | None:
    """The simulator's attribute kind that draws ``values``; None when they are too varied to say."""
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int"
    if all(isinstance(v, str) for v in values):
        texts = [str(v) for v in values]
        if all(_USER.match(t) for t in texts):
            return "user"
        if all(_UUID.match(t) for t in texts):
            return "uuid"
        distinct = sorted(set(texts))
        if len(distinct) <= CHOICES_MAX:
            return distinct
    return None


def infer_attributes(samples: pa.Table, gauges: pl.DataFrame) -> dict[str, dict[str, object]]:
    """Per operation: kind, method, constant ``attributes`` and ``dynamic_attributes``."""
    frame = pl.from_arrow(samples)
    assert isinstance(frame, pl.DataFrame)
    queue_metric = {
        f"{s}:{n}": m
        for s, n, m in gauges.filter(pl.col("metric") != "server.active_requests")
        .select("service", "name", "metric")
        .unique()
        .rows()
    }
    out: dict[str, dict[str, object]] = {}
    grouped: dict[str, tuple[list[dict[str, object]], list[dict[str, object]]]] = defaultdict(lambda: ([], []))
    for service, name, is_client, attrs in frame.rows():
        parsed = orjson.loads(attrs) if attrs else {}
        grouped[f"{service}:{name}"][1 if is_client else 0].append(parsed if isinstance(parsed, dict) else {})
    for ref, (server, client) in grouped.items():
        kind = _kind(server, client, queue_metric.get(ref))
        source = server or client
        method = next((str(a["http.request.method"]) for a in source if "http.request.method" in a), "GET")
        keys = sorted({k for a in server for k in a if not CONVENTION.match(k)})
        const: dict[str, object] = {}
        dynamic: dict[str, object] = {}
        for k in keys:
            values = [a[k] for a in server if k in a]
            if len(values) < len(server):
                continue  # not on every span: an attribute the twin cannot place
            if all(v == values[0] for v in values) and isinstance(values[0], str | int | bool):
                const[k] = values[0]
            elif len(values) >= 5:
                d = _dynamic(values)
                if d is not None:
                    dynamic[k] = d
        out[ref] = {
            "kind": kind,
            "method": method if method != "GET" else None,
            "attributes": const,
            "dynamic_attributes": dynamic,
        }
    return out


def template_of(body: str) -> str:
    """A log body with its user ids, then numbers, replaced by the simulator's placeholders."""
    return _NUM.sub("{n}", _USER_TOKEN.sub("{user}", body))


def log_statements(logs: pa.Table, servers: pl.DataFrame) -> dict[str, list[dict[str, object]]]:
    """Per operation, its log statements (template, severity, prob, on) from the window's traced lines."""
    frame = pl.from_arrow(logs)
    assert isinstance(frame, pl.DataFrame)
    frame = frame.filter(pl.col("name").is_not_null())
    if frame.is_empty():
        return {}
    spans = servers.group_by("ref").agg(pl.len().alias("n"), pl.col("is_error").sum().alias("errors"))
    totals = {r: (int(n), int(e)) for r, n, e in spans.rows()}
    counts: Counter[tuple[str, str, str]] = Counter()
    on: dict[tuple[str, str, str], set[bool]] = defaultdict(set)
    for service, name, severity, body, on_error, _ in frame.rows():
        key = (f"{service}:{name}", template_of(str(body)), str(severity or "INFO"))
        counts[key] += 1
        on[key].add(bool(on_error))
    out: dict[str, list[dict[str, object]]] = {}
    for (ref, template, severity), c in sorted(counts.items()):
        n, errors = totals.get(ref, (0, 0))
        flags = on[(ref, template, severity)]
        when = "error" if flags == {True} else "ok" if flags == {False} else "any"
        base = errors if when == "error" else n - errors if when == "ok" else n
        if base <= 0:
            continue
        out.setdefault(ref, []).append(
            {
                "template": template.replace("{n} ms", "{ms} ms"),
                "severity": severity if severity in ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL") else "INFO",
                "prob": round(min(1.0, c / base), 5),
                "on": when,
            }
        )
    return out
