"""CLI: --store, --config and --format before or after the command; an example in every command's --help."""

from __future__ import annotations

import re
from pathlib import Path

import click
import orjson
import pytest
from click.testing import CliRunner

from controller.cli import _move_common_options, main
from controller.cli_examples import EXAMPLES
from store.connection import Store


def _paths(group: click.Group, ctx: click.Context, prefix: str = "") -> list[str]:
    out = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        path = f"{prefix}{name}"
        out += _paths(command, ctx, f"{path} ") if isinstance(command, click.Group) else [path]
    return out


PATHS = _paths(main, click.Context(main))


@pytest.mark.parametrize("path", PATHS)
def test_every_command_help_has_an_example(path: str) -> None:
    result = CliRunner().invoke(main, [*path.split(), "--help"])
    assert result.exit_code == 0
    found = re.search(r"Example:\n\s+(.*)", result.output)
    assert found is not None and "driftscope " in found[1]
    assert all(word in found[1].split() for word in path.split())  # the example runs this very command


def test_examples_name_only_real_commands() -> None:
    assert sorted(EXAMPLES) == sorted(PATHS)
    for path, example in EXAMPLES.items():
        assert path.split()[0] in example.split()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "s.duckdb"
    Store(path).close()
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["--store", "{s}", "sql", "SELECT 42 AS x", "--format", "json"],
        ["sql", "SELECT 42 AS x", "--store", "{s}", "--format", "json"],
        ["--format", "json", "--store={s}", "sql", "SELECT 42 AS x"],
        ["--store", "{s}", "--format", "json", "sql", "--", "SELECT 42 AS x"],
    ],
)
def test_common_options_before_or_after_the_command(store: Path, args: list[str]) -> None:
    result = CliRunner().invoke(main, [a.format(s=store) for a in args])
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output) == [{"x": 42}]


def test_common_options_before_a_subcommand_of_a_group(store: Path) -> None:
    result = CliRunner().invoke(main, ["--store", str(store), "--format", "json", "invariants", "check"])
    assert "No such option" not in result.output


def test_moving_keeps_everything_else_in_place() -> None:
    assert _move_common_options(["sql", "--store", "x"]) == ["sql", "--store", "x"]
    assert _move_common_options(["--store", "x", "gym", "run", "--seed", "1"]) == [
        "gym",
        "run",
        "--seed",
        "1",
        "--store",
        "x",
    ]
    assert _move_common_options(["--store"]) == ["--store"]  # click names the missing value
    assert _move_common_options(["--version"]) == ["--version"]
