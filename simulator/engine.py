"""The simulation engine: one virtual minute at a time, vectorised over every request.

Each minute: draw root arrivals (Poisson, rate shaped by day, week, noise and faults);
expand every request's call tree through the call sites (calls drawn with their
probability and fan-out, attempts drawn with error and shed probabilities, retries for
failed attempts); queue every attempt at its operation (``simulator.queueing``); compute
durations bottom-up (a server span is wait + own work + its calls; a client span is the
network round trip + the server span, cut at the timeout) and start times top-down
(calls of one parent run in declared order; fan-out sequential or parallel; attempts
one after another with backoff). The result is a ``MinuteData`` of numpy arrays that
``simulator.rows`` turns into telemetry. Failed attempts fail fast (no child calls).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulator.effects import Effects, effects_at
from simulator.patches import Overrides
from simulator.plan import Plan, sample_ms
from simulator.queueing import MinuteQueue, QueueState, minute_queue, sample_waits
from simulator.scenario import Episode

NS_PER_MS = 1_000_000
NS_PER_MIN = 60_000_000_000
RTT_BASE_MS = 0.25
RTT_MEAN_EXTRA_MS = 0.35

KIND_INTERNAL, KIND_SERVER, KIND_CLIENT = 1, 2, 3
CAUSE_NONE, CAUSE_ERROR, CAUSE_SHED, CAUSE_TIMEOUT, CAUSE_UPSTREAM = 0, 1, 2, 3, 4


@dataclass
class Spans:
    """Server and client spans of one minute, one element per span (numpy arrays)."""

    trace: np.ndarray  # int64 index into MinuteData.trace_ids
    span_id: np.ndarray  # uint64, never 0
    parent_id: np.ndarray  # uint64, 0 = root
    remote_parent: np.ndarray  # bool
    op: np.ndarray  # int32 operation index
    kind: np.ndarray  # int8 KIND_*
    start_ns: np.ndarray  # int64
    end_ns: np.ndarray  # int64
    cause: np.ndarray  # int8 CAUSE_* (0 = ok)
    attempt: np.ndarray  # int16, 0 for the first attempt
    caller: np.ndarray  # int32 operation index of the calling server span (client spans), -1 for server spans

    def __len__(self) -> int:
        return len(self.span_id)


@dataclass(frozen=True)
class JobRun:
    job: int
    start_ns: int
    duration_ns: int
    records: int
    trace: int
    span_id: int


@dataclass
class MinuteData:
    """Everything the engine decided for one minute."""

    minute: int
    """Minutes since the scenario start (negative in the history)."""
    start_ns: int
    effects: Effects
    queue: MinuteQueue
    arrivals_per_op: np.ndarray
    spans: Spans
    trace_ids: np.ndarray  # (n, 2) uint64
    jobs: list[JobRun] = field(default_factory=list)


def episode_factor(episodes: list[Episode], minute: float) -> float:
    """Product of the demand factors of the episodes in force at ``minute`` (ramped at both ends)."""
    out = 1.0
    for ep in episodes:
        if not ep.start_min <= minute < ep.end_min:
            continue
        reach = 1.0
        if ep.ramp_min > 0:
            reach = min(1.0, (minute - ep.start_min) / ep.ramp_min, (ep.end_min - minute) / ep.ramp_min)
        out *= 1.0 + (ep.factor - 1.0) * reach
    return out


def _group_exclusive_cumsum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Exclusive running sum of ``values`` restarting at each group (groups contiguous)."""
    if len(values) == 0:
        return values
    cs = np.cumsum(values)
    starts = np.cumsum(counts) - counts
    nonempty = counts > 0
    offsets = np.repeat((cs - values)[starts[nonempty]], counts[nonempty])
    result: np.ndarray = cs - values - offsets
    return result


def _group_arange(counts: np.ndarray) -> np.ndarray:
    total = int(counts.sum())
    starts = np.cumsum(counts) - counts
    result: np.ndarray = np.arange(total) - np.repeat(starts, counts)
    return result


@dataclass
class _Site:
    """Per call-site arrays built during expansion (attempt-level unless named call_*)."""

    lo: int
    hi: int
    call_parent: np.ndarray  # global server index of the caller (-1 for roots)
    attempts_per_call: np.ndarray
    call_of_attempt: np.ndarray
    failed: np.ndarray
    shed: np.ndarray
    attempt_no: np.ndarray
    call_total: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Time each call occupies its caller, attempts and backoff included, ms (bottom-up)."""
    client_start: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Start of each attempt's client span, ms after the minute start (top-down)."""


