"""The HTTP API of ``driftscope serve``: health, metrics, findings, invariants, reports, jobs.

JSON with stable shapes (documented in the README): lists come as ``{"items": [...],
"count": n}``; errors as ``{"error": "..."}`` naming the bad parameter. Timestamps are
ISO-8601 UTC strings. ``/api/*`` takes an optional bearer token (``auth.api_token``);
``/healthz``, ``/readyz`` and ``/metrics`` stay open for probes and scrapers. Store reads
run on their own cursor in a worker thread, so a slow query never blocks ingest.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from controller.auth import BearerAuth
from store import findings as store_findings
from store import invariants as store_invariants
from store import jobs as store_jobs
from store.connection import Store
from store.errors import StoreError
from store.findings import SEVERITIES, STATUSES, FindingRecord, Status
from store.sqlguard import query_capped
from store.timeconv import iso_from_ns, naive_from_ns

LIMIT_MAX = 5_000
SQL_ROWS_MAX = 10_000
"""Rows ``POST /api/sql`` returns at most (a request may ask for fewer with ``rows_max``)."""
SQL_TIMEOUT_S = 10.0
"""Time after which ``POST /api/sql`` interrupts a query."""
_TRANSITIONS: dict[str, Status] = {"acknowledge": "acknowledged", "resolve": "resolved", "reopen": "open"}


class ApiError(Exception):
    """A request the API refuses: HTTP status and a message naming what is wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value, default=_default), status_code=status, media_type="application/json")


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat().replace("+00:00", "Z")
    return str(value)


def _finding_json(f: FindingRecord) -> dict[str, Any]:
    """A finding as the API answers it: the table's columns, times ISO-8601 UTC."""
    out = asdict(f)
    for key, column in _TIME_COLUMNS.items():
        ns = out.pop(key)
        out[column] = None if ns is None else iso_from_ns(ns)
    return {name: out[name] for name in _FINDING_FIELDS}


_TIME_COLUMNS = {
    "window_start_ns": "window_start", "window_end_ns": "window_end", "change_ns": "change_time",
    "first_seen_ns": "first_seen", "last_seen_ns": "last_seen", "acknowledged_ns": "acknowledged_at",
    "resolved_ns": "resolved_at",
}  # fmt: skip
_FINDING_FIELDS = (
    "id", "fingerprint", "detector", "kind", "service", "operation", "metric", "attributes", "window_start",
    "window_end", "change_time", "severity", "score", "effect", "effect_text", "before", "after", "p_value",
    "q_value", "evidence", "status", "first_seen", "last_seen", "runs", "acknowledged_at", "resolved_at",
)  # fmt: skip
"""Keys of a finding in API answers, in the table's column order."""


