"""``driftscope import``: load OTLP JSON-lines files (the Collector's file exporter format).

Each line is one OTLP/JSON export request: ``{"resourceSpans": ...}``,
``{"resourceMetrics": ...}`` or ``{"resourceLogs": ...}``, mixed freely. A line that is
not valid JSON or not one of those objects is counted and named (file:line), and the
import goes on; rows are committed in batches so an interrupted import keeps every batch
committed before it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pyarrow as pa

from collector.decode_json import decode_json_doc
from collector.decode_proto import MalformedRequest
from store.connection import Store

_KEYS = {"resourceSpans": "traces", "resourceMetrics": "metrics", "resourceLogs": "logs"}


@dataclass
class ImportSummary:
    """Counts of an import: rows loaded and records rejected per signal, bad lines."""

    loaded: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_KEYS.values(), 0))
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_KEYS.values(), 0))
    bad_lines: int = 0
    errors: list[str] = field(default_factory=list)

    MAX_ERRORS = 20

    def note(self, message: str) -> None:
        if len(self.errors) < self.MAX_ERRORS:
            self.errors.append(message)


def import_files(
    store: Store,
    paths: Iterable[Path],
    *,
    batch_rows: int = 50_000,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Load every line of every file into the store; ``progress`` gets bytes read."""
    summary = ImportSummary()
    pending: dict[str, list[pa.Table]] = {}
    pending_rows = 0
    pending_loaded: dict[str, int] = {}

    def flush() -> None:
        nonlocal pending_rows
        if pending:
            store.insert({name: pa.concat_tables(tables) for name, tables in pending.items()})
        for signal, n in pending_loaded.items():
            summary.loaded[signal] += n
        pending.clear()
        pending_loaded.clear()
        pending_rows = 0

    for path in paths:
        with open(path, "rb") as fh:
            for lineno, line in enumerate(fh, start=1):
                if progress:
                    progress(len(line))
                if not line.strip():
                    continue
                where = f"{path}:{lineno}"
                try:
                    doc = orjson.loads(line)
                    signal = next((s for k, s in _KEYS.items() if isinstance(doc, dict) and k in doc), None)
                    if signal is None:
                        raise MalformedRequest(
                            "not an OTLP/JSON object (no resourceSpans, resourceMetrics or resourceLogs)"
                        )
                    decoded = decode_json_doc(signal, doc)
                except (orjson.JSONDecodeError, MalformedRequest) as exc:
                    summary.bad_lines += 1
                    summary.note(f"{where}: {exc}")
                    continue
                summary.rejected[signal] += decoded.rejected
                if decoded.rejected:
                    summary.note(f"{where}: {decoded.error_message()}")
                for name, table in decoded.tables.items():
                    pending.setdefault(name, []).append(table)
                pending_loaded[signal] = pending_loaded.get(signal, 0) + decoded.accepted
                pending_rows += decoded.rows
                if pending_rows >= batch_rows:
                    flush()
    flush()
    return summary