class _Work:
    """Attempt-level arrays of one minute, filled phase by phase (ms unless named)."""

    def __init__(self, plan: Plan, sites: list[_Site], total: int) -> None:
        self.sites = sites
        self.total = total
        self.op = np.concatenate(
            [np.full(st.hi - st.lo, s.op, dtype=np.int32) for s, st in zip(plan.sites, sites, strict=True)]
        )
        self.failed = np.concatenate([st.failed for st in sites])
        self.shed = np.concatenate([st.shed for st in sites])
        self.arrivals = np.zeros(len(plan.ops))
        self.wait = np.zeros(total)
        self.own = np.zeros(total)
        self.rtt = np.zeros(total)
        self.children = np.zeros(total)
        self.upstream = np.zeros(total, dtype=bool)
        """The attempt failed because a call it made failed (after its retries)."""
        self.d_server = np.zeros(total)
        self.d_client = np.zeros(total)
        self.timed_out = np.zeros(total, dtype=bool)
        self.start = np.zeros(total)


def _backoff_ms(own_ms: float, eff: Effects, site: int) -> float:
    """Back-off before a retry at call site ``site``, ms: the call's own unless a patch changed it."""
    return own_ms if eff.site_backoff_ms is None else float(eff.site_backoff_ms[site])


def _backs_off(st: _Site, eff: Effects, site: int) -> np.ndarray:
    """Attempts followed by a back-off: failed ones, except a last one a fallback answers at once."""
    if eff.site_fallback is None or not eff.site_fallback[site]:
        return st.failed
    last = st.attempt_no == st.attempts_per_call[st.call_of_attempt] - 1
    result: np.ndarray = st.failed & ~last
    return result


