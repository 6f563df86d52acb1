"""Shared fixtures: a real ``driftscope serve`` process on loopback with a temp store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from serverproc import ServerProc, start_server


def pytest_configure(config: pytest.Config) -> None:
    """The suite never talks to the real Claude API: drop any key before a test or a subprocess
    it starts can read it (the CLI uses the real API when ANTHROPIC_API_KEY is set)."""
    os.environ.pop("ANTHROPIC_API_KEY", None)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProc]:
    srv = start_server(tmp_path / "store.duckdb")
    yield srv
    if srv.proc.poll() is None:
        srv.kill()
