"""Scenario files users write: ``extends`` by relative path, the new world fields, and TOML round trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.engine import episode_factor
from simulator.scenario import Episode, ScenarioError, library, load_scenario, parse_scenario
from simulator.scenario_toml import dump_scenario

BASE = """
name = "base"
description = "a base of my own"
[arrivals]
rate_per_s = 3
[[entrypoints]]
operation = "api:GET /"
[services.api.operations."GET /"]
service_time = { median_ms = 2.0 }
"""


def test_extends_takes_a_path_relative_to_the_scenario_file(tmp_path: Path) -> None:
    (tmp_path / "worlds").mkdir()
    (tmp_path / "worlds" / "base.toml").write_text(BASE, encoding="utf-8")
    child = tmp_path / "worlds" / "mine" / "child.toml"
    child.parent.mkdir()
    child.write_text('extends = "../base.toml"\nname = "child"\n[arrivals]\nrate_per_s = 7\n', encoding="utf-8")
    scenario = load_scenario(child)
    assert scenario.name == "child" and scenario.arrivals.rate_per_s == 7
    assert scenario.operation_refs() == ["api:GET /"]
    grandchild = tmp_path / "g.toml"
    grandchild.write_text('extends = "worlds/mine/child.toml"\nname = "g"\n', encoding="utf-8")
    assert load_scenario(grandchild).arrivals.rate_per_s == 7  # relative to each file in turn


def test_extends_still_takes_library_names_and_absolute_paths(tmp_path: Path) -> None:
    assert load_scenario(_write(tmp_path / "a.toml", 'extends = "mini"\nname = "a"\n')).services.keys() == (
        load_scenario("mini").services.keys()
    )
    base = _write(tmp_path / "base.toml", BASE)
    assert load_scenario(_write(tmp_path / "b.toml", f'extends = "{base}"\nname = "b"\n')).name == "b"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('extends = "missing.toml"\nname = "x"\n', "is not a file"),
        ('extends = "no-such-library-scenario"\nname = "x"\n', "not in the library"),
        ("extends = 3\n", "library name or a path"),
    ],
)
def test_a_bad_extends_names_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        load_scenario(_write(tmp_path / "bad.toml", text))


def test_an_extends_cycle_through_files_is_refused(tmp_path: Path) -> None:
    _write(tmp_path / "a.toml", 'extends = "b.toml"\n')
    _write(tmp_path / "b.toml", 'extends = "a.toml"\n')
    with pytest.raises(ScenarioError, match="cycle"):
        load_scenario(tmp_path / "a.toml")


def test_world_fields_validate_and_name_bad_keys() -> None:
    text = (
        "start = 2026-06-01T09:30:00Z\n"
        + BASE.replace("rate_per_s = 3", "rate_per_s = 3\ndst_shift_min = 60")
        + ('[[arrivals.episodes]]\nkind = "surge"\nstart_min = 10\nend_min = 50\nfactor = 1.5\nramp_min = 10\n')
    )
    scenario = parse_scenario(text)
    assert scenario.start_ns(0) == 1_780_306_200_000_000_000
    assert scenario.arrivals.dst_shift_min == 60
    assert scenario.arrivals.episodes[0].factor == 1.5
    with pytest.raises(ScenarioError, match=r"arrivals.episodes.0"):
        parse_scenario(BASE + "[[arrivals.episodes]]\nstart_min = 10\nend_min = 5\nfactor = 2\n")
    odd = BASE.replace("{ median_ms = 2.0 }", '{ median_ms = 2.0 }\nkind = "mainframe"')
    with pytest.raises(ScenarioError, match="kind"):
        parse_scenario(odd)


def test_an_episode_ramps_in_and_out() -> None:
    ep = Episode(start_min=0, end_min=100, factor=3.0, ramp_min=20)
    assert episode_factor([ep], -1) == 1.0
    assert episode_factor([ep], 10) == pytest.approx(2.0)
    assert episode_factor([ep], 50) == pytest.approx(3.0)
    assert episode_factor([ep], 90) == pytest.approx(2.0)
    assert episode_factor([ep], 100) == 1.0


@pytest.mark.parametrize("name", sorted(library()))
def test_every_library_scenario_round_trips_through_toml(name: str) -> None:
    scenario = load_scenario(name)
    assert parse_scenario(dump_scenario(scenario)) == scenario


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