def _choice(request: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query_params.get(name)
    if value is not None and value not in allowed:
        raise ApiError(400, f"{name} must be one of {', '.join(allowed)} (got {value[:40]!r})")
    return value


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", "500")
    if not raw.isdigit() or not 1 <= int(raw) <= LIMIT_MAX:
        raise ApiError(400, f"limit must be an integer in 1..{LIMIT_MAX} (got {raw[:20]!r})")
    return int(raw)


class JobControl(Protocol):
    """What the API needs of the service's job runner (``controller.jobs.JobRunner``)."""

    jobs: dict[str, Any]

    def running(self) -> dict[str, int]:
        """Jobs running now -> start (ns)."""
        ...

    def run(self, name: str, *, wait: bool = False) -> Any:
        """Run job ``name`` (with ``wait``: after the run going now, if any) and return its outcome."""
        ...


class _StoreRoutes:
    """Handlers reading (and, for the finding lifecycle, writing) the store."""

    def __init__(self, store: Store, clock: Callable[[], int], jobs: JobControl | None) -> None:
        self.store = store
        self.clock = clock
        self.job_control = jobs

    async def _run(self, fn: Callable[[Any], Any]) -> Response:
        def work() -> Any:
            con = self.store.cursor()
            try:
                return fn(con)
            finally:
                con.close()

        try:
            return _json(await run_in_threadpool(work))
        except ApiError as exc:
            return _json({"error": str(exc)}, exc.status)

    async def findings(self, request: Request) -> Response:
        try:
            filters: dict[str, Any] = {
                "service": request.query_params.get("service"),
                "detector": request.query_params.get("detector"),
                "severity": _choice(request, "severity", SEVERITIES),
                "status": _choice(request, "status", STATUSES),
            }
            limit = _limit(request)
        except ApiError as exc:
            return _json({"error": str(exc)}, exc.status)

        def read(con: Any) -> dict[str, Any]:
            items = [_finding_json(f) for f in store_findings.list_findings(con, **filters, limit=limit)]
            return {"items": items, "count": len(items)}

        return await self._run(read)

    async def finding(self, request: Request) -> Response:
        fid = request.path_params["finding_id"]

        def read(con: Any) -> dict[str, Any]:
            found = store_findings.finding(con, fid)
            if found is None:
                raise ApiError(404, f"no finding {fid[:40]!r}")
            return _finding_json(found)

        return await self._run(read)

    async def transition(self, request: Request) -> Response:
        fid = request.path_params["finding_id"]
        status: Status | None = _TRANSITIONS.get(request.path_params["action"])
        if status is None:
            return _json({"error": f"action must be one of {', '.join(_TRANSITIONS)}"}, 404)

        def write(con: Any) -> dict[str, Any]:
            if not store_findings.set_status(con, fid, status, self.clock()):
                raise ApiError(404, f"no finding {fid[:40]!r}")
            return {"id": fid, "status": status}

        return await self._run(write)

    async def invariants(self, request: Request) -> Response:
        try:
            limit = _limit(request)
        except ApiError as exc:
            return _json({"error": str(exc)}, exc.status)

        def read(con: Any) -> dict[str, Any]:
            items = store_invariants.listing(con, limit)
            return {"items": items, "count": len(items)}

        return await self._run(read)

    async def reports(self, request: Request) -> Response:
        try:
            limit = _limit(request)
        except ApiError as exc:
            return _json({"error": str(exc)}, exc.status)

        def read(con: Any) -> dict[str, Any]:
            from reports import list_reports  # the reports package (matplotlib) loads when first asked for

            items = list_reports(con, limit=limit)
            return {"items": items, "count": len(items)}

        return await self._run(read)

    async def report(self, request: Request) -> Response:
        rid = request.path_params["report_id"]

        def read(con: Any) -> dict[str, Any]:
            from reports import get_report

            found = get_report(con, rid)
            if found is None:
                raise ApiError(404, f"no report {rid[:60]!r}")
            return found

        return await self._run(read)

    async def report_html(self, request: Request) -> Response:
        """The report page itself, with a policy that forbids scripts and any network access."""
        rid = request.path_params["report_id"]

        def read() -> bytes | None:
            con = self.store.cursor()
            try:
                from reports import get_report

                found = get_report(con, rid)
            finally:
                con.close()
            html = (found or {}).get("files", {}).get("html")
            return Path(html).read_bytes() if html and Path(html).is_file() else None

        page = await run_in_threadpool(read)
        if page is None:
            return _json({"error": f"no HTML for report {rid[:60]!r}"}, 404)
        csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
        return Response(page, media_type="text/html; charset=utf-8", headers={"Content-Security-Policy": csp})

    async def gate(self, request: Request) -> Response:
        """``POST /api/gate``: the observability gate for deploy controllers (see ``driftscope gate``)."""
        from controller.gate import handle_gate_request  # the gate's statistics load when first asked for

        body = await request.body()

        def work() -> tuple[int, dict[str, Any]]:
            con = self.store.cursor()
            try:
                return handle_gate_request(con, body)
            finally:
                con.close()

        status, payload = await run_in_threadpool(work)
        return _json(payload, status)

    async def sql(self, request: Request) -> Response:
        """``POST /api/sql``: one read-only SELECT, capped (see ``store.sqlguard``)."""
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _json({"error": 'body must be JSON: {"sql": "SELECT ...", "rows_max": n}'}, 400)
        query = body.get("sql") if isinstance(body, dict) else None
        if not isinstance(query, str) or not query.strip():
            return _json({"error": "field sql: a non-empty string is required"}, 400)
        rows_max = body.get("rows_max", SQL_ROWS_MAX)
        if not isinstance(rows_max, int) or isinstance(rows_max, bool) or not 1 <= rows_max <= SQL_ROWS_MAX:
            return _json({"error": f"field rows_max: an integer in 1..{SQL_ROWS_MAX}"}, 400)

        timeout_s = body.get("timeout_s", SQL_TIMEOUT_S)
        if not isinstance(timeout_s, int | float) or isinstance(timeout_s, bool) or not 0 < timeout_s <= SQL_TIMEOUT_S:
            return _json({"error": f"field timeout_s: a number of seconds in (0, {SQL_TIMEOUT_S:g}]"}, 400)

        def run(con: Any) -> dict[str, Any]:
            try:
                result = query_capped(con, query, rows_max=rows_max, timeout_s=float(timeout_s))
            except StoreError as exc:
                raise ApiError(400, str(exc)) from None
            return {
                "columns": result.columns, "rows": result.rows, "count": len(result.rows),
                "truncated": result.truncated, "rows_max": rows_max, "seconds": round(result.seconds, 4),
            }  # fmt: skip

        return await self._run(run)

    async def jobs(self, request: Request) -> Response:
        def read(con: Any) -> dict[str, Any]:
            running = self.job_control.running() if self.job_control else {}
            items = store_jobs.job_summaries(con, running)
            return {"items": items, "count": len(items)}

        return await self._run(read)

    async def run_job(self, request: Request) -> Response:
        """Run a job now (after its run going now, if any) and answer with the outcome; the request lasts
        as long as the run. 200 whether the job succeeded or failed: ``outcome`` says which."""
        name = request.path_params["job"]
        control = self.job_control
        if control is None or name not in control.jobs:
            known = ", ".join(sorted(control.jobs)) if control else "none (this app runs no jobs)"
            return _json({"error": f"no job {name[:80]!r}; jobs: {known}"}, 404)
        o = await run_in_threadpool(lambda: control.run(name, wait=True))
        return _json({
            "job": o.job, "outcome": o.outcome, "detail": o.detail, "error": o.error,
            "started_at": naive_from_ns(o.started_ns), "finished_at": naive_from_ns(o.finished_ns),
        })  # fmt: skip

    def routes(self) -> list[Route]:
        return [
            Route("/api/findings", self.findings),
            Route("/api/findings/{finding_id}", self.finding),
            Route("/api/findings/{finding_id}/{action:str}", self.transition, methods=["POST"]),
            Route("/api/invariants", self.invariants),
            Route("/api/reports", self.reports),
            Route("/api/reports/{report_id}", self.report),
            Route("/api/reports/{report_id}/html", self.report_html),
            Route("/api/jobs", self.jobs),
            Route("/api/jobs/{job}/run", self.run_job, methods=["POST"]),
            Route("/api/gate", self.gate, methods=["POST"]),
            Route("/api/sql", self.sql, methods=["POST"]),
        ]


def api_app(
    registry: CollectorRegistry,
    ready: Callable[[], tuple[bool, str]],
    store: Store | None = None,
    *,
    api_token: str = "",
    clock: Callable[[], int] = time.time_ns,
    extra_routes: list[Route] | None = None,
    jobs: JobControl | None = None,
) -> ASGIApp:
    """The API app; ``ready`` says whether the service can take traffic, and why not; ``jobs`` the
    service's job runner (the runs going now in ``/api/jobs``, ``POST /api/jobs/{job}/run``)."""

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ok, reason = ready()
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "reason": reason}, status_code=200 if ok else 503
        )

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    routes = [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)]
    if store is not None:
        store_routes = _StoreRoutes(store, clock, jobs)
        routes += store_routes.routes()
    routes += extra_routes or []

    async def not_found(request: Request, exc: Exception) -> Response:
        return _json({"error": f"no route {request.method} {request.url.path[:80]}"}, 404)

    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
    return BearerAuth(app, api_token, protects=lambda path: path.startswith("/api/"))
