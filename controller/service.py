"""``driftscope serve``: wires store, queue, receivers and API into one process.

Start order: store (migrations) -> writer queue -> gRPC receiver -> HTTP receiver and
API. Shutdown on SIGTERM/SIGINT runs in reverse: stop accepting, let in-flight requests
finish, commit everything queued, close the store. Bound ports are printed as one JSON
line on stdout once every listener is up, so scripts and tests can wait on that line
instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import uvicorn
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Receive, Scope, Send

from collector.grpc_server import start_grpc_server
from collector.http_server import HttpLimits, otlp_http_app
from collector.ingest import Ingestor
from collector.metrics import IngestMetrics
from collector.writer import IngestQueue, QueueLimits
from controller.api import api_app
from controller.api_alerts import alert_routes
from controller.auth import BearerAuth, GrpcBearerAuth
from controller.config import Settings
from controller.dispatch import Dispatcher
from controller.jobs import (
    JobFn,
    JobRunner,
    detect_job,
    ingest_sink_for,
    plane_for,
    report_job,
    retention_job,
    rollup_job_for,
)
from controller.scheduler import Scheduler
from controller.telemetry import FindingsCollector, configure_logging, configure_tracing
from controller.telemetry_signals import SignalsCollector
from controller.ui import ui_routes
from store.connection import Store

log = logging.getLogger("driftscope.serve")


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to us (we run several)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(address: str) -> socket.socket:
    host, _, port = address.rpartition(":")
    # IPPROTO_TCP (not 0) so asyncio sets TCP_NODELAY on accepted connections; without it
    # Nagle + delayed ACK hold every response with a body for ~40 ms.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), int(port)))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {address}: {exc.strerror}") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


@dataclass
class Service:
    """The running pieces of one ``driftscope serve`` process."""

    settings: Settings
    registry: CollectorRegistry
    store: Store
    queue: IngestQueue
    ingestor: Ingestor
    runner: JobRunner
    scheduler: Scheduler | None
    dispatcher: Dispatcher

    @classmethod
    def open(cls, settings: Settings) -> Service:
        registry = CollectorRegistry()
        metrics = IngestMetrics(registry)
        metrics.queue_rows_max.set(settings.ingest.queue_rows_max)
        store = Store(settings.store)
        registry.register(FindingsCollector(store, settings.telemetry.top_scores_max))
        registry.register(SignalsCollector(store, series_max=settings.telemetry.top_scores_max))
        ing = settings.ingest
        queue = IngestQueue(
            ingest_sink_for(settings, store),
            QueueLimits(ing.queue_rows_max, ing.queue_bytes_max, ing.batch_rows_max, ing.flush_interval_s),
            on_commit=metrics.observe_commit,
        )
        tracer = configure_tracing(settings.telemetry.otlp_endpoint, _version())
        dispatcher = Dispatcher(settings.investigations, registry)  # one per registry: it owns metrics
        runner = JobRunner(store, scheduled_jobs(store, settings, dispatcher), registry, tracer=tracer)
        scheduler = Scheduler(runner, settings.jobs) if settings.jobs.enabled else None
        return cls(settings, registry, store, queue, Ingestor(queue, metrics), runner, scheduler, dispatcher)

    def ready(self) -> tuple[bool, str]:
        if not self.queue.alive():
            return False, "writer is not running"
        if self.queue.depth_rows >= self.settings.ingest.queue_rows_max:
            return False, "ingest queue is full"
        return True, "ok"

    async def run(self) -> None:
        """Serve until SIGTERM/SIGINT, then shut down gracefully; always closes the store."""
        ing = self.settings.ingest
        srv = self.settings.server
        grpc_server = None
        try:
            grpc_server, grpc_port = start_grpc_server(
                self.ingestor,
                srv.otlp_grpc,
                message_bytes_max=ing.decompressed_bytes_max,
                retry_after_s=ing.retry_after_s,
                concurrency_max=ing.concurrency_max,
                interceptors=[GrpcBearerAuth(self.settings.auth.ingest_token)]
                if self.settings.auth.ingest_token
                else [],
            )
            otlp_sock = _bind(srv.otlp_http)
            api_sock = _bind(srv.http)
            limits = HttpLimits(ing.body_bytes_max, ing.decompressed_bytes_max, ing.retry_after_s)
            otlp_app = BearerAuth(otlp_http_app(self.ingestor, limits), self.settings.auth.ingest_token)
            otlp = _Server(
                uvicorn.Config(
                    otlp_app,
                    log_level="warning",
                    access_log=False,
                    limit_concurrency=ing.concurrency_max,
                    timeout_graceful_shutdown=30,
                )
            )
            alerts = alert_routes(self.store, self.registry, self.settings, dispatcher=self.dispatcher)
            ui = ui_routes(
                self.store, token=self.settings.auth.api_token, clock=time.time_ns, jobs_running=self.runner.running
            )
            app = api_app(
                self.registry,
                self.ready,
                self.store,
                api_token=self.settings.auth.api_token,
                extra_routes=alerts + ui,
                jobs=self.runner,
            )
            api = _Server(uvicorn.Config(one_port(app, otlp_app), log_level="warning", access_log=False))
            await self._serve_until_signal(
                otlp,
                api,
                otlp_sock,
                api_sock,
                {"otlp_grpc": grpc_port},
            )
        finally:
            if grpc_server is not None:
                grpc_server.stop(grace=10).wait()
            self.close()

    def start_jobs(self) -> None:
        """Start the scheduler (the service does this once its listeners are up)."""
        if self.scheduler is not None:
            self.scheduler.start()

    async def _serve_until_signal(
        self,
        otlp: uvicorn.Server,
        api: uvicorn.Server,
        otlp_sock: socket.socket,
        api_sock: socket.socket,
        ports: dict[str, int],
    ) -> None:
        loop = asyncio.get_running_loop()

        def stop() -> None:
            otlp.should_exit = True
            api.should_exit = True

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        tasks = [asyncio.create_task(otlp.serve([otlp_sock])), asyncio.create_task(api.serve([api_sock]))]
        while not (otlp.started and api.started) and not any(t.done() for t in tasks):
            await asyncio.sleep(0.01)  # uvicorn offers no startup event; poll its flag
        if otlp.started and api.started:
            listening = {
                "event": "listening",
                "otlp_http": otlp_sock.getsockname()[1],
                **ports,
                "http": api_sock.getsockname()[1],
                "store": str(self.store.path),
            }
            self.start_jobs()
            print(json.dumps(listening), flush=True)
        await asyncio.gather(*tasks)

    def close(self) -> None:
        """Finish the running job, commit everything queued, close the store (in that order)."""
        if self.scheduler is not None:
            self.scheduler.shutdown()
        self.queue.close()
        self.store.close()


def one_port(api: ASGIApp, otlp: ASGIApp) -> ASGIApp:
    """The API app with OTLP/HTTP (``/v1/traces``, ``/v1/metrics``, ``/v1/logs``) on the same port: one
    port is all a platform like Cloud Run exposes. The OTLP paths keep their own (ingest) token."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            await otlp(scope, receive, send)
        else:
            await api(scope, receive, send)

    return app


def scheduled_jobs(store: Store, settings: Settings, dispatcher: Dispatcher) -> dict[str, JobFn]:
    """The jobs the scheduler runs, by name."""
    plane = plane_for(settings)
    return {
        "rollup": rollup_job_for(plane),
        "detect": detect_job(store, settings, dispatcher, plane),
        "report": report_job(settings),
        "retention": retention_job(store, settings),
    }


def _version() -> str:
    try:
        return version("driftscope")
    except PackageNotFoundError:
        return "unknown"


def serve(settings: Settings) -> None:
    """Run the service in the foreground (the ``driftscope serve`` command)."""
    configure_logging(settings.telemetry.log_format)
    service = Service.open(settings)
    asyncio.run(service.run())
