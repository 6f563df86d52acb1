"""Shared pieces of the investigations tests: small simulated stores and a local Messages API server.

``ScriptedMessagesServer`` is a real HTTP server on 127.0.0.1 speaking the Anthropic
Messages API (``POST /v1/messages``): it answers each request with the next scripted
step (a function of the request body, so a step can look at the tool results it got),
records every request body, and can answer 529 (overloaded) first to exercise the SDK's
retries. Nothing here reaches the internet.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from analysis import rollup_all
from simulator.run import DEFAULT_START_NS, simulate
from simulator.scenario import load_scenario
from simulator.sinks import StoreSink
from store.connection import Store

NS_PER_MIN = 60_000_000_000
Step = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]


def build_store(path: Path, scenario: str, *, rate: float, from_minute: int, until_minute: int, seed: int = 3) -> Any:
    """Simulate ``scenario`` from ``from_minute`` to ``until_minute`` at ``rate`` req/s into ``path``; roll up."""
    sc = load_scenario(scenario)
    sc = sc.model_copy(update={"arrivals": sc.arrivals.model_copy(update={"rate_per_s": rate})})
    store = Store(path)
    summary = simulate(sc, StoreSink(store), hours=until_minute / 60, from_minute=from_minute, seed=seed)
    rollup_all(store.cursor())
    store.close()
    return summary


def minute_ns(minute: float) -> int:
    return DEFAULT_START_NS + int(minute * NS_PER_MIN)


def message(
    content: list[dict[str, Any]],
    stop: str,
    *,
    inp: int = 100,
    out: int = 20,
    cache_read: int = 0,
    cache_write: int = 0,
) -> dict[str, Any]:
    """A Messages API response body."""
    return {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": inp,
            "output_tokens": out,
            "cache_read_input_tokens": cache_read,
            "cache_creation_input_tokens": cache_write,
        },
    }


def tool_use(uid: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": uid, "name": name, "input": args}


def last_tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool_result blocks of the last user message of a request."""
    content = body["messages"][-1]["content"]
    return (
        [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
        if isinstance(content, list)
        else []
    )


@dataclass
class ScriptedMessagesServer:
    """Serve scripted Messages API steps on 127.0.0.1:<free port>."""

    steps: list[Step]
    overloaded_first: int = 0
    """Answer this many requests with 529 before the script starts (the SDK retries them)."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                server.raw.append(body)
                status, reply = server.answer(self.path, json.loads(body))
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                if status == 529:
                    self.send_header("retry-after-ms", "5")
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.lock = threading.Lock()

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            if path != "/v1/messages":
                self.errors.append(f"unexpected path {path}")
                return 404, {"type": "error", "error": {"type": "not_found_error", "message": path}}
            if self.overloaded_first > 0:
                self.overloaded_first -= 1
                self.requests.append({"overloaded": True})
                return 529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
            self.requests.append(body)
            if not self.steps:
                self.errors.append("script exhausted")
                return 500, {"type": "error", "error": {"type": "api_error", "message": "script exhausted"}}
            return self.steps.pop(0)(body)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> ScriptedMessagesServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
