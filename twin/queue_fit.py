"""The queue in front of each operation, per minute: arrivals, holding time, servers, and wait draws.

``queue_minutes`` tabulates an operation's minutes (the holding time is the duration less the
mean wait, which Little's law gives from a queue gauge); ``fit_servers`` reads the servers from
the gauge (``twin.servers``) or, without one, from the latency-versus-load curve refined by the
shape of the self times (``servers_from_shape``); ``waits`` draws M/M/c waits at each span's
minute so the self-time fit can take them out again (``twin.distfit.fit_convolved``).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from simulator.queueing import RHO_STABLE, erlang_c
from twin.distfit import fit_convolved, fit_service_time
from twin.servers import ServersFit, fit_servers_from_latency, fit_servers_from_queue, mean_queue


def queue_minutes(ref: str, rows: pl.DataFrame, gauges: pl.DataFrame, minutes: int) -> pl.DataFrame:
    """Per minute of ``ref``: requests ``n``, arrival rate ``lam`` (1/ms), mean duration ``dur`` (ms), the
    queue gauge ``queue`` (null without one) and the holding time ``hold`` (ms): the duration less the mean
    wait, which Little's law gives from the gauge (Wq = Lq / lambda); without a gauge, the duration."""
    per_min = (
        rows.group_by("minute").agg(pl.len().alias("n"), pl.col("dur_ms").mean().alias("dur"))
        .filter((pl.col("minute") >= 0) & (pl.col("minute") < minutes)).sort("minute")
    )  # fmt: skip
    g = gauges.filter(pl.col("ref") == ref).select("minute", pl.col("value").alias("queue"))
    per_min = per_min.join(g, on="minute", how="left").with_columns((pl.col("n") / 60_000.0).alias("lam"))
    wait = pl.col("queue") / pl.col("lam")
    return per_min.with_columns(
        pl.when(pl.col("queue").is_not_null())
        .then(pl.max_horizontal(pl.col("dur") - wait, pl.col("dur") * 0.05))
        .otherwise(pl.col("dur"))
        .alias("hold")
    )


def fit_servers(per_min: pl.DataFrame) -> ServersFit | None:
    """Servers from the queue gauge, else from the latency-versus-load curve; None under 3 minutes."""
    if per_min.height < 3:
        return None
    gauged = per_min.filter(pl.col("queue").is_not_null())
    if gauged.height >= 3:
        return fit_servers_from_queue(gauged["lam"].to_numpy(), gauged["hold"].to_numpy(), gauged["queue"].to_numpy())
    return fit_servers_from_latency(per_min["lam"].to_numpy(), per_min["dur"].to_numpy())


def waits(per_min: pl.DataFrame, sv: ServersFit, span_minutes: np.ndarray, seed: int = 3) -> np.ndarray:
    """One M/M/c wait draw (ms) per span, at its minute's load under the fitted servers."""
    c = float(sv.servers)
    lam = per_min["lam"].to_numpy().astype(float)
    hold = np.maximum(per_min["hold"].to_numpy().astype(float), 1e-9)
    offered = np.minimum(lam * hold, c * RHO_STABLE)
    p_wait = erlang_c(np.full(len(lam), c), offered)
    rate = np.maximum(c / hold - np.minimum(lam, c / hold * RHO_STABLE), c / hold * (1 - RHO_STABLE))
    index = {int(m): i for i, m in enumerate(per_min["minute"].to_list())}
    at = np.array([index.get(int(m), -1) for m in span_minutes])
    known = at >= 0
    rng = np.random.default_rng(seed)
    out = np.zeros(len(span_minutes))
    k = at[known]
    out[known] = rng.exponential(1.0, len(k)) / rate[k] * (rng.random(len(k)) < p_wait[k])
    return out


def hold_for(per_min: pl.DataFrame, servers: int) -> pl.DataFrame:
    """``per_min`` with ``hold`` solved from the duration: h = dur - Wq(c, lambda, h) (no gauge to read Wq from)."""
    lam = per_min["lam"].to_numpy().astype(float)
    dur = per_min["dur"].to_numpy().astype(float)
    # h + Wq(h) grows with h: bisection (the fixed-point iteration h <- dur - Wq(h) oscillates once rho > 1/2)
    lo, hi = dur * 0.05, dur.copy()
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        over = mid + mean_queue(servers, lam * mid) / np.maximum(lam, 1e-12) > dur
        hi = np.where(over, mid, hi)
        lo = np.where(over, lo, mid)
    return per_min.with_columns(pl.Series("hold", 0.5 * (lo + hi)))


def servers_from_shape(per_min: pl.DataFrame, ok: pl.DataFrame, first: ServersFit) -> ServersFit:
    """Servers from the shape of the self times (no gauge): the count whose M/M/c waits, convolved with a
    lognormal own time, best match the self-time deciles; a count with negligible waits is the lower bound."""
    self_ms = ok["self_ms"].to_numpy()
    minutes = ok["minute"].to_numpy()
    start = fit_service_time(self_ms)
    none = fit_convolved(self_ms, np.zeros(len(self_ms)), start)
    best: tuple[float, int] = (none.decile_loss, -1)
    low = max(1, int(np.ceil(float((per_min["lam"] * per_min["dur"]).min() or 0.0) * 0.5)))  # type: ignore[arg-type,operator]
    bound = low + 40
    for c in range(low, low + 40):
        pm = hold_for(per_min, c)
        if float(np.mean(wait_share(pm, ServersFit(c, True, 0.0, "")))) < 0.005:
            bound = c  # the least count under which no queue forms: what "no queue seen" allows
            break
        drawn = waits(pm, ServersFit(c, True, 0.0, ""), minutes)
        fit = fit_convolved(self_ms, drawn, start)
        if fit.decile_loss < best[0] * 0.8:
            best = (fit.decile_loss, c)
    if best[1] < 0:
        pm = hold_for(per_min, bound)
        util = float((pm["lam"] * pm["hold"]).max() or 0.0) / bound  # type: ignore[arg-type,operator]
        return ServersFit(max(bound, first.servers if first.identified else 1), False, util,
                          "self-time shape (no queue seen)")  # fmt: skip
    c = best[1]
    pm = hold_for(per_min, c)
    util = float((pm["lam"] * pm["hold"]).max() or 0.0) / c  # type: ignore[arg-type,operator]
    return ServersFit(c, True, util, "self-time shape (M/M/c waits deconvolved)")


def wait_share(per_min: pl.DataFrame, sv: ServersFit) -> np.ndarray:
    """Per minute, the fitted probability that a request waits."""
    c = float(sv.servers)
    offered = np.minimum(per_min["lam"].to_numpy() * per_min["hold"].to_numpy(), c * RHO_STABLE)
    result: np.ndarray = erlang_c(np.full(len(offered), c), offered)
    return result
