"""A fitted twin as scenario TOML with its evidence: comments above each operation and the arrivals."""

from __future__ import annotations

import re

from simulator.scenario_toml import dump_scenario
from twin.fit import TwinFit

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE.match(k) else '"' + k.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(fit: TwinFit) -> str:
    """The twin as scenario TOML, each fitted value's evidence as comments above its table."""
    text = dump_scenario(fit.scenario)
    head = [
        "# Digital twin fitted by `driftscope twin fit`: every value below was estimated from telemetry;",
        "# the comments give the evidence (sample sizes, fit quality) and the stubs say why they are stubs.",
    ]
    head += [f"# {n}" for n in fit.notes]
    stubs = fit.stubs
    if stubs:
        head.append(f"# {len(stubs)} operation(s) had too little data and are fixed-latency stubs:")
        head += [f"#   {r}: {why}" for r, why in stubs.items()]
    lines = text.splitlines()
    out = [*head, ""]
    headers = {
        "["
        + ".".join(_key(p) for p in ("services", *ref.split(":", 1)[:1], "operations", ref.split(":", 1)[1]))
        + "]": ref
        for ref in fit.ops
    }
    for line in lines:
        ref = headers.get(line)
        if ref is not None:
            out += [f"# {e}" for e in fit.ops[ref].evidence]
        if line == "[arrivals]":
            out += [f"# {e}" for e in fit.arrivals.evidence]
        out.append(line)
    return "\n".join(out) + "\n"
