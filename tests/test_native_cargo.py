"""The compiled decoder's own Rust unit tests (JSON text as orjson writes it, base64)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from requires import missing

NATIVE = Path(__file__).resolve().parent.parent / "native"


def _cargo() -> str | None:
    found = shutil.which("cargo")
    if found:
        return found
    home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
    candidate = home / "bin" / "cargo"
    return str(candidate) if candidate.exists() else None


def test_cargo_unit_tests_pass() -> None:
    cargo = _cargo()
    if cargo is None:
        missing("no Rust toolchain (cargo) to run native/'s unit tests")
    done = subprocess.run(
        [cargo, "test", "--offline", "--quiet", "--lib"],
        cwd=NATIVE,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"test result: ok\. [1-9]\d* passed", done.stdout), done.stdout[-3000:]
