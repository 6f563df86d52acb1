"""PlaybookPolicy: a deterministic, offline investigation (no API key needed).

A fixed sequence of checks, each a tool call, each turning its rows into root-cause
candidates with a strength in [0, 1]:

1. ``deploys``: a version change in the window (boosts that service's candidates; a deploy
   without a measured symptom is context in the open questions, never a root cause);
2. ``compare_windows``: self time up (the operation where the time is *spent*, not its
   callers, which only wait), own errors up (where failures *start*), and the share of
   root spans up (trace context lost);
3. ``dependencies``: call edges that appeared or disappeared (blamed on the caller);
4. ``log_templates_diff``: templates new in the incident window;
5. ``attribute_contract``: attribute keys that vanished or changed type;
6. ``findings``: the detectors' performance findings of the window (they judged a longer
   history: a slow drift is small within one incident window); on an operation a check named
   they add their strength to the check's mechanism;
7. ``saturation``: queue depth up with the rate (capacity, not code); when most spans of
   the window have no baseline (tracing started in it), the gauges that have history.

A symptom on a caller (slower, failing, retrying) that a symptom on an operation below it
explains is weakened, whichever check or detector saw each (retries and back-off are spent in
the caller, caused below it: a retry storm is the failing callee's).

Nothing is claimed about an operation, a caller or a service without a baseline
(``BASELINE_MIN``): there is nothing to change from, and the report says what it cannot
know. With no candidate the report names no root cause: it abstains. Candidates are
ranked by strength; every reason carries the claim (tool call + the number at a path in
its data) that reproduces it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from investigations.environment import Environment
from investigations.propose import propose
from investigations.report import Candidate, Claim, Report, ToolCall
from investigations.tools import ToolResult

SELF_Z_MIN = 6.0
SELF_REL_MIN = 0.15
SELF_MS_MIN = 0.3
ERR_Z_MIN = 4.0
ERR_DELTA_MIN = 0.004
EDGE_MIN = 0.05
"""Calls per caller span an edge needs on its present side to count as appeared / disappeared."""
EDGE_KEEP = 0.25
"""The share of its calls per caller span an edge keeps at most on its other side to count."""
ROOT_DELTA_MIN = 0.1
DEPLOY_BONUS = 0.25
BASELINE_MIN = 5
"""Spans (or log lines) an operation, a caller or a service needs in the baseline before any claim that it
changed: without a baseline there is nothing to change from (tracing that starts in the window is not a new
edge). Small, because a batch job runs a dozen times in two hours; the tests themselves ask for evidence."""
GAUGE_RISE_MIN = 2.0
"""How many times its baseline mean a gauge must reach to point at a resource when spans cannot."""


@dataclass
class _Cand:
    service: str
    operation: str | None
    mechanism: str
    strength: float
    claims: list[Claim] = field(default_factory=list)
    travels: bool = False
    """A symptom that travels up the call graph (waiting, errors passed up, retries): see ``_explain_away``."""
    failing: bool = False
    """Errors that start here (a failing callee explains its callers' symptoms whatever their size)."""


def _claim(result: ToolResult, index: int, key: str, text: str) -> Claim:
    value = result.data["rows"][index][key]
    number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    return Claim(text=text, call=ToolCall(tool=result.tool, args=result.args), path=f"rows.{index}.{key}", value=number)


def _latency_and_errors(res: ToolResult) -> list[_Cand]:
    out: list[_Cand] = []
    rising = [r for r in res.data.get("rows", []) if (r["rate_change_rel"] or 0) > 0.3 and r["n_before"] > 30]
    surge = len(rising) >= max(3, len(res.data.get("rows", [])) // 2)
    for i, r in enumerate(res.data.get("rows", [])):
        if r["n_before"] < BASELINE_MIN:
            continue  # no baseline: nothing to compare (see unjudged)
        name = f"{r['service']} {r['operation']}"
        rel, z, ms = r["self_change_rel"] or 0.0, r["self_z"], r["self_change_ms"]
        if z >= SELF_Z_MIN and rel >= SELF_REL_MIN and ms >= SELF_MS_MIN:
            mech = "capacity saturation (queueing under a traffic surge)" if surge else "latency regression (self time)"
            c = _Cand(r["service"], r["operation"], mech, math.tanh(rel) * min(1.0, z / 10), travels=True)
            c.claims.append(_claim(res, i, "self_ms_after", f"{name}: self time {r['self_ms_before']} -> "
                                   f"{r['self_ms_after']} ms (z {z})"))  # fmt: skip
            out.append(c)
        d_err = (r["own_error_ratio_after"] or 0.0) - (r["own_error_ratio_before"] or 0.0)
        if r["own_error_z"] >= ERR_Z_MIN and d_err >= ERR_DELTA_MIN:
            retry = (r["rate_change_rel"] or 0) > 0.15 and not surge
            mech = "retry storm (errors with amplified call rate)" if retry else "error burst (errors start here)"
            strength = math.tanh(d_err / 0.02) * min(1.0, r["own_error_z"] / 8)
            c = _Cand(r["service"], r["operation"], mech, strength, travels=True, failing=True)
            c.claims.append(_claim(res, i, "own_error_ratio_after", f"{name}: own error ratio "
                                   f"{r['own_error_ratio_before']} -> {r['own_error_ratio_after']}"))  # fmt: skip
            out.append(c)
        d_root = (r["root_ratio_after"] or 0.0) - (r["root_ratio_before"] or 0.0)
        if d_root >= ROOT_DELTA_MIN and (r["root_ratio_before"] or 0.0) < 0.5:
            c = _Cand(r["service"], r["operation"], "broken trace propagation", math.tanh(d_root / 0.2))
            c.claims.append(_claim(res, i, "root_ratio_after", f"{name}: share of root spans "
                                   f"{r['root_ratio_before']} -> {r['root_ratio_after']}"))  # fmt: skip
            out.append(c)
    return out


EXPLAINED = 0.5
"""Strength left to an operation's symptom (self time, own errors, queueing) that an operation it calls,
directly or further down, explains (``_explain_away``): the order of the evidence, not its size, says where
the root is. Past a few sigmas every strength saturates, and a tie would fall to the names."""
HOLD_SHARE = 0.1
"""Symptoms below a caller explain its symptom when the time its callees on the paths to them added per caller
span (each one's added time per call, times its calls per span) is at least this share of the caller's whole
baseline duration: the caller's worker is then held that much longer, which near saturation costs that share
of its capacity, and its queue grows. A callee a few ms slower under a caller that takes seconds explains
nothing (on the development worlds the two regimes are two to four orders apart)."""


def _explain_away(cands: list[_Cand], deps: ToolResult, compared: ToolResult) -> list[_Cand]:
    """Symptoms of callers that a symptom below them explains, weakened (see ``EXPLAINED``).

    Waiting, time-outs, retries and their back-off, and queueing travel up the call graph: a callee that
    starts failing explains its callers' symptoms (retries, back-off, errors passed up), and so does a callee
    that holds the caller's worker materially longer (``HOLD_SHARE``: a saturated callee fills its callers'
    queues too). Of two symptoms on one call path the deeper is then the likelier root, whichever check or
    detector saw each (a slow drift's callers cross a detector's threshold first: they add its growth to
    their own work's noise, which is the smaller share of theirs).
    """
    symptomatic = {(c.service, c.operation) for c in cands if c.travels}
    failing = {(c.service, c.operation) for c in cands if c.failing}
    if len(symptomatic) < 2:
        return cands
    rows = {(r["service"], r["operation"]): r for r in compared.data.get("rows", [])}

    def added_ms(key: tuple[str, str | None]) -> float:
        r = rows.get(key, {})
        return float((r.get("mean_ms_after") or 0.0) - (r.get("mean_ms_before") or 0.0))

    callees: dict[tuple[str, str | None], set[tuple[str, str | None]]] = {}
    calls: dict[tuple[tuple[str, str | None], tuple[str, str | None]], float] = {}
    for r in deps.data.get("rows", []):
        caller, callee = (r["caller_service"], r["caller_operation"]), (r["callee_service"], r["callee_operation"])
        callees.setdefault(caller, set()).add(callee)
        calls[caller, callee] = float(r["calls_per_caller_after"] or 0.0)

    def waited_ms(caller: tuple[str, str | None]) -> float:
        """Time added to each ``caller`` span (ms) by its direct callees on a path to a symptom: each one's added
        time per call, times its calls per caller span."""
        return sum(
            max(0.0, added_ms(d)) * max(1.0, calls[caller, d])
            for d in callees.get(caller, ())
            if d != caller and (d in symptomatic or _below(d, callees) & symptomatic)
        )

    for c in cands:
        key = (c.service, c.operation)
        if not c.travels:
            continue
        held = HOLD_SHARE * float(rows.get(key, {}).get("mean_ms_before") or 0.0)
        below = (_below(key, callees) - {key}) & symptomatic
        if below and (below & failing or waited_ms(key) >= held):
            c.strength *= EXPLAINED
            c.mechanism += "; explained by an operation it calls"
    return cands


def _below(
    start: tuple[str, str | None], callees: dict[tuple[str, str | None], set[tuple[str, str | None]]]
) -> set[tuple[str, str | None]]:
    """Every operation ``start`` calls, directly or through others (cycles are walked once)."""
    seen: set[tuple[str, str | None]] = set()
    todo = list(callees.get(start, ()))
    while todo:
        op = todo.pop()
        if op not in seen:
            seen.add(op)
            todo.extend(callees.get(op, ()))
    return seen


def _edges(res: ToolResult) -> list[_Cand]:
    out: list[_Cand] = []
    for i, r in enumerate(res.data.get("rows", [])):
        if min(r["caller_spans_before"], r["caller_spans_after"]) < BASELINE_MIN:
            continue  # a caller seen on one side only: its edges cannot have changed, only its visibility
        before, after = r["calls_per_caller_before"], r["calls_per_caller_after"]
        # the window may open a few minutes before the change: "gone" is a drop of >= 75 %
        gone = before >= EDGE_MIN and after <= EDGE_KEEP * before
        new = after >= EDGE_MIN and before <= EDGE_KEEP * after
        if gone or new:
            verb = "removed" if gone else "added"
            c = _Cand(r["caller_service"], r["caller_operation"], f"call edge {verb} -> {r['callee_service']} "
                      f"{r['callee_operation']}", 0.9 * math.tanh(max(before, after) / 0.1))  # fmt: skip
            key = "calls_per_caller_before" if gone else "calls_per_caller_after"
            c.claims.append(_claim(res, i, key, f"edge {r['caller_service']} {r['caller_operation']} -> "
                                   f"{r['callee_service']} {r['callee_operation']} {verb}: {before} -> {after} "
                                   "calls per caller span"))  # fmt: skip
            out.append(c)
    return out


def _templates(res: ToolResult) -> list[_Cand]:
    out: list[_Cand] = []
    rows = res.data.get("rows", [])
    seen = {r["service"] for r in rows if r["n_before"] > 0 or r.get("service_spans_before", 0) >= BASELINE_MIN}
    for i, r in enumerate(rows):
        if r["service"] not in seen:
            continue  # neither log lines nor its own spans before (telemetry switched on): every template is "new"
        if r["new"] and r["n_after"] >= 5:
            c = _Cand(r["service"], None, f"new {r['severity']} log template", 0.6 * math.tanh(r["n_after"] / 20))
            c.claims.append(_claim(res, i, "n_after", f"{r['service']}: new log template ({r['n_after']} lines)"))
            out.append(c)
    return out


def _contracts(res: ToolResult) -> list[_Cand]:
    out: list[_Cand] = []
    for i, r in enumerate(res.data.get("rows", [])):
        what = "type changed" if r["types_before"] != r["types_after"] and r["share_after"] > 0 else "presence changed"
        c = _Cand(r["service"], r["operation"], f"attribute contract change ({r['key']} {what})", 0.8)
        c.claims.append(_claim(res, i, "share_after", f"{r['service']} {r['operation']}: attribute {r['key']} share "
                               f"{r['share_before']} -> {r['share_after']}, types {r['types_before']} -> "
                               f"{r['types_after']}"))  # fmt: skip
        out.append(c)
    return out


FINDING_STRENGTH = {"critical": 0.45, "warning": 0.35, "info": 0.25}
"""Strength of a detector finding on an operation (a check naming it keeps its mechanism): the detectors judged
a longer history than the playbook's baseline (a slow drift is small within one incident window)."""


def _findings(res: ToolResult, cands: list[_Cand]) -> list[_Cand]:
    """Candidates from the performance findings of the window: request signals on an operation, and a service's
    own duration histograms (a batch job's runs: no span check sees them)."""
    out: list[_Cand] = []
    named: dict[tuple[str, str | None], _Cand] = {}
    for c in cands:
        key = (c.service, c.operation)
        if key not in named or c.strength > named[key].strength:
            named[key] = c
    rows = res.data.get("rows", [])

    def on_request(r: dict[str, Any]) -> bool:
        kind = r["kind"] or ""
        return bool(r["operation"]) and (kind.startswith("latency_") or kind in ("error_ratio", "rate"))

    # a service's histogram moves with its operations: only a service nothing else names is a candidate of its own
    services = {c.service for c in cands} | {r["service"] for r in rows if on_request(r)}
    for i, r in enumerate(rows):
        kind = r["kind"] or ""
        request = on_request(r)
        measured = not r["operation"] and kind.startswith("histogram_") and bool(r["metric"])
        if not (request or (measured and r["service"] not in services)):
            continue
        strength = FINDING_STRENGTH.get(r["severity"], 0.25)
        subject = r["operation"] if request else r["metric"]
        text = f"{r['service']} {subject}: {r['detector']} found {r['effect_text']} since {r['changed']}"
        what = kind if request else f"{kind} of {r['metric']}"
        travels, failing = request and kind != "rate", request and kind == "error_ratio"
        mechanism = f"change found by detection ({r['detector']}: {what})"
        check = named.get((r["service"], r["operation"]))
        if check is not None:  # two lines of evidence on one operation: the check names the mechanism
            mechanism, travels, failing = check.mechanism, travels or check.travels, failing or check.failing
        c = _Cand(r["service"], r["operation"], mechanism, strength, travels=travels, failing=failing)
        c.claims.append(_claim(res, i, "q_value", text))
        out.append(c)
    return out


def _rank(cands: list[_Cand], deployed: dict[str, Claim]) -> list[_Cand]:
    best: dict[tuple[str, str | None], _Cand] = {}
    for c in cands:
        key = (c.service, c.operation)
        if key not in best or c.strength > best[key].strength:
            if key in best:
                c.claims = best[key].claims + c.claims
            best[key] = c
        else:
            best[key].claims += c.claims
    for c in best.values():
        if c.service in deployed:
            c.strength = min(1.0, c.strength + DEPLOY_BONUS)
            c.claims.append(deployed[c.service])
    # A deploy without a measured symptom is context, not a root cause (the report lists it).
    return sorted(best.values(), key=lambda c: (-c.strength, c.service, c.operation or ""))


def unjudged(res: ToolResult) -> list[str]:
    """Operations with spans in the incident window but (almost) none in the baseline: they cannot be judged."""
    return [f"{r['service']} {r['operation']}" for r in res.data.get("rows", [])
            if r["n_before"] < BASELINE_MIN and r["n_after"] >= BASELINE_MIN]  # fmt: skip


def _gauges(res: ToolResult) -> list[_Cand]:
    """Gauges with a baseline that rose GAUGE_RISE_MIN-fold: the resources that do have history."""
    out: list[_Cand] = []
    for i, r in enumerate(res.data.get("rows", [])):
        before, after = r["mean_before"], r["mean_after"]
        if before is None or after is None or after < GAUGE_RISE_MIN * before + 1e-9 or after <= 0:
            continue
        rise = after / before if before > 0 else GAUGE_RISE_MIN * 4
        c = _Cand(r["service"], r["operation"], f"resource saturation ({r['metric']} up)",
                  0.5 * math.tanh(math.log(rise)))  # fmt: skip
        c.claims.append(_claim(res, i, "mean_after", f"{r['service']} {r['operation'] or ''}: {r['metric']} "
                               f"{before} -> {after} (mean)"))  # fmt: skip
        out.append(c)
    return out


class PlaybookPolicy:
    """The fixed sequence of checks above, ranking root-cause candidates by evidence."""

    name = "playbook"

    def __init__(self, top: int = 5) -> None:
        self.top = top

    def run(self, env: Environment) -> Report:
        deploys = env.call("deploys")
        deployed = {
            r["service"]: _claim(
                deploys, i, "in_incident", f"{r['service']} deployed {r['version']} at {r['first_seen']}"
            )
            for i, r in enumerate(deploys.data.get("rows", []))
            if r["in_incident"]
        }
        compared = env.call("compare_windows")
        deps = env.call("dependencies")
        cands = _latency_and_errors(compared)
        cands += _edges(deps)
        cands += _templates(env.call("log_templates_diff"))
        cands += _contracts(env.call("attribute_contract"))
        cands += _findings(env.call("findings"), cands)
        cands = _explain_away(cands, deps, compared)
        saturation = env.call("saturation")
        blind = unjudged(compared)
        judged = sum(1 for r in compared.data.get("rows", []) if r["n_before"] >= BASELINE_MIN)
        if blind and len(blind) >= judged:  # spans without history: turn to the signals that have it
            cands += _gauges(saturation)
        ranked = _rank(cands, deployed)[: self.top]
        claims: list[Claim] = []
        candidates: list[Candidate] = []
        total = sum(c.strength for c in ranked) or 1.0
        for c in ranked:
            idx = list(range(len(claims), len(claims) + len(c.claims)))
            claims += c.claims
            candidates.append(Candidate(service=c.service, operation=c.operation, mechanism=c.mechanism,
                                        confidence=round(c.strength * c.strength / total, 3), claims=idx))  # fmt: skip
        if candidates:
            top = candidates[0]
            summary = (f"Most likely root cause: {top.service} {top.operation or ''} ({top.mechanism}); "
                       f"{len(candidates)} candidate(s) from {len(env.results)} checks.")  # fmt: skip
            actions = [f"Inspect {top.service} {top.operation or ''}: {top.mechanism}."]
            if top.service in deployed:
                actions.append(f"Consider rolling back the {top.service} deploy in the window.")
        else:
            summary = "No root cause named: no check found a change between the baseline and the incident window."
            actions = []
        sat = [r for r in saturation.data.get("rows", []) if (r["mean_after"] or 0) > 2 * (r["mean_before"] or 0) + 1]
        questions = ["Is the traffic surge expected (campaign, batch, retry loop upstream)?"] if sat else []
        if blind:
            shown = ", ".join(blind[:5]) + (f" and {len(blind) - 5} more" if len(blind) > 5 else "")
            questions.append(f"No baseline for {shown}: their spans start in the incident window (tracing started, "
                             "or a new endpoint), so whether they changed cannot be known from traces.")  # fmt: skip
        quiet_deploys = [s for s in deployed if not any(c.service == s for c in candidates)]
        if quiet_deploys:
            questions.append(f"Deploys in the window without a measured symptom: {', '.join(quiet_deploys)}.")
        if not candidates:
            questions.append("Is the alert window right? Widen it or check signals not in spans and logs.")
        patches = propose([(c.service, c.operation, c.mechanism) for c in candidates], set(deployed),
                          compared.data.get("rows", []), saturation.data.get("rows", []),
                          deps.data.get("rows", []))  # fmt: skip
        if candidates and not patches:
            questions.append("No patch proposed: no release to roll back and no catalogue action reverses "
                             f"{candidates[0].mechanism}.")  # fmt: skip
        return Report(summary=summary, candidates=candidates, claims=claims, actions=actions, open_questions=questions,
                      patches=patches)  # fmt: skip
