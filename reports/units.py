"""Units for display: every effect a reader sees carries its unit.

Detectors write ``effect_text`` in user units for spans (``p99 +38 % (120.0 ms -> 165.6 ms)``,
error ratios in %), but a metric's values come in the unit its points declare (OTLP
``unit``), which the detector does not know; ``effect_with_unit`` rewrites the numbers of
such a text with that unit (seconds shown as ms), or says the metric declares none.
"""

from __future__ import annotations

import re

_ARROW = re.compile(r"(-?\d[\d.]*(?:e[-+]?\d+)?) -> (-?\d[\d.]*(?:e[-+]?\d+)?)")
_TIME_UNITS = {"s": 1e3, "ms": 1.0, "us": 1e-3, "µs": 1e-3, "ns": 1e-6}
_SIMPLE = {"By": "B", "KiBy": "KiB", "MiBy": "MiB", "1": "", "%": "%"}


def metric_scale(unit: str | None) -> tuple[float, str]:
    """(scale, display unit) for a metric's declared OTLP unit: times as ms, bytes as B, ``{x}`` as x."""
    if not unit:
        return 1.0, ""
    if unit in _TIME_UNITS:
        return _TIME_UNITS[unit], "ms"
    if unit in _SIMPLE:
        return 1.0, _SIMPLE[unit]
    return 1.0, unit.strip("{}")


def _value(value: float, scale: float, unit: str) -> str:
    text = f"{value * scale:.4g}"
    return f"{text} {unit}" if unit and unit != "%" else f"{text}{unit}"


def effect_with_unit(
    effect_text: str, kind: str, before: float | None, after: float | None, metric_unit: str | None
) -> str:
    """``effect_text`` with its numbers in the metric's unit (metric kinds only; others already carry theirs)."""
    if not kind.startswith(("gauge", "histogram")):
        return effect_text
    scale, unit = metric_scale(metric_unit)
    if before is None or after is None:
        return effect_text
    arrow = f"{_value(before, scale, unit)} -> {_value(after, scale, unit)}"
    if not metric_unit:
        arrow += ", unit not declared"
    if _ARROW.search(effect_text):
        return _ARROW.sub(arrow.replace("\\", "\\\\"), effect_text, count=1)
    return f"{effect_text} ({arrow})"
