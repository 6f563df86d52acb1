"""Detection quality on labelled real-world series, driftscope against baselines, in one run.

Runs the real CLI (``driftscope detect-series``) over every series of the development
corpus (``../shared/data/realseries/``, read in place, never copied: sources and licences in
its README) and scores it, with the same rules, beside baselines computed in this process:

- ``no alerts``: the floor every detector must beat;
- ``rolling gaussian``: NAB's windowed Gaussian, a z-score against the trailing 1,000 points,
  score = 1 - two-sided tail probability, alert below 1e-4;
- ``ruptures pelt`` / ``ruptures binseg``: offline segmentation (ruptures, l2 cost) with the
  BIC penalty of a mean-shift model on the standardised series, 2 ln n (a location and a
  mean per change) in units of the series' variance; their change points are the alerts
  and score 1, every other point 0.

Scores (``benchmarks/realscore.py``): NAB standard, low-FP and low-FN profiles (one
threshold swept over the ``score`` column for the whole corpus), labelled windows with any
alert inside (of all windows), change-point F1 (margin 5) and covering on the series with
change points (change points = 0->1 edges of ``alert``), and false alert onsets per 1,000
points outside every scoring window and ignore window (and, apart, on the label-free
series). Then the CLI's wall time on a 100,000-point series (pinned to one core with
taskset). Prints the machine, the corpus size, a table per method and one last line
``realdata_nab= cp_f1= cp_cover= fp_onsets_per_1k=`` for driftscope's first variant.

    .venv/bin/python benchmarks/realdata.py [--corpus DIR] [--jobs 2] [--split dev] [--variant="--mode anomaly"]...
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from realscore import (
    PROFILES,
    NabSeries,
    covering,
    cp_f1,
    false_onsets,
    index_ranges,
    nab_corpus,
    nab_prepare,
    nab_windows,
    onsets,
)

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "data" / "realseries"
GAUSSIAN_WINDOW = 1000


@dataclass
class Series:
    name: str
    path: Path
    times: np.ndarray
    values: np.ndarray
    labels: list[tuple[int, int]]
    """Labelled anomaly windows, inclusive index ranges."""
    ignore: list[tuple[int, int]]
    change_points: list[int]


@dataclass
class Output:
    score: np.ndarray
    alert: np.ndarray


@dataclass
class MethodResult:
    name: str
    outputs: dict[str, Output] = field(default_factory=dict)
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)


def load_corpus(corpus: Path) -> list[Series]:
    """Every CSV of the corpus with its labels as index ranges."""
    labels = json.loads((corpus / "labels.json").read_text())
    out = []
    for name in sorted(labels):
        data = np.loadtxt(corpus / name, delimiter=",", skiprows=1, ndmin=2)
        times = data[:, 0].astype(np.int64)
        meta = labels[name]
        cps = [int(np.searchsorted(times, t)) for t in meta.get("change_points", [])]
        out.append(
            Series(
                name,
                corpus / name,
                times,
                data[:, 1],
                index_ranges(times, [tuple(w) for w in meta["anomaly_windows"]]),
                index_ranges(times, [tuple(w) for w in meta.get("ignore_windows", [])]),
                cps,
            )
        )
    return out


def is_holdout(name: str) -> bool:
    """The held-out split, fixed before any tuning: about 30 % of the series, by a hash of the name."""
    return zlib.crc32(name.encode()) % 10 < 3


def _sigma(values: np.ndarray) -> float:
    return max(float(np.std(values)), 1e-9 * max(1.0, float(np.abs(values).max())))


def no_alerts(s: Series) -> Output:
    return Output(np.zeros(len(s.values)), np.zeros(len(s.values), bool))


def rolling_gaussian(s: Series) -> Output:
    """Score = 1 - two-sided normal tail of the z-score against the trailing window (NAB's windowed Gaussian)."""
    from scipy.special import erf

    x = s.values
    c1 = np.concatenate([[0.0], np.cumsum(x)])
    c2 = np.concatenate([[0.0], np.cumsum(x * x)])
    idx = np.arange(len(x))
    lo = np.maximum(0, idx - GAUSSIAN_WINDOW)
    count = idx - lo
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = (c1[idx] - c1[lo]) / count
        var = np.maximum((c2[idx] - c2[lo]) / count - mean * mean, 0.0)
        z = np.abs(x - mean) / np.sqrt(np.maximum(var, 1e-12))
    z = np.where(count >= 2, z, 0.0)
    score = erf(z / math.sqrt(2))
    return Output(score, z > 3.8906)  # two-sided tail < 1e-4


def _ruptures(algo: str) -> Callable[[Series], Output]:
    def run(s: Series) -> Output:
        import ruptures as rpt

        x = s.values
        n = len(x)
        jump = max(1, n // 2000)  # ruptures' own speed knob: candidate change points every `jump` points
        cls = rpt.Pelt if algo == "pelt" else rpt.Binseg
        pen = 2 * _sigma(x) ** 2 * math.log(n)
        bkps = cls(model="l2", min_size=2, jump=jump).fit(x.reshape(-1, 1)).predict(pen=pen)
        alert = np.zeros(n, bool)
        alert[[b for b in bkps if b < n]] = True
        return Output(alert.astype(float), alert)

    return run


def run_baseline(name: str, fn: Callable[[Series], Output], corpus: list[Series]) -> MethodResult:
    result = MethodResult(name)
    started = time.perf_counter()
    for s in corpus:
        try:
            result.outputs[s.name] = fn(s)
        except Exception as exc:  # a baseline failing on one series is reported, not fatal
            result.failures.append(f"{s.name}: {type(exc).__name__}: {exc}")
    result.seconds = time.perf_counter() - started
    return result


def _cli() -> list[str]:
    exe = ROOT / ".venv" / "bin" / "driftscope"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "controller"]


def run_driftscope(variant: str, corpus: list[Series], jobs: int, workdir: Path) -> MethodResult:
    """Every series through ``driftscope detect-series`` (the real CLI, one process per series)."""
    name = f"driftscope {variant}".strip()
    result = MethodResult(name)
    extra = shlex.split(variant)

    def one(s: Series) -> tuple[str, Output | str]:
        out = workdir / f"{abs(hash(variant))}-{s.name}"
        cmd = [*_cli(), "detect-series", "--input", str(s.path), "--output", str(out), *extra]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=workdir)
        if proc.returncode != 0:
            return s.name, f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"
        lines = out.read_text().splitlines()
        rows = [line.split(",") for line in lines[1:]]
        if len(rows) != len(s.values):
            return s.name, f"{len(rows)} output rows for {len(s.values)} input rows"
        echoed = [r[0] for r in rows]
        source = [line.split(",")[0] for line in s.path.read_text().splitlines()[1:]]
        if echoed != source:
            return s.name, "timestamps not echoed byte for byte"
        score = np.array([float(r[2]) for r in rows])
        alert = np.array([r[3] == "1" for r in rows])
        return s.name, Output(score, alert)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for series_name, got in pool.map(one, corpus):
            if isinstance(got, str):
                result.failures.append(f"{series_name}: {got}")
            else:
                result.outputs[series_name] = got
    result.seconds = time.perf_counter() - started
    return result


