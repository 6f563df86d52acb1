"""The HTML report in headless Chromium (Debian's, driven by playwright): renders, no console
errors, no network, plots present, hostile strings inert; screenshots saved as artifacts."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from detectors.base import SignalKey
from detectors.findings import Finding
from reports import generate_report
from store.connection import Store
from store.findings import write_findings


class Visit:
    """A page opened from a report file, with what it logged, raised, fetched and popped up."""

    def __init__(self, browser: Any, html: Path) -> None:
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page = browser.new_page(viewport={"width": 1100, "height": 900})
        self.page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        self.page.on("dialog", self._dialog)
        self.page.route("**/*", self._route)
        self.page.goto(html.as_uri(), wait_until="load")

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url.startswith("file:"):
            route.continue_()
            return
        self.requests.append(url)  # anything else would need a network: the page must not ask
        route.abort()

    def screenshot(self, path: Path) -> Path:
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def assert_clean(self) -> None:
        assert self.console_errors == [] and self.page_errors == []
        assert self.requests == [] and self.dialogs == []


def _png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_incident_report_renders_with_its_plots(
    browser: Any, incident_store: Path, tmp_path: Path, artifacts: Path
) -> None:
    store_path = tmp_path / "incident.duckdb"
    shutil.copyfile(incident_store, store_path)
    store = Store(store_path)
    try:
        model, paths = generate_report(store.cursor(), tmp_path / "out", now_ns=0)
    finally:
        store.close()
    visit = Visit(browser, paths["html"])
    try:
        visit.assert_clean()
        page = visit.page
        assert page.inner_text("#headline") == model.headline
        figures = page.locator("figure.plot")
        assert figures.count() == len(model.plots) > 0
        for i in range(figures.count()):
            svg = figures.nth(i).locator("svg")
            box = svg.bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 100
            assert svg.locator("path").count() > 10  # series, band, markers, axes
            assert figures.nth(i).get_attribute("data-signal") == model.plots[i].label
        assert page.locator("tr.finding").count() == len(model.findings)
        assert page.locator("#invariants .violation").count() == len(model.invariant_violations) == 1
        _png(visit.screenshot(artifacts / "report-incident.png"))
    finally:
        visit.page.close()


def test_quiet_report_renders_its_one_line(browser: Any, quiet_store: Path, tmp_path: Path, artifacts: Path) -> None:
    store_path = tmp_path / "quiet.duckdb"
    shutil.copyfile(quiet_store, store_path)
    store = Store(store_path)
    try:
        model, paths = generate_report(store.cursor(), tmp_path / "out", now_ns=0)
    finally:
        store.close()
    visit = Visit(browser, paths["html"])
    try:
        visit.assert_clean()
        assert visit.page.inner_text("#headline") == model.headline
        assert model.headline.startswith("No drift: 0 findings across ")
        assert visit.page.locator("figure.plot").count() == 0 and visit.page.locator("#findings").count() == 0
        _png(visit.screenshot(artifacts / "report-quiet.png"))
    finally:
        visit.page.close()


def test_hostile_service_name_is_shown_as_text(browser: Any, tmp_path: Path, artifacts: Path) -> None:
    hostile = "<script>alert(1)</script>"
    t0 = 1_772_000_000 * 10**9
    store = Store(tmp_path / "hostile.duckdb")
    try:
        con = store.cursor()
        finding = Finding(
            detector="invariant_x", signal=SignalKey("error_ratio", hostile, "<img src=x onerror=alert(2)>"),
            window_start_ns=t0 - 3600 * 10**9, window_end_ns=t0, change_ns=t0 - 600 * 10**9, severity="critical",
            score=1.0, effect=None, effect_text=hostile, before=0.0, after=0.5, p_value=1e-9, q_value=1e-9,
            evidence={"trace_ids": [hostile], "examples": ["<iframe src=javascript:alert(3)>"], "sql": hostile},
        )  # fmt: skip
        write_findings(con, [finding], now_ns=t0, resolve_after_s=1800)
        _, paths = generate_report(con, tmp_path / "out", now_ns=t0)
    finally:
        store.close()
    visit = Visit(browser, paths["html"])
    try:
        visit.assert_clean()  # no alert dialog, no fetch of x, no error
        page = visit.page
        assert page.locator("script, img, iframe").count() == 0
        assert hostile in page.inner_text("#headline")
        assert hostile in page.inner_text("tr.finding") and "<img src=x onerror=alert(2)>" in page.inner_text("body")
        _png(visit.screenshot(artifacts / "report-hostile.png"))
    finally:
        visit.page.close()
