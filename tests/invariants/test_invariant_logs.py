"""Log-template laws: a closed set of templates only where the baseline saw the service log."""

from __future__ import annotations

import polars as pl

from detectors.invariants.logs import learn_logs


def _templates(rows: list[tuple[str, str | None, str, int, str]]) -> pl.DataFrame:
    schema = {"service": pl.String, "operation": pl.String, "template": pl.String, "n": pl.Int64,
              "severity": pl.String}  # fmt: skip
    return pl.DataFrame(rows, schema=schema, orient="row")


def test_a_service_seen_only_through_its_callers_gets_no_closed_set_of_templates() -> None:
    # found in the adversary's benign "tracing" worlds (dev seed 20017): a service whose spans and logs are
    # switched on at the incident, known before only by its callers' client spans, had its first lines claimed
    # as new templates against an empty set; a service that emitted spans of its own and never logged keeps it
    spans = {("cart", None): (9_000, 10, 9_000), ("cart", "GET /cart"): (9_000, 10, 9_000),
             ("lease", None): (6_000, 0, 0), ("worker", None): (5_000, 0, 5_000)}  # fmt: skip
    laws = learn_logs(_templates([("cart", "GET /cart", "handled <*> in <*> ms", 4_000, "INFO")]), spans)
    closed = {law.service: law for law in laws if law.kind == "log_templates"}
    assert set(closed) == {"cart", "worker"}
    assert closed["cart"].params["templates"] == ["handled <*> in <*> ms"]
    assert closed["worker"].params["templates"] == []
