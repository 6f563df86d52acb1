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

from simulator.queueing import RHO_STABLE, erlang_c

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


def fit_servers_from_queue(lam_per_ms: np.ndarray, hold_ms: np.ndarray, queue: np.ndarray) -> ServersFit:
    """Servers whose M/M/c queue length best matches the per-minute ``queue`` gauge (least squares)."""
    offered = lam_per_ms * hold_ms
    cands = _candidates(offered)
    # log space: a queue gauge spans orders of magnitude between quiet and busy minutes
    target = np.log(np.maximum(queue, 0.0) + EPS_QUEUE)
    losses = np.array([float(np.mean((np.log(mean_queue(int(c), offered) + EPS_QUEUE) - target) ** 2)) for c in cands])
    c, identified = _pick(cands, losses, 0.01)
    return ServersFit(c, identified, float(offered.max(initial=0.0)) / c, "queue-depth gauge (Erlang C)")


def fit_servers_from_latency(lam_per_ms: np.ndarray, latency_ms: np.ndarray) -> ServersFit:
    """Servers whose M/M/c wait plus a constant holding time best matches the per-minute mean latency.

    For each count the holding time h (at most the least latency) minimises the squared residual of
    latency - Wq(c, lambda, h) - h; the loss is that residual (a queue that explains the latency-versus-load curve
    leaves a flat remainder).
    """
    cands = _candidates(lam_per_ms * float(latency_ms.min(initial=np.inf)) if len(latency_ms) else lam_per_ms)
    losses = []
    holds = []
    top = float(latency_ms.min(initial=np.inf)) if len(latency_ms) else 1.0
    for c in cands:

        def resid(h: float, c: int = int(c)) -> float:
            wait = mean_queue(c, lam_per_ms * h) / np.maximum(lam_per_ms, 1e-12)
            return float(np.mean((latency_ms - wait - h) ** 2))

        best = optimize.minimize_scalar(resid, bounds=(top * 0.05, top), method="bounded")
        losses.append(float(best.fun))
        holds.append(float(best.x))
    arr = np.array(losses)
    c, identified = _pick(cands, arr, 1e-3 * float(np.var(latency_ms)) + 1e-6)
    h = holds[int(np.flatnonzero(cands == c)[0])]
    return ServersFit(
        c, identified, float((lam_per_ms * h).max(initial=0.0)) / c, "latency vs load (Erlang C + Little)"
    )
