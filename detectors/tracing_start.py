"""Findings that tracing switched on late would fake: withheld, with the reason.

When a service that ran all along (its metrics or logs go back further) starts sending spans
inside the window, the series its spans feed into change composition at that minute: a
database's or a callee's client spans gain a caller that was invisible before, so their rate
jumps, their latency mix and the client/server balance shift, while the system did nothing.
A detector comparing the window with a baseline that never saw those callers cannot tell
this from a fault; it must say less. Findings on such a series whose change begins at or after
the start of the new tracing (less ``LEAD_S`` before it, a change point's uncertainty), or that
have no change point at all, are withheld and the reason is kept for the run's summary.
A new service (no metrics or logs before its spans) is a real change and is not withheld.
"""

from __future__ import annotations

import duckdb

from analysis import Window
from detectors.findings import Finding
from store.raw import tracing_starts
from store.timeconv import ns_from_datetime

LEAD_S = 900
"""Seconds before the first span of a newly traced caller within which a change point counts as
caused by it (a change point's position is uncertain by a few minutes)."""


def withhold_tracing_starts(
    con: duckdb.DuckDBPyConnection, window: Window, history_s: float, findings: list[Finding]
) -> tuple[list[Finding], list[str]]:
    """``findings`` without those a late tracing start explains, and one line per withheld finding."""
    start_ns = ns_from_datetime(window.start)
    joined = tracing_starts(con, start_ns - int(history_s * 1e9), start_ns, ns_from_datetime(window.end))
    if not joined:
        return findings, []
    first_by_series: dict[tuple[str, str], tuple[int, str]] = {}
    for service, operation, caller, first_ns in joined:
        key = (service, operation)
        first_by_series[key] = min(first_by_series.get(key, (first_ns, caller)), (first_ns, caller))
    kept: list[Finding] = []
    withheld: list[str] = []
    for f in findings:
        hit = first_by_series.get((f.signal.service or "", f.signal.operation or ""))
        if hit is None or (f.change_ns is not None and f.change_ns < hit[0] - LEAD_S * 1_000_000_000):
            kept.append(f)
            continue
        withheld.append(f"{f.detector}: {f.signal.label()}: tracing of caller {hit[1]} starts in the window")
    return kept, withheld
