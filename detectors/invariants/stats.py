"""How much evidence an invariant needs, and when an exception is more than luck.

Proposal: a law "always holds" is proposed only with ``MIN_SUPPORT`` observations and no
exception, i.e. enough that a true exception rate of 1/1000 would have shown at least once
with probability 0.99 ((1 - 0.001)^n <= 0.01, n >= 4603). Its confidence is 1 minus the
rule-of-three bound (3/n is the 95 % upper bound on a rate never seen in n trials).
The call graph's laws (an operation's closed set of callees, an edge's rate) are about
edges, not single spans, and need only ``EDGE_MIN_SUPPORT`` parents: enough to have seen,
with probability 0.99, every edge taken on at least 1 % of calls. A low-traffic caller
thus gets its call graph checked; the test below, with the law's own n, makes a law
learned on few parents need many more new calls before it is reported broken.

Violation: x exceptions in m new observations are judged against that same bound: the
p-value is P(X >= x) for X ~ Binomial(m, 3/n), so a law learned on little data needs more
counterexamples. Count drops (a call edge or a log template vanishing) use the Poisson
lower tail against half the baseline rate. ``ALPHA`` is small because every run tests
hundreds of laws and a quiet system must raise nothing.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

EXCEPTION_RATE = 1e-3
"""The exception rate a proposed law must have been able to reveal (per observation)."""
POWER = 0.99
MIN_SUPPORT = math.ceil(math.log(1 - POWER) / math.log(1 - EXCEPTION_RATE))
"""Observations a law needs before it is proposed (4603)."""
EDGE_RATE = 1e-2
"""The share of calls an edge of the call graph carries at the least (a rarer edge may be unseen)."""
EDGE_MIN_SUPPORT = math.ceil(math.log(1 - POWER) / math.log(1 - EDGE_RATE))
"""Parents a call-graph law (closed callee set, edge rate) needs before it is proposed (459)."""
ALPHA = 1e-6
"""p-value below which a violation is reported."""
MIN_COUNTEREXAMPLES = 3
"""A statistical (learned) law is never reported broken on fewer exceptions than this."""
DROP_FACTOR = 0.5
"""A rate counts as dropped when it is significantly below this share of its baseline."""


def confidence(support: ArrayLike) -> NDArray[np.float64]:
    """1 - 3/n: the rule-of-three confidence of a law seen n times without exception."""
    n = np.asarray(support, dtype=np.float64)
    return np.clip(1.0 - 3.0 / np.maximum(n, 1.0), 0.0, 1.0)


def exception_p_value(exceptions: ArrayLike, trials: ArrayLike, support: ArrayLike) -> NDArray[np.float64]:
    """P(X >= exceptions), X ~ Binomial(trials, 3 / support): is this many exceptions luck?"""
    x = np.asarray(exceptions, dtype=np.float64)
    m = np.asarray(trials, dtype=np.float64)
    rate = np.clip(3.0 / np.maximum(np.asarray(support, dtype=np.float64), 1.0), 0.0, 1.0)
    p = stats.binom.sf(x - 1, np.maximum(m, x), rate)
    return np.where(x <= 0, 1.0, p).astype(np.float64)


def drop_p_value(observed: ArrayLike, expected: ArrayLike) -> NDArray[np.float64]:
    """P(X <= observed), X ~ Poisson(DROP_FACTOR x expected): has a count fallen below half its baseline?"""
    x = np.asarray(observed, dtype=np.float64)
    lam = DROP_FACTOR * np.asarray(expected, dtype=np.float64)
    return np.asarray(stats.poisson.cdf(x, np.maximum(lam, 1e-12)), dtype=np.float64)


def shift_p_value(observed: ArrayLike, expected: ArrayLike, factor: float) -> NDArray[np.float64]:
    """Two-sided Poisson test that a count moved beyond ``factor`` times (or 1/factor) its expectation."""
    x = np.asarray(observed, dtype=np.float64)
    lam = np.maximum(np.asarray(expected, dtype=np.float64), 1e-12)
    up = stats.poisson.sf(x - 1, lam * factor)
    down = stats.poisson.cdf(x, lam / factor)
    return np.asarray(np.minimum(1.0, 2 * np.minimum(up, down)), dtype=np.float64)