class Engine:
    """Stateful minute-by-minute generator for one scenario run (deterministic per seed)."""

    def __init__(self, plan: Plan, start_ns: int, seed: int) -> None:
        self.plan = plan
        self.start_ns = start_ns
        self.rng = np.random.default_rng(seed)
        self.servers = np.array([op.servers for op in plan.ops], dtype=float)
        self.base_mean_ms = np.array([op.mean_ms for op in plan.ops])
        self.hold_ms = np.array([op.hold_ms for op in plan.ops])
        """Measured mean slot holding time per operation (own work + calls), ms, EWMA."""
        self.base_error = np.array([op.error_rate for op in plan.ops])
        self.queue_state = QueueState.empty(self.servers)
        self.prev_shed = np.zeros(len(plan.ops))
        self.noise = 0.0
        sc = plan.scenario
        self.entry_weights = np.array([e.weight for e in sc.entrypoints], dtype=float)
        self.op_service = np.array([plan.services.index(op.service) for op in plan.ops])
        self.patch: Overrides | None = None
        """A remediation applied from its ``at_min`` on (set on a fork of the engine: ``simulator.fork``)."""
        self.arrival_rng: np.random.Generator | None = None
        """Where root arrivals (rate noise, counts) are drawn once a fork has split them off the main
        generator (``simulator.fork``): both futures then see the same demand; before, ``rng``."""

    def rate_per_s(self, minute: int, eff: Effects) -> float:
        """Root arrival rate during ``minute``: diurnal x weekly x episodes x noise x faults."""
        arr = self.plan.scenario.arrivals
        offset_h = arr.utc_offset_h + (1.0 if arr.dst_shift_min is not None and minute >= arr.dst_shift_min else 0.0)
        t_ns = self.start_ns + minute * NS_PER_MIN + int(offset_h * 3.6e12)  # local clock time
        hours = (t_ns / 3.6e12) % 24.0
        weekday = int(t_ns // 86_400_000_000_000 + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
        diurnal = 1.0 + arr.diurnal_amplitude * np.cos(2 * np.pi * (hours + 0.5 / 60 - arr.peak_hour) / 24.0)
        weekly = arr.weekend_factor if weekday >= 5 else 1.0
        episodes = episode_factor(arr.episodes, minute + 0.5)
        # AR(1) log-noise with a 30-minute correlation time.
        phi = np.exp(-1 / 30.0)
        draw = self.arrival_rng or self.rng
        self.noise = phi * self.noise + np.sqrt(1 - phi**2) * arr.noise_sigma * draw.standard_normal()
        return float(arr.rate_per_s * diurnal * weekly * episodes * np.exp(self.noise) * eff.arrival_mult)

    def entry_share(self, minute: int) -> np.ndarray:
        """Share of root arrivals per entrypoint during ``minute`` (endpoints that have not started get none)."""
        live = np.array([e.start_min is None or minute >= e.start_min for e in self.plan.scenario.entrypoints])
        weights = np.where(live, self.entry_weights, 0.0)
        total = weights.sum()
        share: np.ndarray = weights / total if total > 0 else weights
        return share

    def step(self, minute: int) -> MinuteData:
        """Simulate one minute (``minute`` counts from the scenario start)."""
        eff = effects_at(self.plan, minute, self.patch)
        rate = self.rate_per_s(minute, eff)
        n_root = (self.arrival_rng or self.rng).poisson(rate * 60.0 * self.entry_share(minute))
        for e, cap in eff.entry_cap_per_s.items():  # a rate limit refuses the excess at the edge
            n_root[e] = min(int(n_root[e]), int(cap * 60.0))
        w = self._expand(eff, n_root)
        q = self._work(w, eff)
        self._durations(w, eff)
        self._starts(w, eff)
        return self._assemble(minute, eff, q, w)

    def _expand(self, eff: Effects, n_root: np.ndarray) -> _Work:
        """Attempts (server spans) of every call site, in pre-order."""
        rng = self.rng
        p_fail = np.clip(self.base_error + eff.error_add + self.prev_shed, 0.0, 0.999)
        shed_share = np.where(p_fail > 0, np.minimum(self.prev_shed / np.maximum(p_fail, 1e-12), 1.0), 0.0)
        sites: list[_Site] = []
        ok_servers: list[np.ndarray] = []
        total = 0
        for s in self.plan.sites:
            if s.call is None:
                call_parent = np.full(int(n_root[s.entry]), -1, dtype=np.int64)
                retries = 0
            else:
                parents = ok_servers[s.parent]
                present = parents[rng.random(len(parents)) < eff.site_prob[s.index]]
                fan = s.call.fanout
                counts = (
                    np.full(len(present), fan)
                    if isinstance(fan, int)
                    else rng.integers(fan[0], fan[1] + 1, len(present))
                )
                call_parent = np.repeat(present, counts)
                retries = int(eff.site_retries[s.index])
            n_calls = len(call_parent)
            pf = p_fail[s.op]
            failures = rng.geometric(1.0 - pf, n_calls) - 1 if pf > 0 else np.zeros(n_calls, dtype=np.int64)
            attempts = np.minimum(failures, retries) + 1
            attempt_no = _group_arange(attempts)
            call_of_attempt = np.repeat(np.arange(n_calls), attempts)
            failed = attempt_no < failures[call_of_attempt]
            shed = failed & (rng.random(len(failed)) < shed_share[s.op])
            lo, hi = total, total + len(failed)
            total = hi
            sites.append(_Site(lo, hi, call_parent, attempts, call_of_attempt, failed, shed, attempt_no))
            ok_servers.append(np.arange(lo, hi)[~failed])
        return _Work(self.plan, sites, total)

    def _work(self, w: _Work, eff: Effects) -> MinuteQueue:
        """Queue every attempt at its operation; draw waits, own work and network time."""
        rng = self.rng
        plan = self.plan
        w.arrivals = np.bincount(w.op, minlength=len(plan.ops)).astype(float)
        if eff.servers is not None and not np.array_equal(eff.servers, self.servers):
            self.servers = eff.servers.copy()
            self.queue_state.limit = QueueState.empty(self.servers).limit
        q = minute_queue(self.queue_state, w.arrivals, self.servers, self.hold_ms)
        self.prev_shed = q.shed
        w.wait = sample_waits(rng, q, w.op)
        w.own = np.empty(w.total)
        latency_mult = eff.latency_mult
        for i, info in enumerate(plan.ops):
            mask = w.op == i
            n = int(mask.sum())
            if n:
                w.own[mask] = sample_ms(rng, info.service_time, n) * latency_mult[i]
        w.own[w.shed] *= 0.05  # a shed request is refused at the door
        w.wait[w.shed] = 0.0
        w.own[w.failed & ~w.shed] *= 0.5  # a failing request fails part-way through its work
        w.rtt = RTT_BASE_MS + rng.exponential(RTT_MEAN_EXTRA_MS, w.total)
        return q

    def _durations(self, w: _Work, eff: Effects) -> None:
        """Server and client durations bottom-up; failed calls fail their callers (unless a fallback answers)."""
        for s, st in zip(reversed(self.plan.sites), reversed(w.sites), strict=True):
            sl = slice(st.lo, st.hi)
            w.d_server[sl] = w.wait[sl] + w.own[sl] + w.children[sl]
            if s.call is None:
                continue
            dc = w.rtt[sl] + (0.0 if s.call.mode == "async" else w.d_server[sl])
            timeout_ms = s.call.timeout_ms if eff.site_timeout_ms is None else float(eff.site_timeout_ms[s.index])
            over = dc > timeout_ms
            w.timed_out[sl] = over
            w.d_client[sl] = np.where(over, timeout_ms, dc)
            cost = w.d_client[sl] + np.where(
                _backs_off(st, eff, s.index), _backoff_ms(s.call.backoff_ms, eff, s.index), 0.0
            )
            st.call_total = np.bincount(st.call_of_attempt, weights=cost, minlength=len(st.call_parent))
            if s.call.mode == "async":
                continue  # the caller neither waits for nor fails with an async call
            last = np.cumsum(st.attempts_per_call) - 1
            call_failed = (st.failed | w.upstream[sl] | over)[last]
            if eff.site_fallback is None or not eff.site_fallback[s.index]:
                w.upstream[st.call_parent[call_failed]] = True
            if s.call.mode == "sequential":
                np.add.at(w.children, st.call_parent, st.call_total)
            else:
                longest = np.zeros(w.total)
                np.maximum.at(longest, st.call_parent, st.call_total)
                w.children += longest
        held = w.own + w.children
        sums = np.bincount(w.op, weights=held, minlength=len(self.plan.ops))
        seen = w.arrivals > 0
        self.hold_ms[seen] = 0.5 * self.hold_ms[seen] + 0.5 * sums[seen] / w.arrivals[seen]

    def _starts(self, w: _Work, eff: Effects) -> None:
        """Start times top-down: calls in declared order, fan-out and attempts in sequence."""
        cursor = np.zeros(w.total)
        for s, st in zip(self.plan.sites, w.sites, strict=True):
            sl = slice(st.lo, st.hi)
            n_calls = len(st.call_parent)
            if s.call is None:
                w.start[sl] = np.repeat(self.rng.random(n_calls) * 60_000.0, st.attempts_per_call)
            else:
                base = cursor[st.call_parent]
                if n_calls and s.call.mode == "sequential":
                    boundaries = np.flatnonzero(np.diff(st.call_parent)) + 1
                    group_counts = np.diff(np.concatenate([[0], boundaries, [n_calls]]))
                    base = base + _group_exclusive_cumsum(st.call_total, group_counts)
                    np.add.at(cursor, st.call_parent, st.call_total)
                elif n_calls and s.call.mode == "parallel":
                    longest = np.zeros(w.total)
                    np.maximum.at(longest, st.call_parent, st.call_total)
                    touched = np.unique(st.call_parent)
                    cursor[touched] += longest[touched]
                backoff = _backoff_ms(s.call.backoff_ms, eff, s.index)
                cost = w.d_client[sl] + np.where(_backs_off(st, eff, s.index), backoff, 0.0)
                st.client_start = np.repeat(base, st.attempts_per_call) + _group_exclusive_cumsum(
                    cost, st.attempts_per_call
                )
                w.start[sl] = st.client_start + w.rtt[sl] / 2
            cursor[sl] = w.start[sl] + w.wait[sl] + 0.5 * w.own[sl]

    def _assemble(self, minute: int, eff: Effects, q: MinuteQueue, w: _Work) -> MinuteData:
        """Ids, traces, parents and statuses of every server and client span."""
        rng = self.rng
        plan = self.plan
        total = w.total
        minute_start = self.start_ns + minute * NS_PER_MIN
        cause_srv = np.select(
            [w.shed, w.failed, w.upstream], [CAUSE_SHED, CAUSE_ERROR, CAUSE_UPSTREAM], CAUSE_NONE
        ).astype(np.int8)
        server_ids = rng.integers(1, 2**63, total, dtype=np.int64).astype(np.uint64)
        client_ids = rng.integers(1, 2**63, total, dtype=np.int64).astype(np.uint64)
        has_client = np.zeros(total, dtype=bool)
        client_start = np.zeros(total)
        parent_server = np.full(total, -1, dtype=np.int64)
        for s, st in zip(plan.sites, w.sites, strict=True):
            if s.call is not None:
                sl = slice(st.lo, st.hi)
                has_client[sl] = True
                client_start[sl] = st.client_start
                parent_server[sl] = st.call_parent[st.call_of_attempt]

        # Traces: a new one per root request (and per broken propagation), inherited down.
        trace = np.full(total, -1, dtype=np.int64)
        broken = np.zeros(total, dtype=bool)
        for service, fraction in eff.broken_fraction.items():
            svc = plan.services.index(service)
            broken |= (self.op_service[w.op] == svc) & has_client & (rng.random(total) < fraction)
        n_traces = 0
        for s, st in zip(plan.sites, w.sites, strict=True):
            sl = slice(st.lo, st.hi)
            if s.call is None:
                calls = len(st.call_parent)
                trace[sl] = np.repeat(np.arange(n_traces, n_traces + calls), st.attempts_per_call)
                n_traces += calls
            else:
                trace[sl] = trace[parent_server[sl]]
                k = int(broken[sl].sum())
                if k:
                    trace[np.flatnonzero(broken[sl]) + st.lo] = np.arange(n_traces, n_traces + k)
                    n_traces += k

        cli = np.flatnonzero(has_client)
        start_srv = minute_start + (w.start * NS_PER_MS).astype(np.int64)
        dur_srv = np.maximum((w.d_server * NS_PER_MS).astype(np.int64), 1000)
        start_cli = minute_start + (client_start[cli] * NS_PER_MS).astype(np.int64)
        dur_cli = np.maximum((w.d_client[cli] * NS_PER_MS).astype(np.int64), 1000)
        cause_cli = np.where(w.timed_out[cli], CAUSE_TIMEOUT, cause_srv[cli]).astype(np.int8)
        attempt = np.concatenate([st.attempt_no for st in w.sites]).astype(np.int16) if w.sites else np.zeros(0)
        spans = Spans(
            trace=np.concatenate([trace, trace[parent_server[cli]]]),
            span_id=np.concatenate([server_ids, client_ids[cli]]),
            parent_id=np.concatenate(
                [np.where(has_client & ~broken, client_ids, np.uint64(0)), server_ids[parent_server[cli]]]
            ),
            remote_parent=np.concatenate([has_client & ~broken, np.zeros(len(cli), dtype=bool)]),
            op=np.concatenate([w.op, w.op[cli]]),
            kind=np.concatenate([np.full(total, KIND_SERVER, np.int8), np.full(len(cli), KIND_CLIENT, np.int8)]),
            start_ns=np.concatenate([start_srv, start_cli]),
            end_ns=np.concatenate([start_srv + dur_srv, start_cli + dur_cli]),
            cause=np.concatenate([cause_srv, cause_cli]),
            attempt=np.concatenate([attempt, attempt[cli]]),
            caller=np.concatenate([np.full(total, -1, np.int32), w.op[parent_server[cli]].astype(np.int32)]),
        )
        jobs = self._jobs(minute_start, eff, n_traces)
        trace_ids = rng.integers(1, 2**63, (n_traces + len(jobs), 2), dtype=np.int64).astype(np.uint64)
        return MinuteData(minute, minute_start, eff, q, w.arrivals, spans, trace_ids, jobs)

    def _jobs(self, minute_start: int, eff: Effects, first_trace: int) -> list[JobRun]:
        runs: list[JobRun] = []
        for j, job in enumerate(self.plan.scenario.batch_jobs):
            if (minute_start // NS_PER_MIN) % job.every_min != 0:
                continue
            mult = eff.batch_mult.get(job.name, 1.0)
            duration_ms = float(sample_ms(self.rng, job.duration, 1)[0]) * mult
            records = max(1, round(float(sample_ms(self.rng, job.records, 1)[0])))
            offset_ms = float(self.rng.random()) * 1000.0
            runs.append(
                JobRun(
                    job=j,
                    start_ns=minute_start + int(offset_ms * NS_PER_MS),
                    duration_ns=max(int(duration_ms * NS_PER_MS), 1000),
                    records=records,
                    trace=first_trace + len(runs),
                    span_id=int(self.rng.integers(1, 2**63)),
                )
            )
        return runs
