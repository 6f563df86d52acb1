"""The scoring rules of benchmarks/realdata.py on cases worked out by hand (NAB's sweeper, TCPD's metrics)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

# Loaded by path: putting benchmarks/ on sys.path would let benchmarks/investigations.py shadow the package.
_SPEC = importlib.util.spec_from_file_location(
    "realscore", Path(__file__).resolve().parents[2] / "benchmarks" / "realscore.py"
)
assert _SPEC is not None and _SPEC.loader is not None
realscore = importlib.util.module_from_spec(_SPEC)
sys.modules["realscore"] = realscore
_SPEC.loader.exec_module(realscore)
MAX_TP = realscore.MAX_TP
PROFILES = realscore.PROFILES
covering = realscore.covering
cp_f1 = realscore.cp_f1
false_onsets = realscore.false_onsets
nab_corpus = realscore.nab_corpus
nab_prepare = realscore.nab_prepare
nab_windows = realscore.nab_windows
onsets = realscore.onsets

STANDARD = PROFILES["standard"]


def _nab(score: np.ndarray, windows: list[tuple[int, int]], ignore: list[tuple[int, int]] | None = None) -> float:
    return nab_corpus([nab_prepare(score, windows, ignore or [], STANDARD)], STANDARD).score


def test_windows_are_ten_percent_of_the_series_split_among_labels_and_centred() -> None:
    assert nab_windows(1000, [(500, 500)]) == [(450, 550)]
    assert nab_windows(1000, [(300, 300), (700, 700)]) == [(275, 325), (675, 725)]
    assert nab_windows(1000, [(100, 400)]) == [(100, 400)]  # never narrower than the label
    assert nab_windows(1000, [(500, 500), (520, 520)]) == [(475, 545)]  # overlapping windows merge


def test_nab_rewards_early_detection_and_normalises_no_alerts_to_0_and_perfect_to_100() -> None:
    n = 1000
    windows = [(900, 909)]
    nothing = np.zeros(n)
    assert _nab(nothing, windows) == 0.0
    start = nothing.copy()
    start[900] = 1.0
    assert _nab(start, windows) == pytest.approx(100.0)
    middle = nothing.copy()
    middle[905] = 1.0  # position -(909 - 905 + 1) / 10 = -0.5
    reward = (2 / (1 + np.exp(-2.5)) - 1) / MAX_TP
    assert _nab(middle, windows) == pytest.approx(100 * (reward + 1) / 2)


def test_a_false_positive_far_from_windows_costs_the_fp_weight_and_probation_is_free() -> None:
    n = 1000
    windows = [(900, 909)]
    score = np.zeros(n)
    score[900] = 1.0
    score[500] = 1.0  # before any window: full FP weight 0.11
    assert _nab(score, windows) == pytest.approx(100 * (1.0 - 0.11 + 1) / 2)
    score[10] = 1.0  # probationary (first 15 %): not scored
    assert _nab(score, windows) == pytest.approx(100 * (1.0 - 0.11 + 1) / 2)
    assert _nab(score, windows, ignore=[(490, 510)]) == pytest.approx(100.0)  # an ignored detection is no FP


def test_one_threshold_is_swept_for_the_whole_corpus() -> None:
    a = np.zeros(1000)
    a[900] = 0.9
    b = np.zeros(1000)
    b[400] = 0.8  # a false positive in another series, below a's detection
    prepared = [nab_prepare(a, [(900, 909)], [], STANDARD), nab_prepare(b, [(950, 959)], [], STANDARD)]
    result = nab_corpus(prepared, STANDARD)
    assert result.threshold == pytest.approx(0.9) and result.detected == 1 and result.false_positives == 0


def test_change_point_f1_and_covering_match_hand_computed_values() -> None:
    assert cp_f1([10, 20], [11, 30]) == pytest.approx(2 / 3)
    assert cp_f1([10, 20], []) == pytest.approx(2 * 1 * (1 / 3) / (1 + 1 / 3))  # 0 always counts
    expected = (10 * 10 / 11 + 10 * 9 / 20 + 20 * 10 / 20) / 40
    assert covering([10, 20], [11, 30], 40) == pytest.approx(expected)
    assert covering([10, 20], [10, 20], 40) == pytest.approx(1.0)


@given(st.lists(st.booleans(), max_size=300))
def test_onsets_are_the_zero_to_one_edges(alert: list[bool]) -> None:
    a = np.array(alert, dtype=bool)
    edges = onsets(a)
    assert all(a[i] and (i == 0 or not a[i - 1]) for i in edges)
    assert len(edges) == sum(1 for i in range(len(a)) if a[i] and (i == 0 or not a[i - 1]))


def test_false_onsets_count_only_label_free_stretches() -> None:
    alert = np.zeros(100, dtype=bool)
    alert[[5, 50, 51, 90]] = True
    assert false_onsets(alert, [(45, 55)]) == (2, 89)
