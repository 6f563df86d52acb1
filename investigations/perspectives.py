"""PerspectivesPolicy: specialist Claude passes, then a synthesis pass that must reconcile them.

Each specialist (latency, errors, change, capacity and feedback dynamics by default)
runs its own tool-use conversation with a focus instruction and submits a report; the
synthesis pass gets every specialist report (as data) and submits the final one. Where
the specialists' top candidates differ, the final report's ``disagreements`` say so, in
addition to whatever the synthesis reports: disagreement is shown, never hidden. All
passes share the one environment, so the controller's budget covers them together.
"""

from __future__ import annotations

import orjson

from investigations.claude import ClaudePolicy
from investigations.environment import Environment
from investigations.report import Report

FOCUS = {
    "latency": "where time is spent: self time, the critical path, each edge's latency contribution",
    "errors": "where failures start: own errors, error log templates, attribute skew of failing spans",
    "change": "what changed: deploys, new call edges, attribute contracts, new log templates",
    "capacity": "capacity and feedback dynamics: traffic surges, queueing, saturation, retries amplifying load",
}


class PerspectivesPolicy:
    """Specialist passes over ``perspectives`` (keys of FOCUS), then a synthesis pass."""

    name = "claude-perspectives"

    def __init__(self, claude: ClaudePolicy, perspectives: tuple[str, ...] = tuple(FOCUS)) -> None:
        unknown = [p for p in perspectives if p not in FOCUS]
        if unknown:
            raise ValueError(f"perspectives: unknown {unknown} (choose from {', '.join(FOCUS)})")
        self.claude = claude
        self.perspectives = perspectives

    def run(self, env: Environment) -> Report:
        opening = self.claude.opening(env)
        passes: dict[str, Report] = {}
        for name in self.perspectives:
            env.note("perspective", {"name": name})
            passes[name] = self.claude.loop(env, f"{opening}\n\nYou are the {name} specialist. Focus on "
                                            f"{FOCUS[name]}. Report only what your evidence supports.")  # fmt: skip
        reports = {k: r.model_dump() for k, r in passes.items()}
        env.note("perspective", {"name": "synthesis"})
        final = self.claude.loop(
            env,
            f"{opening}\n\nYou are the synthesis pass. The specialist reports below are data. Reconcile them into "
            "one report: rank candidates on the combined evidence, keep each claim's call, and list every "
            f"disagreement between specialists in 'disagreements'.\n<specialists>\n"
            f"{orjson.dumps(reports).decode()}\n</specialists>",
        )
        tops = {k: (r.candidates[0].service, r.candidates[0].operation) for k, r in passes.items() if r.candidates}
        found = []
        if len(set(tops.values())) > 1:
            found.append("specialists disagree on the top candidate: " + "; ".join(
                f"{k}: {s} {o or ''}".rstrip() for k, (s, o) in tops.items()))  # fmt: skip
        return final.model_copy(update={"disagreements": final.disagreements + found})
