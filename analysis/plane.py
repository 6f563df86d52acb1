"""The telemetry plane a run reads: the local DuckDB store, or a ClickHouse database.

Two implementations of one small protocol, chosen once from the configuration
(``controller.config.PlaneConfig``), so the jobs never branch on the backend:

- ``rollup(con)`` brings the per-minute span, log and metric rollups up to the newest data (DuckDB:
  in the store; ClickHouse: inside ClickHouse, INSERT ... SELECT, the watermark in the local state store);
- ``prepare(con, span_s, raw_s)`` makes the ``span_s`` seconds ending at the newest rolled-up
  minute readable through ``con`` (DuckDB: they already are; ClickHouse: the rollups of the
  span and the raw spans, logs and metric points of its last ``raw_s`` seconds are copied into the local
  store through Arrow, ``store.plane_mirror``), after which signals, detectors, invariants,
  the gate, reports and the investigation snapshot run unchanged on ``con``.
"""

from __future__ import annotations

from typing import Any, Protocol

import duckdb

from analysis.histogram import GAMMA, LN_GAMMA
from analysis.metric_rollup import merge_exp_points
from analysis.rollup import RollupConfig, rollup_all
from store.clickhouse import ClickHouse, ClickHouseTarget
from store.plane_mirror import mirror_window, mirrored_end_ns
from store.rollups_clickhouse import ClickHouseRollupConfig, rollup_end_ns, rollup_plane


class Plane(Protocol):
    """Where raw telemetry and rollups live, as the jobs see it."""

    name: str

    def rollup(self, con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        """Bring the rollups up to date; return rows written and late rows."""
        ...

    def prepare(self, con: duckdb.DuckDBPyConnection, span_s: float, raw_s: float) -> dict[str, int]:
        """Make the last ``span_s`` seconds (raw rows: the last ``raw_s``) readable through ``con``."""
        ...


class LocalPlane:
    """The embedded default: raw tables and rollups in the DuckDB store itself."""

    name = "duckdb"

    def __init__(self, config: RollupConfig | None = None) -> None:
        self.config = config or RollupConfig()

    def rollup(self, con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        reports = rollup_all(con, self.config)
        return {"rows": sum(r.rows_written for r in reports), "late_rows": sum(r.late_rows for r in reports)}

    def prepare(self, con: duckdb.DuckDBPyConnection, span_s: float, raw_s: float) -> dict[str, int]:
        return {}


class ClickHousePlane:
    """The Collector exporter's tables in ClickHouse; rollups there, a window mirrored locally per run.

    The connection opens lazily and again after a failure, so ClickHouse being down at start or
    mid-job fails that job with the reason (``store.clickhouse.ClickHouseError``) and the next
    tick retries.
    """

    name = "clickhouse"

    def __init__(self, target: ClickHouseTarget, config: RollupConfig | None = None) -> None:
        self.target = target
        cfg = config or RollupConfig()
        self.config = ClickHouseRollupConfig(
            gamma=GAMMA, ln_gamma=LN_GAMMA, lateness_s=cfg.lateness_s, late_horizon_s=cfg.late_horizon_s,
            zero_fill_s=cfg.zero_fill_s, metric_lookback_s=cfg.metric_lookback_s,
        )  # fmt: skip
        self.local_config = cfg
        self._ch: ClickHouse | None = None

    def connection(self) -> ClickHouse:
        """The open connection (opened and its exporter schema checked on first use)."""
        if self._ch is None:
            ch = ClickHouse(self.target)
            try:
                ch.check_exporter_schema()
            except Exception:
                ch.close()
                raise
            self._ch = ch
        return self._ch

    def _reset_on_failure(self) -> None:
        if self._ch is not None:
            self._ch.close()
            self._ch = None

    def rollup(self, con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        """Spans, logs and metric points, inside ClickHouse (exponential histograms merged by
        ``analysis.metric_rollup``, the DuckDB backend's own merge)."""
        try:
            runs = rollup_plane(self.connection(), con, self.config, merge_exp_points)
        except Exception:
            self._reset_on_failure()
            raise
        return {"rows": sum(r.rows_written for r in runs), "late_rows": sum(r.late_rows for r in runs)}

    def prepare(self, con: duckdb.DuckDBPyConnection, span_s: float, raw_s: float) -> dict[str, int]:
        """Mirror incrementally: from the end of the last mirrored window, less the rollup's lateness
        (minutes a rollup run may still have rewritten), to the newest rolled-up minute; the first
        run copies the whole span. Rows mirrored earlier stay (retention trims the raw ones)."""
        try:
            ch = self.connection()
            end = rollup_end_ns(ch)
            if end is None:
                return {}
            start = end - int(span_s * 1e9)
            last = mirrored_end_ns(con)
            if last is not None:
                resume = last - int(self.config.lateness_s * 1e9)
                start = max(start, resume - resume % 60_000_000_000)
            raw_start = max(start, end - int(raw_s * 1e9))
            return mirror_window(ch, con, start, end, raw_start_ns=raw_start)
        except Exception:
            self._reset_on_failure()
            raise

    def close(self) -> None:
        self._reset_on_failure()
