"""Properties of the Markdown escaping every telemetry string goes through."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from reports.render import MdSafe, md_code, md_escape

SPECIAL = "\\`*_[]<>|~&#"


@given(st.text())
def test_escaped_text_is_one_line_and_unescapes_to_the_input(text: str) -> None:
    out = md_escape(text)
    assert "\n" not in out and "\r" not in out
    # Every special character is preceded by a backslash, and removing those gives the input back
    # (newlines folded to spaces), so nothing is lost and nothing is interpreted.
    assert re.sub(r"\\(.)", r"\1", out) == " ".join(text.splitlines())
    assert re.search(r"[\\`*_\[\]<>|~&#]", re.sub(r"\\.", "", out)) is None


@given(st.text())
def test_code_fence_is_longer_than_any_backtick_run_inside(text: str) -> None:
    block = md_code(text)
    fence = re.match(r"^(`+)sql\n", block)
    assert fence is not None and block.endswith("\n" + fence.group(1))
    longest = max((len(r) for r in re.findall(r"`+", text)), default=0)
    assert len(fence.group(1)) > longest and len(fence.group(1)) >= 3
    assert isinstance(block, MdSafe) and md_escape(block) == block


def test_none_is_empty() -> None:
    assert md_escape(None) == "" and md_escape(3) == "3"
