"""Concurrency (servers) of an operation from its queue: Erlang C against what the window showed.

Each minute gives an arrival rate lambda and a mean holding time (own work plus calls), so an
offered load a = lambda x hold in erlangs. With ``c`` servers, M/M/c predicts a mean queue
length Lq = C(c, a) rho / (1 - rho) (rho = a / c) and, by Little's law, a mean wait Wq = Lq /
lambda. ``fit_servers_from_queue`` picks the ``c`` whose Lq best matches a queue-depth gauge (least squares
on log Lq: a queue spans orders of magnitude);
``fit_servers_from_latency`` (no gauge) picks the ``c`` whose Wq plus a constant holding time best
matches the mean latency per minute (the latency-versus-load curve). When the queue never
formed, every large enough ``c`` fits alike: the answer is the smallest one that fits (a lower
bound), and ``identified`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from simulator.queueing import RHO_STABLE, QueueState, erlang_c, minute_queue

C_MAX = 10_000
EPS_QUEUE = 1e-20
"""Floor of a queue length in the log-space fit (a gauge of exactly 0 is "below anything measurable")."""


@dataclass(frozen=True)
class ServersFit:
    servers: int
    identified: bool
    """False: the queue never formed, so ``servers`` is only the least count consistent with that."""
    peak_utilisation: float
    """Busiest minute's utilisation at the fitted count."""
    method: str


def mean_queue(servers: int, offered: np.ndarray) -> np.ndarray:
    """M/M/c mean number waiting for ``offered`` erlangs (utilisation capped just below 1)."""
    c = float(servers)
    a = np.minimum(offered, c * RHO_STABLE)
    rho = a / c
    result: np.ndarray = erlang_c(np.full(len(a), c), a) * rho / (1 - rho)
    return result


def _candidates(offered: np.ndarray) -> np.ndarray:
    low = max(1, int(np.floor(float(offered.max(initial=0.0)))))
    grid = np.unique(np.concatenate([np.arange(1, 65), np.geomspace(64, C_MAX, 160).astype(int)]))
    return grid[grid >= low]


def _pick(cands: np.ndarray, losses: np.ndarray, scale: float) -> tuple[int, bool]:
    """Smallest candidate whose loss is within tolerance of the best; identified when smaller counts fit worse
    and larger ones are distinguishable."""
    best = float(losses.min())
    tol = best * 0.05 + scale
    ok = np.flatnonzero(losses <= best + tol)
    first = int(ok[0])
    identified = len(ok) < len(cands) - first and losses[-1] > best + tol
    return int(cands[first]), bool(identified)


def queue_path(arrivals_per_min: np.ndarray, hold_ms: np.ndarray, servers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean queue length and mean wait (ms), minute by minute, of the simulator's own queue (``minute_queue``:
    M/M/c below saturation, a fluid backlog carried over minutes above it, shedding beyond its limit).

    ``hold_ms``: per minute (rows) and candidate (columns), or one per minute; ``servers``: one per candidate.
    Returns two (minutes x candidates) arrays. The stationary formulas alone cap a queue at c x 0.97 erlangs:
    a saturated minute's backlog, and the minutes after it that drain it, are what they leave out.
    """
    c = np.asarray(servers, dtype=np.float64)
    hold = np.asarray(hold_ms, dtype=np.float64)
    hold = np.broadcast_to(hold[:, None] if hold.ndim == 1 else hold, (len(arrivals_per_min), len(c)))
    state = QueueState.empty(c)
    depth = np.zeros(hold.shape)
    wait = np.zeros(hold.shape)
    for m, n in enumerate(np.asarray(arrivals_per_min, dtype=np.float64)):
        q = minute_queue(state, np.full(len(c), n), c, hold[m])
        depth[m] = q.queue_depth
        wait[m] = q.p_wait / q.wait_rate_per_ms + q.fluid_wait_ms
    return depth, wait


def lagged_hold(hold_ms: np.ndarray) -> np.ndarray:
    """The holding time a minute's queue sees: the simulator's running mean (half the last minute's realised
    holding time, half the mean before it), so a slow minute lengthens the next one's queue."""
    h = np.asarray(hold_ms, dtype=np.float64)
    out = np.empty_like(h)
    if len(h):
        out[0] = h[0]
        for m in range(1, len(h)):
            out[m] = 0.5 * out[m - 1] + 0.5 * h[m - 1]
    return out


def fit_servers_from_queue(lam_per_ms: np.ndarray, hold_ms: np.ndarray, queue: np.ndarray) -> ServersFit:
    """Servers whose queue path (``queue_path``: Erlang C, and the fluid backlog past saturation) best matches the
    per-minute ``queue`` gauge (least squares on log queue length)."""
    offered = lam_per_ms * hold_ms
    cands = _candidates(np.zeros(1))  # from one: past saturation a count below the offered load fits
    # log space: a queue gauge spans orders of magnitude between quiet and busy minutes
    target = np.log(np.maximum(queue, 0.0) + EPS_QUEUE)[:, None]
    depth, _ = queue_path(lam_per_ms * 60_000.0, lagged_hold(hold_ms), cands)
    losses = np.mean((np.log(depth + EPS_QUEUE) - target) ** 2, axis=0)
    c, identified = _pick(cands, losses, 0.01)
    return ServersFit(
        c, identified, float(offered.max(initial=0.0)) / c, "queue-depth gauge (Erlang C, fluid past saturation)"
    )


def fit_servers_from_latency(lam_per_ms: np.ndarray, latency_ms: np.ndarray) -> ServersFit:
    """Servers whose queue path's wait plus a constant holding time best matches the per-minute mean latency.

    For each count the holding time h (at most the least latency; a grid, then refined) minimises the squared
    residual of latency - W(c, lambda, h) - h, W the mean wait of ``queue_path``; the loss is that residual (a
    queue that explains the latency-versus-load curve leaves a flat remainder).
    """
    top = float(latency_ms.min(initial=np.inf)) if len(latency_ms) else 1.0
    cands = _candidates(np.zeros(1))
    grid = np.geomspace(top * 0.05, top, 48)
    arrivals = lam_per_ms * 60_000.0
    cc, hh = np.meshgrid(cands, grid, indexing="ij")  # candidates x holds
    _, wait = queue_path(arrivals, np.broadcast_to(hh.ravel(), (len(arrivals), hh.size)), cc.ravel())
    resid = np.mean((latency_ms[:, None] - wait - hh.ravel()[None, :]) ** 2, axis=0).reshape(cc.shape)
    arr = resid.min(axis=1)
    c, identified = _pick(cands, arr, 1e-3 * float(np.var(latency_ms)) + 1e-6)
    i = int(np.flatnonzero(cands == c)[0])
    h0 = float(grid[int(np.argmin(resid[i]))])

    def loss(h: float) -> float:
        _, w = queue_path(arrivals, np.full(len(arrivals), h), np.array([c]))
        return float(np.mean((latency_ms - w[:, 0] - h) ** 2))

    best = optimize.minimize_scalar(loss, bounds=(max(h0 / 1.1, top * 0.05), min(h0 * 1.1, top)), method="bounded")
    h = float(best.x)
    return ServersFit(
        c,
        identified,
        float((lam_per_ms * h).max(initial=0.0)) / c,
        "latency vs load (Erlang C + Little, fluid past saturation)",
    )
