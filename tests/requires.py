"""A test that needs a real external component skips without it, except under CI=true."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(reason: str) -> NoReturn:
    """Skip for a missing component with a clear reason; under CI=true a missing component is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (required when CI=true)")
    pytest.skip(reason)
