"""Redaction: configured attribute keys never leave the process.

Two layers, because telemetry reaches the model in many shapes: (1) any mapping entry
whose key is a configured attribute key gets its value replaced, recursively, including
inside JSON strings (span and log attributes are JSON); (2) every value those keys carry
in the snapshot window is collected once and replaced wherever it appears in text (a
``run_sql`` that selects ``attributes->>'user.email'`` returns bare values).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson

MASK = "[redacted]"
_VALUES_MAX = 20_000


class Redactor:
    """Replace configured keys' values in structures and known sensitive values in text."""

    def __init__(self, keys: Iterable[str], values: Iterable[str] = ()) -> None:
        self.keys = frozenset(keys)
        known = sorted({v for v in values if len(v) >= 3}, key=len, reverse=True)[:_VALUES_MAX]
        self._pattern = re.compile("|".join(re.escape(v) for v in known)) if known else None

    def value(self, obj: Any) -> Any:
        """``obj`` with configured keys masked at any depth (JSON strings included) and known values masked."""
        if isinstance(obj, dict):
            return {k: (MASK if k in self.keys else self.value(v)) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.value(v) for v in obj]
        if isinstance(obj, str):
            return self.text(self._json_string(obj))
        return obj

    def _json_string(self, text: str) -> str:
        if not self.keys or not text.startswith("{") or not any(k in text for k in self.keys):
            return text
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            return text
        return orjson.dumps(self.value(parsed)).decode()

    def text(self, text: str) -> str:
        """``text`` with every known sensitive value replaced."""
        return self._pattern.sub(MASK, text) if self._pattern else text


def sensitive_values_sql(keys: Iterable[str]) -> str:
    """SQL listing the distinct values the ``keys`` carry in spans and logs of the snapshot window."""
    parts = []
    for key in keys:
        path = "$." + '"' + key.replace('"', "") + '"'
        for table, column in (("spans", "start_time"), ("logs", "time")):
            parts.append(
                f"SELECT DISTINCT json_extract_string(attributes, '{path}') AS v FROM {table} "
                f"WHERE {column} >= $b0 AND {column} < $i1 AND json_extract_string(attributes, '{path}') IS NOT NULL"
            )
    return " UNION ".join(parts) if parts else "SELECT NULL::VARCHAR AS v WHERE false"
