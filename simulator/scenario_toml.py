"""Write a scenario back as TOML text that ``load_scenario`` reads into an equal scenario.

``dump_scenario`` is how generated worlds and the adversary's shrunk regressions become
files a user can read, edit and ``extends``. Only values that differ from the defaults
are written, so a file says what is particular about its world. Tables nest as
``[services.NAME.operations."OP NAME"]``; the scenario's arrays of tables (entrypoints,
faults, ...) are ``[[...]]`` blocks; anything inside them is written inline.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re

from simulator.scenario import Scenario

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")
_TOP_ORDER = ("name", "description", "hours", "history_days", "start")


def _key(k: str) -> str:
    return k if _BARE.match(k) else _string(k)


def _string(s: str) -> str:
    # JSON string escapes are a subset of TOML basic-string escapes; non-ASCII stays literal (UTF-8).
    return json.dumps(s, ensure_ascii=False)


def _value(v: object) -> str:
    """One TOML value, inline."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"TOML cannot hold the non-finite number {v!r}")
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, dt.datetime):
        return v.isoformat()
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }" if v else "{}"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def _is_table_array(v: object) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _table(path: list[str], data: dict[str, object], out: list[str]) -> None:
    """Write ``data`` as table ``path``: its scalars inline, its sub-tables as nested headers."""
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict) or not v or _all_scalar(v)}
    tables = {k: v for k, v in data.items() if k not in scalars}
    if scalars or not tables:
        out.append("")
        out.append("[" + ".".join(_key(p) for p in path) + "]")
        out.extend(f"{_key(k)} = {_value(v)}" for k, v in scalars.items())
    for k, v in tables.items():
        assert isinstance(v, dict)
        _table([*path, k], v, out)


def _all_scalar(d: dict[str, object]) -> bool:
    """A small table of plain values reads better inline (``service_time = { median_ms = 2 }``)."""
    return all(not isinstance(v, dict | list) for v in d.values()) and len(d) <= 6


def dump_scenario(scenario: Scenario) -> str:
    """TOML text for ``scenario`` (defaults left out); ``parse_scenario`` of it gives an equal scenario."""
    data = scenario.model_dump(exclude_defaults=True)
    # the required fields and the ones a reader looks for first
    data.setdefault("hours", scenario.hours)
    data.setdefault("history_days", scenario.history_days)
    out: list[str] = []
    for k in _TOP_ORDER:
        if k in data:
            out.append(f"{k} = {_value(data.pop(k))}")
    for k in [k for k, v in data.items() if not isinstance(v, dict | list)]:
        out.append(f"{_key(k)} = {_value(data.pop(k))}")
    for k in [k for k, v in data.items() if isinstance(v, list) and not _is_table_array(v)]:
        out.append(f"{_key(k)} = {_value(data.pop(k))}")
    for k, v in data.items():
        if isinstance(v, dict):
            _table([k], v, out)
    for k, v in data.items():
        if _is_table_array(v):
            assert isinstance(v, list)
            for item in v:
                out.append("")
                out.append(f"[[{_key(k)}]]")
                out.extend(f"{_key(ik)} = {_value(iv)}" for ik, iv in item.items())
    return "\n".join(out).lstrip("\n") + "\n"
