"""Optional bearer-token authentication for the API, OTLP/HTTP and OTLP/gRPC.

A refused request gets 401 (HTTP) or UNAUTHENTICATED (gRPC) with no detail: it does not
say whether the token was missing, malformed or wrong. Tokens are compared in constant
time. An empty token disables the check.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

import grpc
from starlette.types import ASGIApp, Receive, Scope, Send

_UNAUTHORIZED = b'{"error":"unauthorized"}'


def token_ok(header: str | bytes | None, token: str) -> bool:
    """Whether an ``Authorization`` header value carries ``Bearer <token>``."""
    if header is None:
        return False
    raw = header.encode("latin-1") if isinstance(header, str) else header
    scheme, _, given = raw.partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), token.encode())


class BearerAuth:
    """ASGI middleware: requests whose path ``protects`` need the bearer token."""

    def __init__(self, app: ASGIApp, token: str, protects: Callable[[str], bool] = lambda _path: True) -> None:
        self.app = app
        self.token = token
        self.protects = protects

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.token or not self.protects(scope["path"]):
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization")
        if token_ok(header, self.token):
            await self.app(scope, receive, send)
            return
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(_UNAUTHORIZED)).encode()),
            (b"www-authenticate", b"Bearer"),
        ]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": _UNAUTHORIZED})


def _deny(request: Any, context: grpc.ServicerContext) -> Any:
    context.abort(grpc.StatusCode.UNAUTHENTICATED, "unauthenticated")


class GrpcBearerAuth(grpc.ServerInterceptor):  # type: ignore[type-arg]
    """gRPC interceptor: every call needs ``authorization: Bearer <token>`` metadata."""

    def __init__(self, token: str) -> None:
        self.token = token
        self._denied = grpc.unary_unary_rpc_method_handler(_deny)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        metadata = dict(handler_call_details.invocation_metadata or ())  # type: ignore[attr-defined]
        if token_ok(metadata.get("authorization"), self.token):
            return continuation(handler_call_details)
        return self._denied
