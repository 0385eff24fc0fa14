"""A server span per HTTP request, so a refund started over HTTP is one trace with its workflow.

The span is current while the route runs, so the Temporal client's ``StartWorkflow`` span (and
everything the workflow does) becomes its child; a caller's W3C ``traceparent`` header makes
the request itself part of the caller's trace. Only ``traceparent`` and ``tracestate`` are
read: a caller's ``baggage`` is ignored, so nothing it says travels on with the refund.
A failing route marks the span ERROR with ``error.type`` (the exception's class), never its
message or stack trace. Attributes are the route template
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
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_tracer = trace.get_tracer(__name__)
_trace_context = TraceContextTextMapPropagator()
_TRACE_HEADERS = frozenset(_trace_context.fields)  # traceparent, tracestate


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
            name: value.decode("latin-1")
            for key, value in scope.get("headers", [])
            if (name := key.decode("latin-1").lower()) in _TRACE_HEADERS
        }
        status: dict[str, int] = {}

        async def send_noting_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        with _tracer.start_as_current_span(
            method,
            context=_trace_context.extract(carrier),
            kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": method},
            record_exception=False,  # its message and stack trace stay out of the trace
            set_status_on_exception=False,
        ) as span:
            try:
                await self.app(scope, receive, send_noting_status)
            except Exception as exc:
                span.set_attribute("error.type", type(exc).__qualname__)
                span.set_status(trace.StatusCode.ERROR)
                raise
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
