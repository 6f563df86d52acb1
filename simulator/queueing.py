"""Queueing at each operation, one minute at a time: M/M/c below saturation, fluid above.

Each operation is a FIFO queue with ``c`` servers. Within a minute the arrival rate is
taken as constant; below saturation (utilisation rho < 1) the waiting time follows the
stationary M/M/c law (Erlang C): the probability of waiting is C(c, a) and a wait is
exponential with rate c*mu - lambda. At or above saturation the queue is fluid: the
backlog grows by (lambda - c*mu) x 60 s, the wait is backlog / (c*mu), and the arrivals a
full queue cannot hold are shed (rejected with an error), so overload turns into errors,
retries and more load, as it does in real systems. The minute granularity is the
approximation: transients shorter than a minute are smoothed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

RHO_STABLE = 0.97
"""Above this utilisation the stationary formulas are replaced by the fluid model."""


def erlang_c(servers: np.ndarray, offered: np.ndarray) -> np.ndarray:
    """Probability that an arrival waits, C(c, a), for ``a = lambda/mu`` erlangs (a < c)."""
    blocking = stats.poisson.pmf(servers, offered) / np.maximum(stats.poisson.cdf(servers, offered), 1e-300)
    rho = offered / servers
    result: np.ndarray = np.clip(blocking / np.maximum(1 - rho * (1 - blocking), 1e-12), 0.0, 1.0)
    return result


@dataclass
class QueueState:
    """Per-operation backlog (requests) carried from one minute to the next."""

    backlog: np.ndarray
    limit: np.ndarray
    """Largest backlog an operation holds (requests) before it sheds load."""

    @classmethod
    def empty(cls, servers: np.ndarray, depth_per_server: float = 50.0) -> QueueState:
        return cls(np.zeros(len(servers)), servers * depth_per_server)


@dataclass(frozen=True)
class MinuteQueue:
    """The queueing regime of each operation during one minute."""

    p_wait: np.ndarray
    """Probability an arrival waits (stationary part)."""
    wait_rate_per_ms: np.ndarray
    """Rate of the exponential stationary wait, 1/ms."""
    fluid_wait_ms: np.ndarray
    """Deterministic wait behind the fluid backlog, ms."""
    shed: np.ndarray
    """Fraction of arrivals rejected because the queue is full."""
    utilisation: np.ndarray
    queue_depth: np.ndarray
    """Mean number waiting (Lq + backlog), requests."""


def minute_queue(
    state: QueueState, arrivals: np.ndarray, servers: np.ndarray, mean_service_ms: np.ndarray, minute_s: float = 60.0
) -> MinuteQueue:
    """Advance the queues by one minute given arrivals (requests) and mean service times."""
    lam = arrivals / minute_s / 1000.0  # per ms
    mu = 1.0 / np.maximum(mean_service_ms, 1e-9)
    capacity = servers * mu
    rho = lam / capacity
    stable = rho < RHO_STABLE
    offered = np.where(stable, lam / mu, servers * RHO_STABLE)
    p_wait = erlang_c(servers.astype(float), offered)
    wait_rate = np.maximum(capacity - np.minimum(lam, capacity * RHO_STABLE), capacity * (1 - RHO_STABLE))
    lq = p_wait * np.minimum(rho, RHO_STABLE) / (1 - np.minimum(rho, RHO_STABLE))
    growth = (lam - capacity * RHO_STABLE) * minute_s * 1000.0
    backlog = np.clip(state.backlog + growth, 0.0, state.limit)
    overflow = np.maximum(state.backlog + growth - state.limit, 0.0)
    shed = np.where(arrivals > 0, np.clip(overflow / np.maximum(arrivals, 1.0), 0.0, 0.95), 0.0)
    state.backlog = backlog
    return MinuteQueue(
        p_wait=p_wait,
        wait_rate_per_ms=wait_rate,
        fluid_wait_ms=backlog / capacity,
        shed=shed,
        utilisation=rho,
        queue_depth=lq + backlog,
    )


def sample_waits(rng: np.random.Generator, q: MinuteQueue, ops: np.ndarray) -> np.ndarray:
    """Waiting time (ms) of each arrival at operation ``ops[i]``."""
    n = len(ops)
    waits = rng.exponential(1.0, n) / q.wait_rate_per_ms[ops]
    waits *= rng.random(n) < q.p_wait[ops]
    result: np.ndarray = waits + q.fluid_wait_ms[ops] * rng.random(n) * 2.0 * (q.fluid_wait_ms[ops] > 0)
    return result
