"""Read a univariate series from CSV for ``driftscope detect-series``, and write the result.

The input is a header row, then one row per observation. The time column may hold epoch
numbers (seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude or
given), ISO-8601 dates and times from year 1 to 9999 (``2024-05-01``, ``2024-05``,
``2024-05-01T12:00:00Z``, with a space instead of the T, fractional seconds, offsets), or
nothing (a one-column file, or ``time_column="none"``: rows are in time order). Rows may be
unsorted or share a timestamp; empty cells, ``nan``, ``null`` and ``NA`` in the value
column are gaps. Anything else is refused with a ``SeriesInputError`` naming the line and
column, before any detection runs.

The output repeats every input line exactly as it was read (timestamp text byte for byte,
same delimiter) and appends ``score`` and ``alert``.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

MAX_BYTES_DEFAULT = 2 * 1024**3
MIN_ROWS = 3
MISSING = frozenset({"", "nan", "null", "na", "n/a", "none"})
_YEAR_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_EPOCH_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


class SeriesInputError(ValueError):
    """The file cannot be read as a series; the message names the line and column."""


@dataclass(frozen=True)
class SeriesFile:
    header: str
    lines: list[str]
    """Data lines as read (no line ending), in input order."""
    delimiter: str
    newline: str
    times_s: NDArray[np.float64] | None
    """Seconds since 1970 per row (negative before), None when the rows are the time axis."""
    values: NDArray[np.float64]
    time_column: str | None
    value_column: str


def _decode(raw: bytes, source: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SeriesInputError(f"{source}: line {line} is not UTF-8 text (byte {exc.start})") from None


def _pick(header: list[str], wanted: str | None, default: int, what: str, source: str) -> int:
    if wanted is None:
        return default
    names = [h.strip() for h in header]
    if wanted in names:
        return names.index(wanted)
    if wanted.isdigit() and 1 <= int(wanted) <= len(names):
        return int(wanted) - 1
    raise SeriesInputError(f"{source}: no {what} column {wanted!r}; the header has {', '.join(map(repr, names))}")


def _epoch_seconds(cells: Sequence[str], unit: str) -> NDArray[np.float64] | None:
    """Epoch numbers as seconds, or None when a cell is not a number."""
    try:
        numbers = np.array([float(c) for c in cells], dtype=np.float64)
    except ValueError:
        return None
    if not np.isfinite(numbers).all():
        return None
    if unit == "auto":
        largest = float(np.max(np.abs(numbers))) if len(numbers) else 0.0
        unit = "s" if largest < 1e11 else "ms" if largest < 1e14 else "us" if largest < 1e17 else "ns"
    return np.asarray(numbers * _EPOCH_UNITS[unit], dtype=np.float64)


def _calendar_seconds(cell: str) -> float:
    """Seconds since 1970 of an ISO-8601 date or date-time (naive = UTC); ValueError if it is not one."""
    month = _YEAR_MONTH.match(cell)
    stamp = dt.datetime(int(month[1]), int(month[2]), 1) if month else dt.datetime.fromisoformat(cell)
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
    delta = stamp - dt.datetime(1970, 1, 1)
    return delta.days * 86_400.0 + delta.seconds + delta.microseconds * 1e-6


def _times(cells: list[str], first_line: list[int], column: str, unit: str, source: str) -> NDArray[np.float64]:
    for i, cell in enumerate(cells):
        if not cell:
            raise SeriesInputError(f"{source}: line {first_line[i]}: empty timestamp in column {column!r}")
    numeric = _epoch_seconds(cells, unit)
    if numeric is not None:
        return numeric
    out = np.empty(len(cells))
    for i, cell in enumerate(cells):
        try:
            out[i] = _calendar_seconds(cell)
        except ValueError:
            kind = "a number among dates" if _is_number(cell) else "not an ISO-8601 date/time or epoch number"
            raise SeriesInputError(
                f"{source}: line {first_line[i]}: timestamp {cell!r} in column {column!r} is {kind} "
                "(one format per file: epoch s/ms/us/ns, or ISO-8601 such as 2024-05-01T12:00:00Z)"
            ) from None
    return out


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _values(cells: list[str], first_line: list[int], column: str, source: str) -> NDArray[np.float64]:
    out = np.empty(len(cells))
    for i, cell in enumerate(cells):
        if cell.lower() in MISSING:
            out[i] = np.nan
            continue
        try:
            value = float(cell)
        except ValueError:
            raise SeriesInputError(
                f"{source}: line {first_line[i]}: value {cell!r} in column {column!r} is not a number"
            ) from None
        if not math.isfinite(value):
            raise SeriesInputError(f"{source}: line {first_line[i]}: value {cell!r} in column {column!r} is not finite")
        out[i] = value
    return out


def read_series(
    path: Path | None,
    *,
    text: str | None = None,
    time_column: str | None = None,
    value_column: str | None = None,
    time_unit: str = "auto",
    max_bytes: int = MAX_BYTES_DEFAULT,
) -> SeriesFile:
    """Parse a series file (or ``text`` when given, e.g. stdin); SeriesInputError on anything unreadable."""
    source = str(path) if path is not None else "<stdin>"
    if text is None:
        assert path is not None
        size = path.stat().st_size
        if size > max_bytes:
            raise SeriesInputError(
                f"{source}: {size / 2**30:.1f} GiB is over the {max_bytes / 2**30:.1f} GiB a series may have "
                "(detect-series holds one series in memory; raise --max-bytes if this machine can)"
            )
        text = _decode(path.read_bytes(), source)
    newline = "\r\n" if "\r\n" in text[:65536] else "\n"
    numbered = [(i + 1, line.rstrip("\r")) for i, line in enumerate(text.split("\n")) if line.strip()]
    if not numbered:
        raise SeriesInputError(f"{source}: empty file; expected a header row, then one row per observation")
    header_line = numbered[0][1]
    delimiter = max((",", "\t", ";"), key=header_line.count)
    if header_line.count(delimiter) == 0:
        delimiter = ","
    rows = list(csv.reader([line for _, line in numbered], delimiter=delimiter))
    header = rows[0]
    data = rows[1:]
    if len(data) < MIN_ROWS:
        raise SeriesInputError(
            f"{source}: {len(data)} data row{'s' if len(data) != 1 else ''} after the header; a series needs "
            f"at least {MIN_ROWS}"
        )
    single = len(header) == 1
    use_time = not (single or (time_column or "").lower() == "none")
    v_idx = _pick(header, value_column, 0 if single else 1, "value", source)
    t_idx = _pick(header, None if not use_time or time_column is None else time_column, 0, "time", source)
    if use_time and t_idx == v_idx:
        raise SeriesInputError(f"{source}: the time and value columns are the same column ({header[v_idx]!r})")
    width = max(v_idx, t_idx if use_time else 0) + 1
    lines = [line for _, line in numbered[1:]]
    line_numbers = [n for n, _ in numbered[1:]]
    for number, row in zip(line_numbers, data, strict=True):
        if len(row) < width:
            raise SeriesInputError(f"{source}: line {number} has {len(row)} field(s); the header has {len(header)}")
    value_name = header[v_idx].strip()
    values = _values([row[v_idx].strip() for row in data], line_numbers, value_name, source)
    if not np.isfinite(values).any():
        raise SeriesInputError(f"{source}: column {value_name!r} has no numeric value")
    times = None
    time_name = None
    if use_time:
        time_name = header[t_idx].strip()
        times = _times([row[t_idx].strip() for row in data], line_numbers, time_name, time_unit, source)
    return SeriesFile(header_line, lines, delimiter, newline, times, values, time_name, value_name)


def render(series: SeriesFile, score: NDArray[np.float64], alert: NDArray[np.bool_]) -> str:
    """The input lines as read, each followed by its score (6 decimals) and alert (0/1)."""
    d = series.delimiter
    out = [f"{series.header}{d}score{d}alert"]
    out.extend(
        f"{line}{d}{s:.6f}{d}{int(a)}" for line, s, a in zip(series.lines, score.tolist(), alert.tolist(), strict=True)
    )
    return series.newline.join(out) + series.newline
