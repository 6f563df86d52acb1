"""Time conversions, once: integer nanoseconds since the Unix epoch (UTC) <-> datetimes and ISO-8601.

driftscope passes times between stages as ``int`` nanoseconds (``*_ns``). DuckDB hands
``TIMESTAMP`` / ``TIMESTAMP_NS`` values to Python as naive UTC datetimes with microsecond
precision, so a datetime carries at most microseconds: conversions to ns are exact to the
microsecond and never go through a float (a float of ns since 1970 loses the microseconds).
"""

from __future__ import annotations

import datetime as dt

NS_PER_US = 1_000
NS_PER_S = 1_000_000_000
NS_PER_MIN = 60 * NS_PER_S
NS_PER_DAY = 86_400 * NS_PER_S
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def ns_from_datetime(moment: dt.datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime or a naive one read as UTC (exact to the us)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    delta = aware - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * NS_PER_US


def datetime_from_ns(ns: int) -> dt.datetime:
    """The aware UTC datetime of ``ns`` (truncated to the microsecond)."""
    return _EPOCH + dt.timedelta(microseconds=ns // NS_PER_US)


def naive_from_ns(ns: int) -> dt.datetime:
    """The naive UTC datetime of ``ns`` (truncated to the microsecond), as DuckDB TIMESTAMP parameters want."""
    return datetime_from_ns(ns).replace(tzinfo=None)


def iso(moment: dt.datetime, timespec: str = "auto") -> str:
    """ISO-8601 with a ``Z`` of an aware datetime or a naive one read as UTC."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def iso_from_ns(ns: int, timespec: str = "auto") -> str:
    """ISO-8601 UTC (``...Z``) of ``ns``; ``timespec`` as ``datetime.isoformat`` takes it."""
    return iso(datetime_from_ns(ns), timespec)


def ns_from_iso(text: str) -> int:
    """Nanoseconds of an ISO-8601 time (``Z`` or an offset; naive reads as UTC). ValueError when malformed."""
    return ns_from_datetime(dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00")))
