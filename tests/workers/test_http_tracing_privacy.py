"""The HTTP API's server span: a caller's baggage is not taken up, and a failing route leaves
its error type in the span, never its message or stack trace.

Both server spans are tried: ``RequestTracing`` (FastAPI releases without native telemetry)
and FastAPI's own (``fastapi.telemetry``), which reads the process's global propagator that
``setup_tracing`` narrows to the W3C trace context.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import baggage, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from starters.http_tracing import RequestTracing, trace_requests
from tests.workflows.test_tracing import span_exporter  # noqa: F401  (the global provider)
from workers import telemetry
from workers.settings import Settings
from workers.telemetry import OTLP_ENDPOINT_VARIABLES, setup_tracing

CALLER_TRACE = "5cf92f3577b34da6a3ce929d0e0e4737"
BAGGAGE_TRACE = "6df92f3577b34da6a3ce929d0e0e4738"
REVIEWER = "bob@shop.example"


@pytest.fixture
def baggage_propagating() -> Iterator[None]:
    """The OpenTelemetry default global propagator (trace context and baggage), so the
    middleware is shown not to rely on ``setup_tracing`` having narrowed it."""
    before = propagate.get_global_textmap()
    propagate.set_global_textmap(
        CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    )
    yield
    propagate.set_global_textmap(before)


def app_with_routes(native: bool) -> FastAPI:
    """An app whose server span is FastAPI's own (``native``), or else ``RequestTracing``'s."""
    if native:
        app = FastAPI()
    else:
        app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})

    @app.get("/v1/baggage")
    async def seen() -> dict[str, str]:
        return {key: str(value) for key, value in baggage.get_all().items()}

    @app.post("/v1/refunds/{refund_id}/refuse")
    async def refuse(refund_id: str) -> None:
        raise RuntimeError(f"refused by {REVIEWER}")

    if native:
        trace_requests(app)  # adds nothing where FastAPI traces requests itself
    else:
        app.add_middleware(RequestTracing)
    return app


@pytest.fixture(params=[True, False], ids=["fastapi-telemetry", "request-tracing"])
def native(request: pytest.FixtureRequest) -> bool:
    value: bool = request.param
    return value


async def test_a_callers_baggage_is_not_taken_up(
    span_exporter: InMemorySpanExporter,  # noqa: F811
    baggage_propagating: None,
    native: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in OTLP_ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(telemetry, "_tracing_set", True)  # the test's provider stays
    setup_tracing(Settings())  # as every process does when it connects
    transport = httpx.ASGITransport(app=app_with_routes(native))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        answer = await http.get(
            "/v1/baggage",
            headers={
                "traceparent": f"00-{BAGGAGE_TRACE}-00f067aa0ba902b7-01",
                "baggage": "user.email=alice%40example.com",
            },
        )
    assert answer.status_code == 200
    assert answer.json() == {}


async def test_a_failing_route_leaves_its_error_type_only(
    span_exporter: InMemorySpanExporter,  # noqa: F811
    native: bool,
) -> None:
    span_exporter.clear()
    transport = httpx.ASGITransport(app=app_with_routes(native), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        answer = await http.post(
            "/v1/refunds/rma-1/refuse",
            headers={"traceparent": f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"},
        )
    assert answer.status_code == 500

    servers = [
        s
        for s in span_exporter.get_finished_spans()
        if s.kind is trace.SpanKind.SERVER and format(s.context.trace_id, "032x") == CALLER_TRACE
    ]
    assert [s.name for s in servers] == ["POST /v1/refunds/{refund_id}/refuse"]
    span = servers[0]
    assert list(span.events) == []
    assert span.status.status_code is trace.StatusCode.ERROR
    assert span.status.description is None
    assert (span.attributes or {})["error.type"] == "RuntimeError"