@dataclass
class Figures:
    nab: dict[str, float]
    hit: int
    windows: int
    cp_f1: float
    cp_cover: float
    fp_per_1k: float
    fp_per_1k_clean: float
    failures: int


def score_method(result: MethodResult, corpus: list[Series]) -> Figures:
    """Every figure of the table for one method (a failed series scores as no alerts)."""
    nab: dict[str, float] = {}
    for profile_name, profile in PROFILES.items():
        prepared: list[NabSeries] = []
        for s in corpus:
            out = result.outputs.get(s.name) or no_alerts(s)
            prepared.append(nab_prepare(out.score, nab_windows(len(s.values), s.labels), s.ignore, profile))
        nab[profile_name] = nab_corpus(prepared, profile).score
    hit = windows = 0
    f1s: list[float] = []
    covers: list[float] = []
    fp = free = fp_clean = free_clean = 0
    for s in corpus:
        out = result.outputs.get(s.name) or no_alerts(s)
        for lo, hi in s.labels:
            windows += 1
            hit += bool(out.alert[lo : hi + 1].any())
        if s.change_points:
            predicted = [int(i) for i in onsets(out.alert)]
            f1s.append(cp_f1(s.change_points, predicted))
            covers.append(covering(s.change_points, predicted, len(s.values)))
        exclude = nab_windows(len(s.values), s.labels) + s.ignore
        f, n = false_onsets(out.alert, exclude)
        fp += f
        free += n
        if not s.labels and not s.change_points:
            fp_clean += f
            free_clean += n
    return Figures(
        nab,
        hit,
        windows,
        float(np.mean(f1s)) if f1s else math.nan,
        float(np.mean(covers)) if covers else math.nan,
        1000.0 * fp / max(free, 1),
        1000.0 * fp_clean / max(free_clean, 1),
        len(result.failures),
    )


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem:.1f} GiB, Python {platform.python_version()}"


