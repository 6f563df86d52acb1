"""The HTTP API of ``driftscope serve``: health, readiness and Prometheus metrics.

Later capabilities (findings, invariants, reports, alert webhooks) add their routes here.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def api_app(registry: CollectorRegistry, ready: Callable[[], tuple[bool, str]]) -> Starlette:
    """The API app; ``ready`` says whether the service can take traffic, and why not."""

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ok, reason = ready()
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "reason": reason}, status_code=200 if ok else 503
        )

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
        ]
    )
