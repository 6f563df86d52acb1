"""Record each test's markers in the JUnit report, so `driftscope plan check` can tell the layers apart."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@pytest.fixture(autouse=True)
def _markers_in_junit(request: pytest.FixtureRequest, record_property) -> None:
    for marker in request.node.iter_markers():
        record_property("marker", marker.name)
