"""The triage UI of ``driftscope serve`` in headless Chromium (Debian's, driven by playwright).

A real service on loopback over a store with real findings (the incident store), a real
playbook investigation, a written report, job runs, a learned invariant and a finding named
with hostile strings. Every page loads behind the login without console errors or requests
outside the server; the lifecycle buttons change the finding's state (checked through the
API too); hostile strings stay text; one screenshot per page is kept as an artifact.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from serverproc import ServerProc, start_server

from detectors.base import SignalKey
from detectors.findings import Finding
from reports import generate_report
from store import invariants as store_invariants
from store import jobs as store_jobs
from store.connection import Store
from store.findings import list_findings, write_findings

TOKEN = "ui-test-token"
HOSTILE = "<script>alert(1)</script>"
T0 = 1_772_000_000 * 10**9


def _prepare(store_path: Path, tmp: Path) -> dict[str, str]:
    """Add a playbook investigation, a report, job runs, an invariant and a hostile finding; return ids."""
    store = Store(store_path)
    try:
        con = store.cursor()
        top = list_findings(con, limit=1)[0]
        hostile = Finding(
            detector="invariant_error_free", signal=SignalKey("error_ratio", HOSTILE, "<img src=x onerror=alert(2)>"),
            window_start_ns=T0 - 3600 * 10**9, window_end_ns=T0, change_ns=T0 - 600 * 10**9, severity="info",
            score=0.5, effect=None, effect_text=HOSTILE, before=0.0, after=0.5, p_value=1e-9, q_value=1e-9,
            evidence={"sql": f"SELECT '{HOSTILE}'", "examples": ["<iframe src=javascript:alert(3)>"]},
        )  # fmt: skip
        write_findings(con, [hostile], now_ns=T0, resolve_after_s=10**9)
        store_jobs.record_run(con, job="detect", started_ns=T0, finished_ns=T0 + 10**9, outcome="ok", detail={},
                              error=None)  # fmt: skip
        store_jobs.record_run(con, job="report", started_ns=T0, finished_ns=T0 + 10**9, outcome="failed",
                              detail={}, error=f"Traceback: {HOSTILE}")  # fmt: skip
        store_invariants.replace_learned(con, [{
            "id": "inv-1", "kind": "error_free", "service": "checkout", "operation": "PlaceOrder",
            "span_kind": "SERVER", "subject": HOSTILE, "params": "{}", "support": 100, "confidence": 0.99,
            "source": "learned",
        }], T0 - 10**12, T0)  # fmt: skip
        hostile_id = next(f.id for f in list_findings(con, service=HOSTILE, limit=1))
    finally:
        store.close()
    env = {**os.environ, "DRIFTSCOPE_INVESTIGATIONS__OUT_DIR": str(tmp / "investigations")}
    done = subprocess.run(
        [sys.executable, "-m", "controller", "investigate", top.id, "--policy", "playbook", "--store",
         str(store_path), "--format", "json"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    investigation_id = orjson.loads(done.stdout)["id"]
    store = Store(store_path)
    try:
        model, _ = generate_report(store.cursor(), tmp / "reports", now_ns=T0)
    finally:
        store.close()
    return {"top": top.id, "hostile": hostile_id, "investigation": investigation_id, "report": model.id}


@pytest.fixture(scope="module")
def served(
    incident_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProc, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("ui")
    store_path = tmp / "ui.duckdb"
    shutil.copyfile(incident_store, store_path)
    ids = _prepare(store_path, tmp)
    srv = start_server(store_path, ("DRIFTSCOPE_AUTH__API_TOKEN", TOKEN), ("DRIFTSCOPE_JOBS__ENABLED", "false"))
    yield srv, ids
    srv.stop()


class Session:
    """One logged-in browser context; records console errors, page errors, dialogs and foreign requests."""

    def __init__(self, browser: Any, base: str) -> None:
        self.base = base
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.context = browser.new_context(viewport={"width": 1200, "height": 900})
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.errors.append(f"dialog {d.message}"), d.dismiss()))

    def _route(self, route: Any) -> None:
        if route.request.url.startswith(self.base):
            route.continue_()
        else:
            self.foreign.append(route.request.url)
            route.abort()

    def visit(self, path: str, shot: Path | None = None) -> Any:
        response = self.page.goto(self.base + path, wait_until="load")
        assert response is not None and response.status == 200, (path, response and response.status)
        self.assert_clean()
        if shot is not None:
            self.page.screenshot(path=str(shot), full_page=True)
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        return response

    def assert_clean(self) -> None:
        assert self.errors == [] and self.foreign == []


def _api(srv: ServerProc, path: str) -> Any:
    req = urllib.request.Request(srv.api_url + path, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return orjson.loads(r.read())


def _login(s: Session, token: str) -> None:
    s.page.fill("input[name=token]", token)
    s.page.click("#login button[type=submit]")
    s.page.wait_for_load_state("load")


def test_every_page_behind_the_login(browser: Any, served: tuple[ServerProc, dict[str, str]], artifacts: Path) -> None:
    srv, ids = served
    s = Session(browser, srv.api_url)
    try:
        s.visit("/ui/findings", artifacts / "ui-login.png")
        assert s.page.url.startswith(srv.api_url + "/ui/login")  # redirected: no cookie yet
        _login(s, "wrong")
        assert s.page.locator("#login-error").count() == 1
        _login(s, TOKEN)
        assert s.page.url == srv.api_url + "/ui/findings"
        cookie = next(c for c in s.context.cookies() if c["name"] == "driftscope_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and TOKEN not in cookie["value"]

        response = s.visit("/ui/findings", artifacts / "ui-findings.png")
        csp = response.headers["content-security-policy"]
        assert "script-src" not in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
        api_order = [f["id"] for f in _api(srv, "/api/findings?limit=200")["items"]]
        rows = s.page.locator("tr.finding")
        assert [rows.nth(i).get_attribute("data-finding-id") for i in range(rows.count())] == api_order

        s.visit("/ui/findings?severity=critical&status=open", artifacts / "ui-findings-filtered.png")
        shown = s.page.locator("tr.finding .sev").all_inner_texts()
        assert shown and set(shown) == {"critical"}
        assert len(shown) == len(_api(srv, "/api/findings?severity=critical&status=open")["items"])

        s.visit(f"/ui/findings/{ids['top']}", artifacts / "ui-finding.png")
        svg = s.page.locator("#plot svg")
        assert svg.locator("polyline.signal").count() >= 1 and svg.locator("polygon.band").count() >= 1
        assert svg.locator("line.change").count() == 1
        box = svg.bounding_box()
        assert box is not None and box["width"] > 500
        assert s.page.locator("#sql").inner_text().strip() != ""
        assert any(u in s.page.inner_text("#before-after") for u in ("ms", "%", "/s"))

        s.visit(f"/ui/investigations/{ids['investigation']}", artifacts / "ui-investigation.png")
        assert s.page.locator("tr.step").count() > 0
        claims = s.page.locator("tr.claim")
        assert claims.count() > 0 and "verified" in claims.first.inner_text()
        for path, name in (("/ui/investigations", "investigations"), ("/ui/invariants", "invariants"),
                           ("/ui/reports", "reports"), ("/ui/jobs", "jobs")):  # fmt: skip
            s.visit(path, artifacts / f"ui-{name}.png")
        s.visit("/ui/jobs")
        assert s.page.locator("tr.job.bad").count() == 1 and HOSTILE in s.page.inner_text("tr.job.bad")
        s.visit("/ui/reports")
        s.page.click("#reports a")
        s.page.wait_for_load_state("load")
        s.assert_clean()
        assert s.page.url.endswith(f"/ui/reports/{ids['report']}") and s.page.locator("#headline").count() == 1
        s.page.screenshot(path=str(artifacts / "ui-report.png"), full_page=True)
    finally:
        s.context.close()


def test_lifecycle_buttons_change_the_state(
    browser: Any, served: tuple[ServerProc, dict[str, str]], artifacts: Path
) -> None:
    srv, ids = served
    s = Session(browser, srv.api_url)
    try:
        s.visit("/ui/login")
        _login(s, TOKEN)
        s.visit(f"/ui/findings/{ids['top']}")
        for button, status in (("acknowledge", "acknowledged"), ("resolve", "resolved"), ("reopen", "open")):
            s.page.click(f"#{button}")
            s.page.wait_for_load_state("load")
            s.assert_clean()
            assert s.page.inner_text("#status") == status
            assert _api(srv, f"/api/findings/{ids['top']}")["status"] == status
        s.page.screenshot(path=str(artifacts / "ui-finding-reopened.png"), full_page=True)
    finally:
        s.context.close()


def test_hostile_strings_stay_text(browser: Any, served: tuple[ServerProc, dict[str, str]], artifacts: Path) -> None:
    srv, ids = served
    s = Session(browser, srv.api_url)
    try:
        s.visit("/ui/login")
        _login(s, TOKEN)
        for path in (f"/ui/findings/{ids['hostile']}", "/ui/findings?severity=info", "/ui/invariants", "/ui/jobs"):
            s.visit(path)
            assert s.page.locator("main script, main img, main iframe").count() == 0
            assert HOSTILE in s.page.inner_text("main")
        s.visit(f"/ui/findings/{ids['hostile']}", artifacts / "ui-hostile.png")
        assert "<img src=x onerror=alert(2)>" in s.page.inner_text("#title")
    finally:
        s.context.close()


def test_forms_need_the_session_and_the_same_origin(served: tuple[ServerProc, dict[str, str]]) -> None:
    srv, ids = served
    url = f"{srv.api_url}/ui/findings/{ids['top']}/resolve"
    anonymous = urllib.request.Request(url, data=b"", method="POST")
    opener = urllib.request.build_opener(_NoRedirect())
    with pytest.raises(urllib.error.HTTPError) as err:
        opener.open(anonymous, timeout=30)
    assert err.value.code == 303 and "/ui/login" in err.value.headers["location"]
    headers = {"Authorization": f"Bearer {TOKEN}", "Origin": "http://evil.example"}
    foreign = urllib.request.Request(url, data=b"", method="POST", headers=headers)
    with pytest.raises(urllib.error.HTTPError) as err:
        opener.open(foreign, timeout=30)
    assert err.value.code == 403


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None
