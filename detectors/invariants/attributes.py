"""Attribute contracts per operation and resource attributes per service.

One vectorised pass over a window's spans (``json_keys`` unnested, grouped by operation,
key and JSON type) gives each key's count, numeric min/max, distinct count and its most
common values. From a baseline window that yields the laws: key always present, one
JSON type, a one-of value set (at most ``MAX_VALUES`` values, none rare), a numeric range
(measurements only: id-like keys whose values are nearly all distinct get none); and per
service the resource attributes always present. The same pass over the window under test
counts exceptions; value-set and range suspects are confirmed by one targeted count.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import duckdb
import polars as pl

from detectors.invariants.model import Invariant, Violation
from detectors.invariants.sqltext import fetch_rows, json_path, lits, op_sql, sampled_spans_sql, window_sql
from detectors.invariants.stats import ALPHA, MIN_COUNTEREXAMPLES, MIN_SUPPORT, confidence, exception_p_value
from store.connection import fetch_arrow

MAX_VALUES = 10
"""Largest one-of value set proposed."""
OUTCOME_KEY = re.compile(r"status_code|^error\.|^exception\.")
"""Outcome attributes (status codes, error types) follow load and failures: the error-rate
detectors judge them, so they get no value-set or range law (presence and type still apply)."""
ID_LIKE_SHARE = 0.2
"""Keys with more distinct values than this share of observations are ids: no range is proposed."""


def type_sql(path: str) -> str:
    """The JSON type of ``attributes`` at ``path`` (an SQL expression) as string/integer/float/boolean/..."""
    return (
        f"CASE json_type(attributes, {path}) WHEN 'VARCHAR' THEN 'string' WHEN 'BIGINT' THEN 'integer' "
        "WHEN 'UBIGINT' THEN 'integer' WHEN 'DOUBLE' THEN 'float' WHEN 'BOOLEAN' THEN 'boolean' "
        "WHEN 'ARRAY' THEN 'array' WHEN 'OBJECT' THEN 'object' ELSE 'null' END"
    )


_KEY_PATH = """'$."' || key || '"'"""
_PROFILE_SQL = f"""
WITH s AS (
    SELECT service_name, span_name, span_kind, attributes FROM {{sample}}
), k AS (
    SELECT service_name, span_name, span_kind, attributes, unnest(json_keys(attributes)) AS key FROM s
), v AS (
    SELECT service_name, span_name, span_kind, key, {type_sql(_KEY_PATH)} AS type,
           attributes ->> ('$."' || key || '"') AS value FROM k
)
SELECT service_name AS service, span_name AS operation, span_kind, key, type, count(*) AS n,
       min(TRY_CAST(value AS DOUBLE)) AS lo, max(TRY_CAST(value AS DOUBLE)) AS hi,
       approx_count_distinct(value) AS card, approx_top_k(value, {MAX_VALUES + 2}) AS top
FROM v GROUP BY ALL
"""

_OPS_SQL = """
SELECT service_name AS service, span_name AS operation, span_kind, count(*) AS spans, any_value(modulus) AS modulus
FROM {sample} GROUP BY ALL
"""

_RESOURCE_SQL = """
WITH r AS (SELECT service_name, resource_attributes, count(*) AS c FROM spans WHERE {window} GROUP BY ALL),
t AS (SELECT service_name, sum(c) AS spans FROM r GROUP BY ALL),
k AS (SELECT service_name, c, unnest(json_keys(resource_attributes)) AS key FROM r)
SELECT k.service_name AS service, key, sum(c) AS n, any_value(t.spans) AS spans
FROM k JOIN t ON k.service_name IS NOT DISTINCT FROM t.service_name GROUP BY ALL
"""


def operation_counts(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> pl.DataFrame:
    """Sampled spans per (service, operation, span_kind) in [start, end), and the sampling modulus."""
    sample = sampled_spans_sql("service_name, span_name, span_kind", start_ns, end_ns)
    return _frame(con, _OPS_SQL.format(sample=sample))


def attribute_profile(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> pl.DataFrame:
    """Per (service, operation, span_kind, key, type) over sampled spans: count, lo/hi, distinct count, top values."""
    sample = sampled_spans_sql("service_name, span_name, span_kind, attributes", start_ns, end_ns)
    return _frame(con, _PROFILE_SQL.format(sample=sample))


def resource_profile(con: duckdb.DuckDBPyConnection, start_ns: int, end_ns: int) -> pl.DataFrame:
    """Per (service, resource key): spans carrying it, and the service's spans."""
    return _frame(con, _RESOURCE_SQL.format(window=window_sql("start_time", start_ns, end_ns)))


