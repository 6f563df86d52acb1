"""Stable counter ratios: learned from real counter points in a store, broken when one counter stalls."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from analysis import rollup_all
from detectors.invariants.monitor import check, extract
from detectors.invariants.physics import counter_minutes, learn_physics
from store.connection import Store

NS_MIN = 60_000_000_000
T0 = 1_772_409_600_000_000_000


def _counters(minutes: int, stall_from: int) -> pa.Table:
    """Cumulative orders and payments, one point per minute each; payments stall from ``stall_from``."""
    rng = np.random.default_rng(3)
    orders = rng.poisson(300, minutes).astype(float)
    payments = orders.copy()
    payments[stall_from:] *= 0.5  # half the payments stop being captured
    rows = []
    for name, series in (("orders.placed", orders), ("payments.captured", payments)):
        total = np.cumsum(series)
        for i in range(minutes):
            rows.append({
                "metric_name": name, "service_name": "shop", "time": T0 + (i + 1) * NS_MIN - 1, "start_time": T0,
                "value": float(total[i]), "kind": "sum", "temporality": "cumulative", "is_monotonic": True,
                "attributes": "{}",
            })  # fmt: skip
    table = pa.Table.from_pylist(rows)
    return table.set_column(2, "time", table["time"].cast(pa.timestamp("ns"))).set_column(
        3, "start_time", table["start_time"].cast(pa.timestamp("ns"))
    )


def test_a_stalled_counter_breaks_its_learned_ratio(tmp_path: Path) -> None:
    store = Store(tmp_path / "counters.duckdb")
    store.insert({"metric_points": _counters(180, stall_from=150)})
    con = store.cursor()
    rollup_all(con)
    laws = learn_physics(counter_minutes(con, T0, T0 + 120 * NS_MIN), pl.DataFrame())
    assert [(i.kind, i.entity, i.subject) for i in laws] == [
        ("counter_ratio", "shop:orders.placed", "shop:payments.captured")
    ]
    assert abs(laws[0].params["ratio"] - 1.0) < 1e-9
    assert check(con, laws, T0 + 120 * NS_MIN, T0 + 150 * NS_MIN) == []
    broken = check(con, laws, T0 + 120 * NS_MIN, T0 + 180 * NS_MIN)
    assert len(broken) == 1 and broken[0].detector == "invariant_conservation"
    assert broken[0].change_ns == T0 + 150 * NS_MIN
    assert con.execute(broken[0].evidence["sql"]).fetchall()
    assert any(i.kind == "counter_ratio" for i in extract(con, T0, T0 + 120 * NS_MIN))
    store.close()
