"""Alert webhooks and the investigations API.

``POST /api/alerts/alertmanager`` takes Alertmanager's webhook payload (version 4),
``POST /api/alerts/grafana`` Grafana alerting's; each firing alert becomes a dispatch
request (service / operation from the labels ``service``, ``service_name`` or ``job`` and
``operation`` or ``span_name``; window from ``startsAt`` minus the lookback to
``startsAt`` + 30 min, clipped to the data). The answer lists every decision; dispatched
investigations run in a worker thread (``?wait=true`` answers after they finish).
``GET /api/investigations`` and ``GET /api/investigations/{id}`` read them back. Bad
payloads get 400 naming the field. Alert text is untrusted data, like all telemetry.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import duckdb
import orjson
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request as HttpRequest
from starlette.responses import Response
from starlette.routing import Route

from controller.dispatch import NS_PER_S, Dispatcher, Request, alert_fingerprint, dispatch
from investigations.config import InvestigationsConfig, investigations_config
from investigations.policies import configured_policy
from store import investigations as store_investigations
from store.connection import Store
from store.timeconv import ns_from_datetime

LOOKBACK_S = 900.0
AFTER_S = 1_800.0
BODY_BYTES_MAX = 2 * 1024 * 1024
T = TypeVar("T")


class _Alert(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: str = "firing"
    labels: dict[str, Any] = Field(default_factory=dict)
    annotations: dict[str, Any] = Field(default_factory=dict)
    startsAt: dt.datetime  # noqa: N815  (the payload's field names)
    endsAt: dt.datetime | None = None  # noqa: N815
    fingerprint: str | None = None


class AlertmanagerPayload(BaseModel):
    """Alertmanager webhook payload, version 4."""

    model_config = ConfigDict(extra="allow")

    version: str
    status: str
    alerts: list[_Alert]


class GrafanaPayload(BaseModel):
    """Grafana alerting webhook payload (unified alerting)."""

    model_config = ConfigDict(extra="allow")

    status: str
    alerts: list[_Alert]
    title: str | None = None


def alert_requests(source: str, body: bytes) -> list[Request]:
    """Dispatch requests from a webhook body; ValueError naming the bad field."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"body is not JSON: {exc}") from None
    model = AlertmanagerPayload if source == "alertmanager" else GrafanaPayload
    try:
        payload = model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(body)"
        raise ValueError(f"field {field}: {err['msg']}") from None
    if isinstance(payload, AlertmanagerPayload) and payload.version != "4":
        raise ValueError(f"field version: expected '4', got {payload.version!r}")
    out = []
    for a in payload.alerts:
        labels = {str(k): str(v) for k, v in a.labels.items()}
        service = labels.get("service") or labels.get("service_name") or labels.get("job")
        operation = labels.get("operation") or labels.get("span_name")
        name = labels.get("alertname", "alert")
        summary = str(a.annotations.get("summary", ""))[:200]
        start = ns_from_datetime(a.startsAt)
        out.append(Request(
            source, alert_fingerprint(source, labels, a.fingerprint), f"{name}: {summary}".rstrip(": "),
            start - int(LOOKBACK_S * NS_PER_S), start + int(AFTER_S * NS_PER_S), labels.get("severity", "warning"),
            1, None, service, operation, a.status == "firing", {"labels": labels, "annotations": a.annotations},
        ))  # fmt: skip
    return out


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value, default=str), status_code=status, media_type="application/json")


class _AlertRoutes:
    """Webhook handlers (validate, decide, run) and the investigations read API."""

    def __init__(
        self,
        store: Store,
        dispatcher: Dispatcher,
        policy_factory: Callable[[InvestigationsConfig], Any] | None,
        clock: Callable[[], int],
    ) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.config = dispatcher.config
        self.policy_factory = policy_factory
        self.clock = clock

    def handle(self, source: str, body: bytes) -> dict[str, Any]:
        """Decide on every alert of ``body`` and run the dispatched ones; the decisions and outcomes."""
        factory = self.policy_factory or configured_policy
        done = dispatch(self.store, self.dispatcher, alert_requests(source, body), factory, self.clock(),
                        out_dir=self.config.out_dir)  # fmt: skip
        out = []
        for d in done:
            item: dict[str, Any] = {"fingerprint": d.decision.request.fingerprint, "action": d.decision.action,
                                    "reason": d.decision.reason}  # fmt: skip
            if d.outcome is not None:
                item.update(investigation_id=d.outcome.id, status=d.outcome.status)
            elif d.error is not None:
                item.update(status="failed", error=d.error)
            out.append(item)
        return {"items": out, "count": len(out)}

    def webhook(self, source: str) -> Callable[[HttpRequest], Awaitable[Response]]:
        async def endpoint(request: HttpRequest) -> Response:
            body = await request.body()
            if len(body) > BODY_BYTES_MAX:
                return _json({"error": f"body larger than {BODY_BYTES_MAX} bytes"}, 413)
            try:
                alert_requests(source, body)  # validate before answering
            except ValueError as exc:
                return _json({"error": str(exc)}, 400)
            if request.query_params.get("wait") == "true":
                return _json(await run_in_threadpool(self.handle, source, body))
            threading.Thread(target=self.handle, args=(source, body), daemon=True, name=f"investigate-{source}").start()
            return _json({"accepted": True}, 202)

        return endpoint

    def _read(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        con = self.store.cursor()
        try:
            return fn(con)
        finally:
            con.close()

    async def listing(self, request: HttpRequest) -> Response:
        items = await run_in_threadpool(self._read, store_investigations.list_investigations)
        return _json({"items": items, "count": len(items)})

    async def one(self, request: HttpRequest) -> Response:
        iid = request.path_params["investigation_id"]
        row = await run_in_threadpool(self._read, lambda con: store_investigations.investigation(con, iid))
        if row is None:
            return _json({"error": f"no investigation {iid[:40]!r}"}, 404)
        return _json(row)


def alert_routes(
    store: Store,
    registry: CollectorRegistry,
    settings: Any,
    *,
    policy_factory: Callable[[InvestigationsConfig], Any] | None = None,
    config: InvestigationsConfig | None = None,
    dispatcher: Dispatcher | None = None,
    clock: Callable[[], int] = time.time_ns,
) -> list[Route]:
    """The webhook and investigations routes for ``controller.api.api_app(extra_routes=...)``.

    ``policy_factory`` builds the policy per investigation (default: ``investigations.policy``);
    ``config`` overrides ``settings.investigations``; pass the service's one ``dispatcher`` when
    the scheduler dispatches findings too (it holds the concurrency slots and the metrics, which
    a registry takes once).
    """
    if dispatcher is None:
        dispatcher = Dispatcher(config or investigations_config(settings), registry)
    routes = _AlertRoutes(store, dispatcher, policy_factory, clock)
    return [
        Route("/api/alerts/alertmanager", routes.webhook("alertmanager"), methods=["POST"]),
        Route("/api/alerts/grafana", routes.webhook("grafana"), methods=["POST"]),
        Route("/api/investigations", routes.listing, methods=["GET"]),
        Route("/api/investigations/{investigation_id}", routes.one, methods=["GET"]),
    ]