def speed(workdir: Path, n: int = 100_000) -> str:
    """Wall time of the CLI on an ``n``-point series (one core when taskset exists), and where it goes."""
    rng = np.random.default_rng(7)
    t = 1_700_000_000 + 60 * np.arange(n)
    x = 100 + 10 * np.sin(2 * np.pi * np.arange(n) / 1440) + rng.normal(0, 1, n)
    x[n // 2 :] += 5
    x[rng.integers(0, n, 20)] += 25
    path = workdir / "speed.csv"
    path.write_text("timestamp,value\n" + "".join(f"{a},{b:.4f}\n" for a, b in zip(t, x, strict=True)))
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    lines = []
    for variant in ([], ["--causal"]):
        started = time.perf_counter()
        out = workdir / "speed-out.csv"
        cmd = [*pin, *_cli(), "detect-series", "--input", str(path), "--output", str(out), *variant]
        run = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        status = "ok" if run.returncode == 0 else f"exit {run.returncode}"
        said = run.stderr.strip().splitlines()[-1:]
        where = "on one core " if pin else ""
        name = " ".join(variant) or "(auto)"
        lines.append(f"detect-series {name} on {n:,d} points: {wall:.2f} s wall {where}({status}; {said})")
    started = time.perf_counter()
    subprocess.run([*pin, *_cli(), "--help"], capture_output=True, check=False)
    lines.append(f"CLI start-up alone (driftscope --help): {time.perf_counter() - started:.2f} s")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--jobs", type=int, default=2, help="CLI processes at once.")
    parser.add_argument(
        "--variant", action="append", default=None, help='driftscope detect-series flags, e.g. "--mode anomaly".'
    )
    parser.add_argument("--only", default="", help="Comma-separated name substrings: a subset of the corpus.")
    parser.add_argument(
        "--split",
        choices=["all", "dev", "holdout"],
        default="all",
        help="holdout: the ~30 %% of series (crc32 of the name mod 10 < 3) kept out of development; dev: the rest.",
    )
    parser.add_argument("--no-baselines", action="store_true", help="Skip the baselines (driftscope only).")
    parser.add_argument("--no-speed", action="store_true", help="Skip the 100k-point timing.")
    args = parser.parse_args()
    if not (args.corpus / "labels.json").exists():
        sys.exit(f"no corpus at {args.corpus} (expected labels.json and the CSVs; see the corpus README)")
    corpus = load_corpus(args.corpus)
    if args.split != "all":
        corpus = [s for s in corpus if is_holdout(s.name) == (args.split == "holdout")]
    if args.only:
        corpus = [s for s in corpus if any(part in s.name for part in args.only.split(","))]
    variants = args.variant or [""]
    n_points = sum(len(s.values) for s in corpus)
    print(f"machine: {_machine()}")
    print(f"split: {args.split}")
    print(
        f"corpus: {args.corpus} — {len(corpus)} series, {n_points:,d} points, "
        f"{sum(len(s.labels) for s in corpus)} labelled windows, "
        f"{sum(len(s.change_points) for s in corpus)} change points in {sum(bool(s.change_points) for s in corpus)} "
        f"series, {sum(not s.labels and not s.change_points for s in corpus)} label-free series"
    )
    results: list[MethodResult] = []
    with tempfile.TemporaryDirectory(prefix="realdata-") as tmp:
        for variant in variants:
            results.append(run_driftscope(variant, corpus, args.jobs, Path(tmp)))
    if not args.no_baselines:
        results.append(run_baseline("no alerts", no_alerts, corpus))
        results.append(run_baseline("rolling gaussian", rolling_gaussian, corpus))
        results.append(run_baseline("ruptures pelt", _ruptures("pelt"), corpus))
        results.append(run_baseline("ruptures binseg", _ruptures("binseg"), corpus))
    header = (
        f"{'method':34s} {'NAB std':>8s} {'low FP':>8s} {'low FN':>8s} {'windows hit':>12s} "
        f"{'CP F1':>6s} {'cover':>6s} {'FP/1k':>6s} {'FP/1k clean':>11s} {'fails':>5s} {'seconds':>8s}"
    )
    print(header)
    print("-" * len(header))
    figures: list[Figures] = []
    for result in results:
        f = score_method(result, corpus)
        figures.append(f)
        print(
            f"{result.name:34s} {f.nab['standard']:8.1f} {f.nab['reward_low_FP_rate']:8.1f} "
            f"{f.nab['reward_low_FN_rate']:8.1f} {f.hit:5d}/{f.windows:<6d} {f.cp_f1:6.3f} {f.cp_cover:6.3f} "
            f"{f.fp_per_1k:6.2f} {f.fp_per_1k_clean:11.2f} {f.failures:5d} {result.seconds:8.1f}"
        )
    for result in results:
        for failure in result.failures[:10]:
            print(f"  {result.name} failed on {failure}")
    if not args.no_speed:
        with tempfile.TemporaryDirectory(prefix="realdata-speed-") as tmp:
            print(speed(Path(tmp)))
    first = figures[0]
    print(
        f"realdata_nab={first.nab['standard']:.1f} cp_f1={first.cp_f1:.3f} cp_cover={first.cp_cover:.3f} "
        f"fp_onsets_per_1k={first.fp_per_1k:.2f}"
    )


if __name__ == "__main__":
    main()
