"""A real ``driftscope serve`` process on loopback with a temp store, for tests to start and stop.

A module of its own (not conftest.py) so tests import it by a unique name: sub-directories
may have conftest.py files of their own, which would shadow a ``from conftest import``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb


@dataclass
class ServerProc:
    """A running ``driftscope serve`` subprocess and where to reach it."""

    proc: subprocess.Popen[str]
    store: Path
    otlp_http: int
    otlp_grpc: int
    http: int

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.otlp_http}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.http}"

    def stop(self) -> int:
        """SIGTERM and wait for a graceful exit; return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)

    def query(self, sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
        """Read the store after the server stopped (DuckDB allows one writer process)."""
        con = duckdb.connect(str(self.store), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()


def start_server(
    store: Path, *extra_env: tuple[str, str], config: Path | None = None, otlp_http: str = "127.0.0.1:0"
) -> ServerProc:
    """Start ``driftscope serve`` on free loopback ports (or the given OTLP/HTTP address) and wait
    for its listening line."""
    env = {**os.environ, **dict(extra_env)}
    cmd = [
        sys.executable,
        "-m",
        "controller",
        "serve",
        "--store",
        str(store),
        "--otlp-http",
        otlp_http,
        "--otlp-grpc",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
    ]
    if config is not None:
        cmd += ["--config", str(config)]
    log_path = store.with_suffix(".serve.log")
    with open(log_path, "ab") as log:  # a file, not a pipe: a chatty server must never block
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until the server prints its ports (or exits)
    if not line:
        proc.wait(timeout=30)
        raise RuntimeError(f"driftscope serve exited before listening: {log_path.read_text()[-4000:]}")
    info = json.loads(line)
    assert info["event"] == "listening"
    return ServerProc(proc, store, info["otlp_http"], info["otlp_grpc"], info["http"])
