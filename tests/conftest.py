"""Shared fixtures: a real ``driftscope serve`` process on loopback with a temp store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from serverproc import ServerProc, start_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProc]:
    srv = start_server(tmp_path / "store.duckdb")
    yield srv
    if srv.proc.poll() is None:
        srv.kill()
