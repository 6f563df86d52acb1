"""Batches for the detectors: every entity's series of one signal kind on one grid, with its baseline.

``build_batch`` reads the rollups through ``analysis`` and prepares what the detectors see:
operations without a tracer of their own (databases, caches, providers) through their
callers' client spans; request rates at constant traffic; gauges and latencies with the
part demand explains taken out (``analysis.traffic``); explicit zero rates observed; latency
histograms against the history at comparable demand.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import duckdb
import numpy as np
import polars as pl

from analysis import Window, distributions, signals
from analysis.baselines import auto_baseline
from analysis.histogram import LogHistogram
from analysis.series import Distribution
from analysis.traffic import at_constant_traffic, at_seen_traffic, elasticity, gauges_at_seen_demand, traffic_factor
from detectors.base import SeriesBatch, SignalKey
from store import raw as raw_reads
from store.timeconv import ns_from_datetime

SPAN_KINDS = ("rate", "error_ratio", "latency_p50", "latency_p99")
WATCHED_EMPTY = 1e-9
"""``samples`` of a rate point that is an explicit zero (a minute watched and found empty, see
``analysis.rollup``): observed, so detectors see the zero, yet adding nothing to traffic floors."""


def _grid(window: Window) -> np.ndarray:
    start = np.datetime64(window.start, "ns").astype(np.int64)
    end = np.datetime64(window.end, "ns").astype(np.int64)
    step = window.resolution_s * 1_000_000_000
    return np.arange(start, end, step, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class _Raw:
    """One signal kind read from the rollups: every entity's series on one grid (history + window)."""

    keys: list[SignalKey]
    grid: np.ndarray
    values: np.ndarray
    samples: np.ndarray
    window_start: int
    full: Window


def _span_frame(con: duckdb.DuckDBPyConnection, kind: str, full: Window) -> pl.DataFrame:
    """``kind`` from server spans, and from client spans for operations that have none of their own.

    A database, a cache or a third-party provider has no tracer: its callers' client spans are
    all there is of it, and a fault in it is a fault of those spans.
    """
    frame = signals(con, kind, full)  # type: ignore[arg-type]
    client = signals(con, kind, full, span_kind="CLIENT")  # type: ignore[arg-type]
    if client.height == 0:
        return frame
    served = frame.select("service", "operation").unique()
    client_only = client.join(served, on=["service", "operation"], how="anti", nulls_equal=True)
    return pl.concat([frame, client_only], how="vertical_relaxed") if client_only.height else frame


