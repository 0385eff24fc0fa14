"""A server span per HTTP request, so a refund started over HTTP is one trace with its workflow.

The span is current while the route runs, so the Temporal client's ``StartWorkflow`` span (and
everything the workflow does) becomes its child; a caller's W3C ``traceparent`` header makes
the request itself part of the caller's trace. Attributes are the route template
(``/v1/refunds/{refund_id}``), never the path with ids, nor headers, query or body.
A plain ASGI middleware (no extra dependency), as ``BaseHTTPMiddleware`` would run the route
in another task. FastAPI releases with native telemetry (``fastapi.telemetry``) make the same
server span themselves on the global tracer provider; ``trace_requests`` then adds nothing, so
no request is traced twice.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

from fastapi import FastAPI
from opentelemetry import propagate, trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_tracer = trace.get_tracer(__name__)


def trace_requests(app: FastAPI) -> None:
    """Give each request a server span, unless this FastAPI makes one itself."""
    if find_spec("fastapi.telemetry") is None:
        app.add_middleware(RequestTracing)


class RequestTracing:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = str(scope.get("method", "GET"))
        carrier = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope.get("headers", [])
        }
        status: dict[str, int] = {}

        async def send_noting_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        with _tracer.start_as_current_span(
            method,
            context=propagate.extract(carrier),
            kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": method},
        ) as span:
            try:
                await self.app(scope, receive, send_noting_status)
            finally:
                route = _route_template(scope)
                if route:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                code = status.get("code", 500)
                span.set_attribute("http.response.status_code", code)
                if code >= 500:
                    span.set_status(trace.StatusCode.ERROR)


def _route_template(scope: Scope) -> str | None:
    # Starlette's router records the route it matched in the scope it was handed.
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None