def _frame(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    frame = pl.from_arrow(fetch_arrow(con, sql))
    assert isinstance(frame, pl.DataFrame)
    return frame


def _per_key(profile: pl.DataFrame, ops: pl.DataFrame) -> pl.DataFrame:
    keys = ["service", "operation", "span_kind", "key"]
    per_key = profile.group_by(keys).agg(
        pl.col("n").sum().alias("n_key"), pl.col("type").alias("types"), pl.col("n").alias("type_n")
    )
    return per_key.join(ops, on=["service", "operation", "span_kind"], how="left")


def learn_attributes(profile: pl.DataFrame, ops: pl.DataFrame, resources: pl.DataFrame) -> list[Invariant]:
    """Attribute and resource-attribute laws supported by a baseline profile."""
    out: list[Invariant] = []
    for row in _per_key(profile, ops).filter(pl.col("n_key") >= MIN_SUPPORT).iter_rows(named=True):
        base = {"service": row["service"], "operation": row["operation"], "span_kind": row["span_kind"]}
        if row["n_key"] == row["spans"]:
            out.append(_inv("attribute_present", base, row["key"], {}, int(row["spans"])))
        if len(row["types"]) == 1:
            out.append(_inv("attribute_type", base, row["key"], {"type": row["types"][0]}, int(row["n_key"])))
    single = profile.filter((pl.col("n") >= MIN_SUPPORT) & ~pl.col("type").is_in(["array", "object", "null"]))
    for row in single.iter_rows(named=True):
        base = {"service": row["service"], "operation": row["operation"], "span_kind": row["span_kind"]}
        top = [str(v) for v in (row["top"] or [])]
        n = int(row["n"])
        if OUTCOME_KEY.search(row["key"]):
            continue
        if len(top) <= MAX_VALUES and row["card"] <= MAX_VALUES and n / max(len(top), 1) >= 30:
            out.append(_inv("attribute_values", base, row["key"], {"values": sorted(top)}, n))
        elif row["type"] in ("integer", "float") and row["card"] <= ID_LIKE_SHARE * n and row["lo"] is not None:
            out.append(_inv("attribute_range", base, row["key"], {"min": row["lo"], "max": row["hi"]}, n))
    for row in resources.filter((pl.col("n") == pl.col("spans")) & (pl.col("n") >= MIN_SUPPORT)).iter_rows(named=True):
        out.append(_inv("resource_attribute", {"service": row["service"]}, row["key"], {}, int(row["n"])))
    return out


def _inv(kind: str, base: dict[str, Any], key: str, params: dict[str, Any], support: int) -> Invariant:
    return Invariant(
        kind=kind, subject=key, params=params, support=support, confidence=float(confidence(support)), **base
    )


def exception_filter(inv: Invariant) -> str:
    """SQL predicate on ``spans`` true for a span that breaks ``inv`` (an attribute law)."""
    path = json_path(inv.subject or "")
    if inv.kind in ("attribute_present", "resource_attribute"):
        column = "resource_attributes" if inv.kind == "resource_attribute" else "attributes"
        return f"json_extract({column}, {path}) IS NULL"
    if inv.kind == "attribute_type":
        return f"json_extract(attributes, {path}) IS NOT NULL AND {type_sql(path)} != " + lits(
            [str(inv.params["type"])]
        )
    if inv.kind == "attribute_values":
        return f"json_extract(attributes, {path}) IS NOT NULL AND attributes ->> {path} NOT IN " + lits(
            str(v) for v in inv.params["values"]
        )
    lo, hi = float(inv.params["min"]), float(inv.params["max"])
    return f"TRY_CAST(attributes ->> {path} AS DOUBLE) NOT BETWEEN {lo!r} AND {hi!r}"


def counterexample_sql(inv: Invariant, start_ns: int, end_ns: int, limit: int = 5) -> str:
    """The query that lists up to ``limit`` spans breaking ``inv`` in [start, end)."""
    return (
        "SELECT trace_id, span_id, service_name, span_name, start_time, attributes FROM spans WHERE "
        f"{op_sql(inv.service, inv.operation, inv.span_kind)} AND {window_sql('start_time', start_ns, end_ns)} "
        f"AND {exception_filter(inv)} ORDER BY start_time LIMIT {limit}"
    )


def _suspects(
    invariants: list[Invariant], profile: pl.DataFrame, ops: pl.DataFrame, resources: pl.DataFrame
) -> Iterator[tuple[Invariant, int, int | None]]:
    """(invariant, trials, exceptions or None when a targeted count must decide)."""
    per_key = {
        (r["service"], r["operation"], r["span_kind"], r["key"]): r
        for r in _per_key(profile, ops).iter_rows(named=True)
    }
    rows = {
        (r["service"], r["operation"], r["span_kind"], r["key"], r["type"]): r for r in profile.iter_rows(named=True)
    }
    spans = {(r["service"], r["operation"], r["span_kind"]): int(r["spans"]) for r in ops.iter_rows(named=True)}
    res = {(r["service"], r["key"]): (int(r["n"]), int(r["spans"])) for r in resources.iter_rows(named=True)}
    res_spans = {r["service"]: int(r["spans"]) for r in resources.iter_rows(named=True)}
    for inv in invariants:
        op = (inv.service, inv.operation, inv.span_kind)
        key = (*op, inv.subject)
        if inv.kind == "resource_attribute":
            total = res_spans.get(inv.service, 0)
            yield inv, total, total - res.get((inv.service, inv.subject), (0, 0))[0]
        elif inv.kind == "attribute_present":
            total = spans.get(op, 0)
            yield inv, total, total - int(per_key[key]["n_key"]) if key in per_key else total
        elif key not in per_key:
            continue
        elif inv.kind == "attribute_type":
            r = per_key[key]
            other = sum(n for t, n in zip(r["types"], r["type_n"], strict=True) if t != inv.params.get("type"))
            yield inv, int(r["n_key"]), int(other)
        elif inv.kind == "attribute_values":
            r = per_key[key]
            seen = {str(v) for t in r["types"] for v in (rows[(*key, t)]["top"] or [])}
            if seen - {str(v) for v in inv.params["values"]}:
                yield inv, int(r["n_key"]), None
        elif inv.kind == "attribute_range":
            r = per_key[key]
            lows = [rows[(*key, t)]["lo"] for t in r["types"] if rows[(*key, t)]["lo"] is not None]
            highs = [rows[(*key, t)]["hi"] for t in r["types"] if rows[(*key, t)]["hi"] is not None]
            if lows and (min(lows) < inv.params["min"] or max(highs) > inv.params["max"]):
                yield inv, int(r["n_key"]), None


def check_attributes(
    con: duckdb.DuckDBPyConnection, invariants: list[Invariant], start_ns: int, end_ns: int
) -> list[Violation]:
    """Violations of attribute laws in [start, end), each with counterexample spans and SQL."""
    laws = [
        i
        for i in invariants
        if i.kind
        in ("attribute_present", "attribute_type", "attribute_values", "attribute_range", "resource_attribute")
    ]
    if not laws:
        return []
    profile = attribute_profile(con, start_ns, end_ns)
    ops = operation_counts(con, start_ns, end_ns)
    resources = resource_profile(con, start_ns, end_ns)
    modulus = {(r["service"], r["operation"], r["span_kind"]): int(r["modulus"]) for r in ops.iter_rows(named=True)}
    out: list[Violation] = []
    for inv, trials, known in _suspects(laws, profile, ops, resources):
        exceptions = known
        if exceptions is None:
            row = con.execute(
                f"SELECT count(*) FROM spans WHERE {op_sql(inv.service, inv.operation, inv.span_kind)} AND "
                f"{window_sql('start_time', start_ns, end_ns)} AND {exception_filter(inv)} "
                f"AND hash(span_id) % {modulus.get((inv.service, inv.operation, inv.span_kind), 1)} = 0"
            ).fetchone()
            exceptions = int(row[0]) if row else 0
        floor = 1 if inv.source == "spec" else MIN_COUNTEREXAMPLES
        if exceptions < floor or trials <= 0:
            continue
        p = float(exception_p_value(exceptions, trials, max(inv.support, MIN_SUPPORT))[()])
        if p >= ALPHA and inv.source != "spec":
            continue
        sql = counterexample_sql(inv, start_ns, end_ns)
        examples = fetch_rows(con, sql)
        first = examples[0]["start_time"] if examples else None
        change = int(first) if first is not None else None
        out.append(
            Violation(
                invariant=inv,
                detector="invariant_attribute",
                exceptions=exceptions,
                trials=trials,
                p_value=p,
                change_ns=change,
                text=f"{inv.kind.replace('_', ' ')} {inv.subject}: {exceptions:,d} of {trials:,d} spans break it",
                evidence={
                    "law": inv.params,
                    "trace_ids": [e["trace_id"] for e in examples],
                    "examples": [{"trace_id": e["trace_id"], "attributes": e["attributes"]} for e in examples],
                    "sql": sql,
                },
            )
        )
    return out
