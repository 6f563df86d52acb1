"""The evidence SQL of a finding runs whatever the telemetry names things (quotes, odd unicode)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detectors.base import SeriesBatch, SignalKey
from detectors.run import _reproduce_sql
from store.connection import Store


@pytest.mark.parametrize("name", ["o'reilly-api", "caf\u00e9-\u202eredro", "x'); DROP TABLE spans; --"])
@pytest.mark.parametrize("kind", ["rate", "latency_p99", "gauge"])
def test_evidence_sql_quotes_names_from_telemetry(tmp_path: Path, name: str, kind: str) -> None:
    key = SignalKey(kind, name, f"GET /{name}", "queue.depth" if kind == "gauge" else None)
    batch = SeriesBatch([key], np.arange(3, dtype=np.int64), np.ones((1, 3)), np.ones((1, 3)), 60)
    store = Store(tmp_path / "s.duckdb")
    try:
        rows = store.cursor().execute(_reproduce_sql(key, batch)).fetchall()
        assert rows == []  # it ran, on an empty store, and the spans table is still there
        assert store.cursor().execute("SELECT count(*) FROM spans").fetchone() == (0,)
    finally:
        store.close()
