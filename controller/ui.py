"""The triage UI of ``driftscope serve``: server-rendered pages on the API port under ``/ui/``.

Pages: findings (filters as the API's, sorted as the API sorts), one finding (its series
around the change with the baseline band, deploys and the change point; the effect in
units; agreeing detectors; the evidence SQL; acknowledge / resolve / reopen),
investigations (steps, tool calls, claims with their verified marks, proposed patches),
invariants and spec drift, reports, job health.

Security: with ``auth.api_token`` set, a page needs the bearer token or the session
cookie the login page sets (HttpOnly, SameSite=Strict; its value is an HMAC of the token,
never the token). Forms that change state also need a same-origin ``Origin`` when the
browser sends one. Every page carries a Content-Security-Policy with no script source and
no inline style: templates autoescape, so telemetry strings stay text, and the plots are
SVG with presentation attributes only. Nothing is fetched from outside the server.
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from controller.auth import token_ok
from controller.ui_data import finding_page, findings_page, invariants_page, investigation_page
from store import findings as store_findings
from store import investigations as store_investigations
from store import jobs as store_jobs
from store.connection import Store
from store.findings import SEVERITIES, STATUSES, Status

SESSION_COOKIE = "driftscope_session"
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""The pages' policy: no scripts at all, styles from the server's own stylesheet only."""
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
"""A stored drift report (self-contained: inline CSS and SVG, no scripts), as ``/api/reports/{id}/html``."""
_ACTIONS: dict[str, Status] = {"acknowledge": "acknowledged", "resolve": "resolved", "reopen": "open"}
_HERE = Path(__file__).parent
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_HERE / "templates" / "ui"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def session_value(token: str) -> str:
    """The session cookie's value for ``token``: an HMAC, so the cookie never carries the token itself."""
    return hmac.new(token.encode(), b"driftscope-ui-session-v1", hashlib.sha256).hexdigest()


def _json_text(value: Any) -> str:
    return orjson.dumps(value, default=str, option=orjson.OPT_INDENT_2).decode()


_ENV.filters["json"] = _json_text