def _read(con: duckdb.DuckDBPyConnection, kind: str, window: Window, history_s: int) -> _Raw | None:
    full = Window(window.start - timedelta(seconds=history_s), window.end, window.resolution_s)
    if kind in SPAN_KINDS or kind.startswith("latency_"):
        frame = _span_frame(con, kind, full)
    else:
        frame = signals(con, kind, full)  # type: ignore[arg-type]
    if frame.height == 0:
        return None
    grid = _grid(full)
    frame = frame.with_columns(
        t=((pl.col("time").dt.epoch("ns") - int(grid[0])) // (window.resolution_s * 1_000_000_000)).cast(pl.Int64)
    ).filter(pl.col("t").is_between(0, len(grid) - 1))
    entity_cols = ["service", "operation", "metric", "attributes"]
    entities = frame.select(entity_cols).unique(maintain_order=False).sort(entity_cols, nulls_last=True)
    entities = entities.with_row_index("e")
    frame = frame.join(entities, on=entity_cols, how="left", nulls_equal=True)
    n, t = entities.height, len(grid)
    values = np.full((n, t), np.nan)
    samples = np.zeros((n, t))
    e_idx = frame["e"].to_numpy().astype(np.int64)
    t_idx = frame["t"].to_numpy()
    values[e_idx, t_idx] = frame["value"].to_numpy()
    samples[e_idx, t_idx] = frame["samples"].fill_null(0).to_numpy()
    keys = [
        SignalKey(kind, r["service"], r["operation"], r["metric"], r["attributes"])
        for r in entities.iter_rows(named=True)
    ]
    window_start = int(np.searchsorted(grid, np.datetime64(window.start, "ns").astype(np.int64)))
    return _Raw(keys, grid, values, samples, window_start, full)


ENTRY_ROOT_SHARE = 0.5
"""Share of an operation's server spans in the history that start a trace for it to be an entry point."""


def entry_points(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> set[tuple[str, str]]:
    """(service, operation) of the server operations whose spans in [start, end) mostly start a trace: where
    demand enters the system (an operation called from inside moves with its callers, and with their faults)."""
    return raw_reads.entry_points(con, ns_from_datetime(start), ns_from_datetime(end), ENTRY_ROOT_SHARE)


SERVED_DURATIONS = frozenset(
    {"http.server.request.duration", "http.server.duration", "rpc.server.duration", "rpc.server.call.duration"}
)
"""Histograms of served requests' durations (OpenTelemetry semantic conventions): their counts are request rates."""


def demand(con: duckdb.DuckDBPyConnection, window: Window, history_s: int) -> np.ndarray | None:
    """Per point of history + window, the traffic factor of the request rates (``analysis.traffic``).

    Read from the entry points' rates when the history shows any: demand arrives there, and a removed
    call edge that empties a third of the operations below it is not the whole system getting quieter
    (pooled over every operation, it made all the others read busier "at constant traffic"). Without
    traces to tell entry points apart, every operation's rate. Without spans in the history (tracing
    switched on in the window), the request counts of the services' served-duration histograms: a gauge
    that follows demand is then still read at the demand the history saw, not against a history that
    never saw the evening's peak.
    """
    raw = _read(con, "rate", window, history_s)
    if raw is not None:
        entries = entry_points(con, raw.full.start, window.start)
        rows = [i for i, k in enumerate(raw.keys) if (k.service, k.operation) in entries]
        res = window.resolution_s
        factor = traffic_factor(raw.values[rows], raw.window_start, min_series=1, resolution_s=res) if rows else None
        if factor is None:
            factor = traffic_factor(raw.values, raw.window_start, resolution_s=res)
        if factor is not None:
            return factor
    return _served_demand(con, window, history_s)


def _served_demand(con: duckdb.DuckDBPyConnection, window: Window, history_s: int) -> np.ndarray | None:
    """The traffic factor of the request counts of served-duration histograms (None without any such series).

    One series is enough: without span history nothing else says what demand did, and a gauge read at a
    demand a fault moved says less, not more (the fault's latencies and errors are not divided by it)."""
    raw = _read(con, "histogram_p50", window, history_s)
    rows = [] if raw is None else [i for i, k in enumerate(raw.keys) if k.metric in SERVED_DURATIONS]
    if raw is None or not rows:
        return None
    rates = raw.samples[rows] / window.resolution_s
    return traffic_factor(rates, raw.window_start, min_series=1, resolution_s=window.resolution_s)


def build_batch(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    window: Window,
    history_s: int,
    traffic: np.ndarray | None = None,
) -> SeriesBatch | None:
    """Every entity's series of ``kind`` over history + window, aligned on one grid.

    Request rates are taken at constant traffic (``analysis.traffic``): divided by the factor
    by which the whole system is busier than in its history (``traffic``, else computed from
    the rates themselves), so that demand (a daily ramp a short history never showed, a
    holiday, a surge) moves no rate while a fault (one operation moving on its own) still
    does. Gauges are divided by ``traffic`` raised to their own elasticity learned from the
    history (in-flight requests follow demand; a memory gauge does not), and where demand
    leaves the range the history saw, a gauge that follows demand has gaps. A minute watched
    and found empty is an explicit zero rate (``analysis.rollup``), observed with
    ``WATCHED_EMPTY`` samples.
    """
    raw = _read(con, kind, window, history_s)
    if raw is None:
        return None
    keys, values, samples, window_start, full = raw.keys, raw.values, raw.samples, raw.window_start, raw.full
    if kind == "rate":
        samples = np.where(np.isfinite(values) & (samples <= 0), WATCHED_EMPTY, samples)
        factor = (
            traffic if traffic is not None else traffic_factor(values, window_start, resolution_s=window.resolution_s)
        )
        if factor is not None and len(factor) == values.shape[1]:
            values = at_constant_traffic(values, factor)
    elif kind == "gauge" and traffic is not None and len(traffic) == values.shape[1]:
        values = gauges_at_seen_demand(values, traffic, window_start)
    elif kind.startswith("latency_") and traffic is not None and len(traffic) == values.shape[1]:
        # Queues lengthen with demand: what the history's demand explains is taken out, and demand beyond it
        # gets the allowance of analysis.traffic.UNSEEN_ELASTICITY.
        values = at_seen_traffic(values, traffic, elasticity(values, traffic, window_start), window_start)
    errors = values * samples if kind == "error_ratio" else None
    current = reference = None
    if kind.startswith("latency_"):
        current, reference = _histograms(con, keys, full, window, traffic)
    return SeriesBatch(
        keys=keys,
        times_ns=raw.grid,
        values=values,
        samples=samples,
        resolution_s=window.resolution_s,
        baseline=auto_baseline(values, resolution_s=window.resolution_s),
        errors=np.nan_to_num(errors) if errors is not None else None,
        current=current,
        reference=reference,
        window_start=window_start,
    )


MATCHED_DEMAND = 1.2
"""History hours whose demand is within this factor of the window's make the latency distributions' reference."""


def _comparable_hours(traffic: np.ndarray | None, full: Window, window: Window) -> set[int] | None:
    """Indices of the history hours whose mean demand is within ``MATCHED_DEMAND`` of the window's (None: all)."""
    if traffic is None:
        return None
    per_hour = 3600 // full.resolution_s
    ws = round((window.start - full.start).total_seconds()) // full.resolution_s
    if len(traffic) <= ws:
        return None
    now = float(np.mean(traffic[ws:]))
    hours = {h: float(np.mean(traffic[h * per_hour : (h + 1) * per_hour])) for h in range(ws // per_hour)}
    return {h for h, f in hours.items() if f > 0 and abs(np.log(now / f)) <= np.log(MATCHED_DEMAND)}


def _histograms(
    con: duckdb.DuckDBPyConnection,
    keys: list[SignalKey],
    full: Window,
    window: Window,
    traffic: np.ndarray | None = None,
) -> tuple[list[LogHistogram], list[LogHistogram]]:
    """Per series, the merged latency histogram of the window and of the history at comparable demand.

    Latency depends on load: the reference is the history's hours whose demand is within
    ``MATCHED_DEMAND`` of the window's (``traffic``), so that a window at the daily peak is
    compared with peaks; with no such hour the reference is empty and nothing is claimed.
    """
    hour = Window(full.start, full.end, 3600)
    comparable = _comparable_hours(traffic, full, window)
    current: dict[tuple[str | None, str | None], list[LogHistogram]] = {}
    reference: dict[tuple[str | None, str | None], list[LogHistogram]] = {}
    served: set[tuple[str | None, str | None]] = set()

    def add(d: Distribution) -> None:
        if d.time >= window.start:
            current.setdefault((d.service, d.operation), []).append(d.histogram)
        elif comparable is None or int((d.time - full.start).total_seconds() // 3600) in comparable:
            reference.setdefault((d.service, d.operation), []).append(d.histogram)

    for d in distributions(con, hour):
        add(d)
        served.add((d.service, d.operation))
    for d in distributions(con, hour, span_kind="CLIENT"):  # operations seen only by their callers
        if (d.service, d.operation) not in served:
            add(d)
    empty = LogHistogram.empty()
    cur = [LogHistogram.merge_all(current.get((k.service, k.operation), [empty])) for k in keys]
    ref = [LogHistogram.merge_all(reference.get((k.service, k.operation), [empty])) for k in keys]
    return cur, ref


def paired(batch: SeriesBatch, partner: SeriesBatch | None) -> SeriesBatch | None:
    """``batch`` restricted to the entities ``partner`` also has, with ``partner`` (restricted alike, row
    for row) as its ``partner``; None without a partner or without a common entity."""
    if partner is None:
        return None
    index = {(k.service, k.operation): i for i, k in enumerate(partner.keys)}
    pairs = [
        (i, index[(k.service, k.operation)]) for i, k in enumerate(batch.keys) if (k.service, k.operation) in index
    ]
    if not pairs:
        return None
    mine = _rows(batch, np.array([p[0] for p in pairs]))
    return replace(mine, partner=_rows(partner, np.array([p[1] for p in pairs])))


def _rows(b: SeriesBatch, idx: np.ndarray) -> SeriesBatch:
    """The series ``idx`` of ``b`` with their baseline and error counts (no histograms)."""
    base = b.baseline
    sub_base = None
    if base is not None:
        sub_base = type(base)(
            base.center[idx], base.spread[idx], base.lower[idx], base.upper[idx], base.support[idx], base.method
        )
    return SeriesBatch(
        keys=[b.keys[i] for i in idx], times_ns=b.times_ns, values=b.values[idx], samples=b.samples[idx],
        resolution_s=b.resolution_s, baseline=sub_base,
        errors=b.errors[idx] if b.errors is not None else None, window_start=b.window_start,
    )  # fmt: skip
