"""HTML and Markdown forms of a report, from Jinja2 templates in ``reports/templates``.

HTML: autoescape on, so every string from telemetry (service names, attribute values, log
lines, versions) is text, never markup; the only markup inserted verbatim is the plots' SVG,
which matplotlib wrote and escaped itself. The page is self-contained: inline CSS, inline
SVG, no scripts, no external resources.

Markdown: every interpolated value passes ``md_escape`` (via the environment's
``finalize``), which backslash-escapes the characters that would start markup (emphasis,
links, HTML tags, table cells, code spans) and folds newlines, so a hostile log line stays
one line of text; values wrapped in ``MdSafe`` (code fences built here) pass unchanged.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from reports.model import SCHEMA_VERSION, ReportModel
from store.timeconv import datetime_from_ns

TEMPLATES = Path(__file__).parent / "templates"
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&#])")


class MdSafe(str):
    """Markdown that ``md_escape`` must not touch (built by this module, not from telemetry)."""

    __slots__ = ()


def md_escape(value: Any) -> str:
    """``value`` as inert Markdown text: markup characters backslash-escaped, newlines folded."""
    if value is None:
        return ""
    if isinstance(value, MdSafe):
        return value
    text = " ".join(str(value).splitlines())
    return _MD_SPECIAL.sub(r"\\\1", text)


def md_code(text: str | None) -> MdSafe:
    """A fenced code block for ``text`` whose fence is longer than any backtick run inside it."""
    body = "" if text is None else str(text)
    runs = [len(m) for m in re.findall(r"`+", body)]
    fence = "`" * max(3, max(runs, default=0) + 1)
    return MdSafe(f"{fence}sql\n{body}\n{fence}")


def when(ns: int | None) -> str:
    """``2026-03-09 02:00 UTC`` (empty for None)."""
    if ns is None:
        return ""
    return datetime_from_ns(ns).strftime("%Y-%m-%d %H:%M UTC")


def num(value: float | None, digits: int = 3) -> str:
    """A number to ``digits`` significant digits (``?`` for None)."""
    return "?" if value is None else f"{value:.{digits}g}"


def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=None if autoescape else md_escape,
    )
    env.filters.update(when=when, num=num, md_code=md_code)
    return env


_HTML = _environment(autoescape=True)
_MARKDOWN = _environment(autoescape=False)


def render_html(model: ReportModel) -> str:
    """The self-contained HTML page (plots must already carry their SVG: ``reports.plots.render_all``)."""
    svgs = [Markup(p.svg) for p in model.plots]  # matplotlib's own output, text escaped by it
    return _HTML.get_template("report.html.j2").render(m=model, svgs=svgs, schema_version=SCHEMA_VERSION)


def render_markdown(model: ReportModel) -> str:
    """The Markdown form, for chat and pull requests (no plots: it points at the HTML page)."""
    return _MARKDOWN.get_template("report.md.j2").render(m=model)
