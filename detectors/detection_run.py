"""One detection run as every caller makes it: ``driftscope detect``, the scheduled job, the API.

The window ends at the end of the rolled-up data (data time); every chosen detector runs
over it against the history (``detectors.run.detect``), the invariant checks join
(``detectors.invariants.monitor``; learned laws are persisted when learned and learned again
once a day of data time, not per run), findings that late-switched-on tracing would fake are
withheld (``detectors.tracing_start``), and the findings are written through the one writer
(``store.findings.write_findings``), resolving those quiet for ``resolve_after_s``. The CLI
and the scheduler call :func:`run_detection` with the same configuration, so they cannot
disagree on the same store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from analysis import Window, data_window
from detectors.findings import Finding
from detectors.invariants.model import save_invariants
from detectors.invariants.monitor import DEFAULT_HISTORY_S, current_laws, detect_invariants
from detectors.run import DetectionConfig, detect
from detectors.tracing_start import withhold_tracing_starts
from store.findings import write_findings
from store.timeconv import ns_from_datetime


@dataclass(frozen=True)
class DetectionRun:
    """What one run saw and wrote: its window, the findings, the writer's counts, detector failures."""

    window: Window
    findings: list[Finding]
    counts: dict[str, int]
    """``new``, ``updated`` and ``resolved`` findings."""
    failures: list[str] = field(default_factory=list)
    """One line per detector that failed on a batch (the run went on without it)."""
    withheld: list[str] = field(default_factory=list)
    """One line per finding withheld because tracing switched on late explains it
    (``detectors.tracing_start``)."""

    def summary(self) -> dict[str, object]:
        """A JSON-ready summary (the job's detail)."""
        return {
            **self.counts,
            "findings": len(self.findings),
            "detector_failures": self.failures,
            "withheld": self.withheld,
        }


def run_detection(
    con: duckdb.DuckDBPyConnection,
    *,
    window_s: float,
    history_s: float,
    resolve_after_s: float,
    spec: str = "",
    detectors: tuple[str, ...] = (),
    end_ns: int | None = None,
) -> DetectionRun | None:
    """Detect over the ``window_s`` seconds ending at the newest rolled-up minute (or at ``end_ns``,
    ignoring newer data: a replay as of that time) and write the findings.

    ``history_s``: seconds of history the baselines learn from; ``spec``: an invariant spec
    file checked instead of the learned laws (empty: learned); ``detectors``: names to run
    (empty: all; the invariant checks run only when every detector does). None when
    nothing is rolled up yet.
    """
    try:
        window = data_window(con, hours=window_s / 3600, end_ns=end_ns)
    except ValueError:
        return None
    failures: list[str] = []
    found = detect(con, window, DetectionConfig(history_s=int(history_s), detectors=detectors), failures)
    if not detectors:
        laws = None
        if not spec:
            start_ns = ns_from_datetime(window.start)
            laws, learned = current_laws(con, start_ns)
            if learned:  # persisted: later runs check these laws until they are REFRESH_S old
                save_invariants(con, laws, start_ns - DEFAULT_HISTORY_S * 1_000_000_000, start_ns)
        found += detect_invariants(con, window, Path(spec) if spec else None, laws)
    found, withheld = withhold_tracing_starts(con, window, history_s, found)
    counts = write_findings(con, found, ns_from_datetime(window.end), resolve_after_s)
    return DetectionRun(window, found, counts, failures, withheld)
