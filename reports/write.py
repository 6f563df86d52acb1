"""Write a report's forms to disk and index it: the one entry point for the CLI and the nightly job."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import duckdb

from reports.build import DAY_S, build_report
from reports.index import FILES, save_index
from reports.json_out import render_json
from reports.model import InvestigationLink, ReportModel
from reports.plots import render_all
from reports.render import render_html, render_markdown

FORMATS = tuple(FILES)
"""``html``, ``markdown``, ``json``."""


def _write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a report."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; a report is meant to be read (and served)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def relink(model: ReportModel, directory: Path) -> ReportModel:
    """``model`` with every investigation link relative to ``directory`` (where the report is written), so
    the links resolve wherever the two folders sit, and the report folder can move with its investigations."""
    base = directory.resolve()

    def rel(link: InvestigationLink) -> InvestigationLink:
        if link.href is None or not Path(link.href).is_absolute():
            return link
        return replace(link, href=Path(os.path.relpath(link.href, base)).as_posix())

    findings = tuple(replace(f, investigations=tuple(rel(i) for i in f.investigations)) for f in model.findings)
    return replace(model, findings=findings)


def write_report(model: ReportModel, out_dir: Path, formats: Iterable[str] = FORMATS) -> dict[str, Path]:
    """Write the chosen forms into ``out_dir / model.id``; return {form: path}.

    Plots are rendered (SVG) only when HTML is written. Unknown forms are a ValueError
    naming them.
    """
    chosen = list(dict.fromkeys(formats))
    unknown = [f for f in chosen if f not in FILES]
    if unknown or not chosen:
        raise ValueError(f"formats must be some of {', '.join(FORMATS)}; got {chosen}")
    directory = Path(out_dir) / model.id
    directory.mkdir(parents=True, exist_ok=True)
    model = relink(model, directory)
    if "html" in chosen and any(not p.svg for p in model.plots):
        model = replace(model, plots=render_all(model.plots))
    render = {"html": render_html, "markdown": render_markdown, "json": render_json}
    paths: dict[str, Path] = {}
    for form in chosen:
        path = directory / FILES[form]
        _write_atomic(path, render[form](model))
        paths[form] = path
    return paths


def generate_report(
    con: duckdb.DuckDBPyConnection,
    out_dir: Path,
    *,
    window_end_ns: int | None = None,
    window_s: float = DAY_S,
    formats: Iterable[str] = FORMATS,
    now_ns: int | None = None,
) -> tuple[ReportModel, dict[str, Path]]:
    """Build, write and index the report of the ``window_s`` seconds ending at ``window_end_ns``.

    What ``driftscope report`` and the nightly job call. ``con`` must be able to write (the
    ``reports`` index table).
    """
    model = build_report(con, window_end_ns, window_s, now_ns=now_ns)
    paths = write_report(model, out_dir, formats)
    save_index(con, model, Path(out_dir) / model.id)
    return model, paths
