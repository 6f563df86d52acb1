"""Change-point quality on seeded synthetic series of five shapes, seeds never used while developing.

The real-world corpus has change points in 13 pump-rig series only, so this complements
``realdata.py`` with series shaped like public change-point benchmarks (economic,
environmental, industrial): 20-3,000 points, 0-4 changes at least n/20 apart, and one of

- ``const``: level shifts of 2-6 sigma;
- ``linear``: trends whose slope changes;
- ``seasonal``: level shifts under a period-7/12/24 cycle;
- ``walk``: a random walk with jumps of 8-20 sigma;
- ``var``: level shifts with the noise scaled x0.3 or x3 in some segments;

with Gaussian, Student-t(3) or AR(1) noise (phi up to 0.8) and 1 % outliers in 30 % of the
series (outliers are not change points). Scores: F1 with a 5-point margin and covering
(``realscore.py``), change points = 0->1 edges of ``alert``, for driftscope in-process
(``detect_series``, default and causal), ruptures BinSeg (l2, BIC on the standardised
series) and no alerts. Prints the seeds, a table per shape and one line
``synthetic_cp_f1= synthetic_cp_cover=`` for driftscope's default mode.

    .venv/bin/python benchmarks/changepoints.py [--seeds 1000:1150]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(Path(__file__).resolve().parent))

from realscore import covering, cp_f1, onsets  # noqa: E402

from detectors.single import detect_series  # noqa: E402

SHAPES = ("const", "linear", "seasonal", "walk", "var")


def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit-variance noise: Gaussian or Student-t(3), AR(1) with phi 0 or up to 0.8."""
    phi = float(rng.choice([0.0, rng.uniform(0, 0.8)]))
    e = rng.standard_t(3, n) / math.sqrt(3) if rng.random() < 0.3 else rng.normal(0, 1, n)
    out = np.empty(n)
    acc = 0.0
    for i in range(n):  # AR(1): one pass over a short series
        acc = phi * acc + e[i]
        out[i] = acc
    return out * math.sqrt(1 - phi**2)


def make(seed: int) -> tuple[str, np.ndarray, list[int]]:
    """(shape, values, true change points) of one seeded series."""
    rng = np.random.default_rng(seed)
    shape = str(rng.choice(SHAPES, p=[0.3, 0.25, 0.2, 0.1, 0.15]))
    n = int(np.exp(rng.uniform(np.log(20), np.log(3000))))
    if shape == "seasonal":
        n = max(n, 60)
    k = min(int(rng.poisson(1.5)), max(0, n // 15 - 1))
    gap = max(5, n // 20)
    cps: list[int] = []
    for _ in range(50):
        if len(cps) == k or n <= 2 * gap:
            break
        c = int(rng.integers(gap, n - gap + 1))
        if all(abs(c - d) >= gap for d in cps):
            cps.append(c)
    cps.sort()
    bounds = [0, *cps, n]
    noise = _noise(rng, n)
    x = np.zeros(n)
    scale = np.ones(n)
    level = rng.normal(0, 5)
    slope = 0.0
    for j in range(len(bounds) - 1):
        a, b = bounds[j], bounds[j + 1]
        if shape in ("const", "seasonal", "var"):
            level += rng.choice([-1, 1]) * rng.uniform(2, 6) if j else 0.0
            x[a:b] = level
        elif shape == "linear":
            slope = slope + rng.choice([-1, 1]) * rng.uniform(3, 10) / max(b - a, 5) * 3 if j else rng.normal(0, 3 / n)
            start = x[a - 1] + slope if a else level
            x[a:b] = start + slope * np.arange(b - a)
        else:  # walk
            x[a:b] = level + (rng.choice([-1, 1]) * rng.uniform(8, 20) if j else 0.0)
            level = x[a]
        if shape == "var" and j and rng.random() < 0.5:
            scale[a:b] = rng.choice([0.3, 3.0])
    if shape == "walk":
        x += np.cumsum(rng.normal(0, 0.5, n))
    if shape == "seasonal":
        period = int(rng.choice([7, 12, 24]))
        x += rng.uniform(1, 4) * np.sin(2 * np.pi * np.arange(n) / period + rng.uniform(0, 6))
    x += noise * scale
    if rng.random() < 0.3:
        m = max(1, n // 100)
        idx = rng.choice(n, m, replace=False)
        x[idx] += rng.choice([-1, 1], m) * rng.uniform(6, 12, m)
    return shape, x, cps


def _driftscope(causal: bool) -> Callable[[np.ndarray], list[int]]:
    def run(x: np.ndarray) -> list[int]:
        result = detect_series(None, x, "auto", causal)
        return [int(i) for i in onsets(result.alert)]

    return run


def _binseg(x: np.ndarray) -> list[int]:
    import ruptures as rpt

    pen = 2 * max(float(np.var(x)), 1e-12) * math.log(len(x))
    return [b for b in rpt.Binseg(model="l2", min_size=2).fit(x.reshape(-1, 1)).predict(pen=pen) if b < len(x)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="1000:1150", help="first:end (end excluded).")
    args = parser.parse_args()
    first, end = (int(v) for v in args.seeds.split(":"))
    seeds = range(first, end)
    methods: dict[str, Callable[[np.ndarray], list[int]]] = {
        "driftscope (auto)": _driftscope(False),
        "driftscope --causal": _driftscope(True),
        "ruptures binseg": _binseg,
        "no alerts": lambda x: [],
    }
    print(f"seeds {first}..{end - 1} ({len(seeds)} series)")
    series = [make(s) for s in seeds]
    print(f"points: {sum(len(x) for _, x, _ in series):,d}; shapes: "
          + ", ".join(f"{s} {sum(1 for k, _, _ in series if k == s)}" for s in SHAPES))  # fmt: skip
    header = f"{'method':22s} {'all F1/cover':>14s} " + " ".join(f"{s:>13s}" for s in SHAPES) + "  seconds"
    print(header)
    first_line = ""
    for name, method in methods.items():
        started = time.perf_counter()
        scores: dict[str, list[tuple[float, float]]] = {s: [] for s in (*SHAPES, "all")}
        for shape, x, truth in series:
            predicted = method(x)
            pair = (cp_f1(truth, predicted), covering(truth, predicted, len(x)))
            scores[shape].append(pair)
            scores["all"].append(pair)
        mean = {k: np.mean(v, axis=0) if v else (math.nan, math.nan) for k, v in scores.items()}
        cells = " ".join(f"{mean[s][0]:6.3f}/{mean[s][1]:.3f}" for s in SHAPES)
        print(f"{name:22s} {mean['all'][0]:6.3f}/{mean['all'][1]:.3f} {cells} {time.perf_counter() - started:8.1f}")
        if not first_line:
            first_line = f"synthetic_cp_f1={mean['all'][0]:.3f} synthetic_cp_cover={mean['all'][1]:.3f}"
    print(first_line)


if __name__ == "__main__":
    main()
