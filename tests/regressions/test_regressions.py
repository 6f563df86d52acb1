"""Every blind spot the adversary found, replayed: each scenario file of the manifest must meet its expectation.

The manifest (``regressions.toml``, written by ``driftscope adversary run --write-regressions``)
lists each shrunk world with its simulation seed, category and what must hold. Entries
still ``open`` are strict expected failures: the day a change fixes one, its test fails
until the manifest says ``fixed`` (so a fix is never silent, nor a relapse).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from adversary.regressions import Regression, holds, read_manifest
from adversary.trial import TrialConfig, run_trial

HERE = Path(__file__).parent
ENTRIES = read_manifest(HERE)


def _param(entry: Regression) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=entry.reason or entry.found)] if entry.status == "open" else []
    return pytest.param(entry, id=entry.file.removesuffix(".toml"), marks=marks)


def test_the_manifest_lists_every_scenario_file_once() -> None:
    files = sorted(p.name for p in HERE.glob("*.toml") if p.name != "regressions.toml")
    listed = sorted(e.file for e in ENTRIES)
    assert listed == files
    assert all(e.status in ("open", "fixed") for e in ENTRIES)
    assert all(e.reason for e in ENTRIES if e.status == "open"), "an open blind spot says why it is still open"


@pytest.mark.parametrize("entry", [_param(e) for e in ENTRIES])
def test_blind_spot_stays_fixed(entry: Regression, tmp_path: Path) -> None:
    world = entry.world(HERE)
    result = run_trial(world, tmp_path, TrialConfig(investigate=entry.expect in ("root_cause_first", "abstain")))
    assert holds(entry.expect, result), (entry.expect, result.findings, result.failures, result.top)