class UiRoutes:
    """Handlers of the ``/ui/`` pages over one store."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], int],
        token: str = "",
        jobs_running: Callable[[], dict[str, int]] = dict,
    ) -> None:
        self.store = store
        self.clock = clock
        self.token = token
        self.jobs_running = jobs_running

    def _authed(self, request: Request) -> bool:
        if not self.token:
            return True
        if token_ok(request.headers.get("authorization"), self.token):
            return True
        cookie = request.cookies.get(SESSION_COOKIE, "")
        return hmac.compare_digest(cookie.encode(), session_value(self.token).encode())

    def _login_redirect(self, request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/ui/login?" + urllib.parse.urlencode({"next": target}), status_code=303)

    def _page(self, template: str, status: int = 200, **context: Any) -> Response:
        text = _ENV.get_template(template).render(auth=bool(self.token), **context)
        return Response(text, status_code=status, media_type="text/html; charset=utf-8", headers=_headers(PAGE_CSP))

    async def _read(self, fn: Callable[[Any], Any]) -> Any:
        def work() -> Any:
            con = self.store.cursor()
            try:
                return fn(con)
            finally:
                con.close()

        return await run_in_threadpool(work)

    async def _render(self, request: Request, template: str, fn: Callable[[Any], dict[str, Any] | None]) -> Response:
        if not self._authed(request):
            return self._login_redirect(request)
        context = await self._read(fn)
        if context is None:
            return self._page("missing.html.j2", 404, path=request.url.path)
        return self._page(template, **context)

    async def login(self, request: Request) -> Response:
        nxt = _local(request.query_params.get("next"))
        if request.method == "GET":
            return self._page("login.html.j2", next=nxt, failed=False)
        form = urllib.parse.parse_qs((await request.body()).decode("utf-8", "replace"))
        nxt = _local(form.get("next", [nxt])[0])
        given = form.get("token", [""])[0]
        if not self.token or not hmac.compare_digest(given.encode(), self.token.encode()):
            # 200, not 401: the form is shown again with the message (a browser logs a 401 as an error)
            return self._page("login.html.j2", next=nxt, failed=bool(self.token))
        response = RedirectResponse(nxt, status_code=303)
        response.set_cookie(
            SESSION_COOKIE, session_value(self.token), httponly=True, samesite="strict", path="/",
            secure=request.url.scheme == "https",
        )  # fmt: skip
        return response

    async def logout(self, request: Request) -> Response:
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/ui/findings", status_code=303)

    async def findings(self, request: Request) -> Response:
        q = request.query_params
        filters = {
            "service": q.get("service") or None,
            "detector": q.get("detector") or None,
            "severity": q.get("severity") if q.get("severity") in SEVERITIES else None,
            "status": q.get("status") if q.get("status") in STATUSES else None,
        }
        offset = int(q["offset"]) if q.get("offset", "").isdigit() else 0
        return await self._render(request, "findings.html.j2", lambda con: findings_page(con, filters, offset))

    async def finding(self, request: Request) -> Response:
        fid = request.path_params["finding_id"]
        return await self._render(request, "finding.html.j2", lambda con: finding_page(con, fid))

    async def transition(self, request: Request) -> Response:
        if not self._authed(request):
            return self._login_redirect(request)
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
            return Response("cross-origin form refused", status_code=403, media_type="text/plain")
        fid = request.path_params["finding_id"]
        status = _ACTIONS.get(request.path_params["action"])
        if status is None:
            return self._page("missing.html.j2", 404, path=request.url.path)

        def write(con: Any) -> bool:
            return store_findings.set_status(con, fid, status, self.clock())

        if not await self._read(write):
            return self._page("missing.html.j2", 404, path=request.url.path)
        return RedirectResponse(f"/ui/findings/{urllib.parse.quote(fid, safe='')}", status_code=303)

    async def investigations(self, request: Request) -> Response:
        def read(con: Any) -> dict[str, Any]:
            items = store_investigations.list_investigations(con, 200)
            return {"items": items, "total": store_investigations.count_investigations(con)}

        return await self._render(request, "investigations.html.j2", read)

    async def investigation(self, request: Request) -> Response:
        iid = request.path_params["investigation_id"]
        return await self._render(request, "investigation.html.j2", lambda con: investigation_page(con, iid))

    async def invariants(self, request: Request) -> Response:
        return await self._render(request, "invariants.html.j2", invariants_page)

    async def reports(self, request: Request) -> Response:
        def read(con: Any) -> dict[str, Any]:
            from reports import list_reports

            return {"items": list_reports(con, 200)}

        return await self._render(request, "reports.html.j2", read)

    async def report(self, request: Request) -> Response:
        if not self._authed(request):
            return self._login_redirect(request)
        rid = request.path_params["report_id"]

        def read(con: Any) -> str | None:
            from reports import get_report

            found = get_report(con, rid)
            html = (found or {}).get("files", {}).get("html")
            return html if html and Path(html).is_file() else None

        path = await self._read(read)
        if path is None:
            return self._page("missing.html.j2", 404, path=request.url.path)
        return FileResponse(path, media_type="text/html; charset=utf-8", headers=_headers(REPORT_CSP))

    async def jobs(self, request: Request) -> Response:
        running = self.jobs_running()
        return await self._render(
            request, "jobs.html.j2", lambda con: {"items": store_jobs.job_summaries(con, running)}
        )

    async def stylesheet(self, request: Request) -> Response:
        return FileResponse(_HERE / "static" / "ui.css", media_type="text/css", headers=_headers(PAGE_CSP))

    def routes(self) -> list[Route]:
        return [
            Route("/ui", self.home),
            Route("/ui/", self.home),
            Route("/ui/login", self.login, methods=["GET", "POST"]),
            Route("/ui/logout", self.logout, methods=["POST"]),
            Route("/ui/ui.css", self.stylesheet),
            Route("/ui/findings", self.findings),
            Route("/ui/findings/{finding_id}", self.finding),
            Route("/ui/findings/{finding_id}/{action:str}", self.transition, methods=["POST"]),
            Route("/ui/investigations", self.investigations),
            Route("/ui/investigations/{investigation_id}", self.investigation),
            Route("/ui/invariants", self.invariants),
            Route("/ui/reports", self.reports),
            Route("/ui/reports/{report_id}", self.report),
            Route("/ui/jobs", self.jobs),
        ]


def _headers(csp: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",  # no-referrer would make form posts say `Origin: null`
        "Cache-Control": "no-store",
    }


def _local(target: str | None) -> str:
    """``target`` when it is a page of this UI, else the findings list (no open redirect)."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/findings"


def ui_routes(
    store: Store, *, token: str = "", clock: Callable[[], int], jobs_running: Callable[[], dict[str, int]] = dict
) -> list[Route]:
    """The UI's routes, to mount on the API app (``jobs_running``: the jobs running now, job -> start ns)."""
    return UiRoutes(store, clock, token, jobs_running).routes()
