"""An HTTP request is one server span, in the caller's trace, named by its route template."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from starters.http_tracing import trace_requests
from tests.workflows.test_tracing import span_exporter  # noqa: F401  (the global provider)

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


async def test_a_request_is_one_server_span_in_the_callers_trace(
    span_exporter: InMemorySpanExporter,  # noqa: F811
) -> None:
    app = FastAPI()

    @app.get("/v1/refunds/{refund_id}")
    async def refund(refund_id: str) -> dict[str, str]:
        return {"id": refund_id}

    trace_requests(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        answer = await http.get(
            "/v1/refunds/rma-1", headers={"traceparent": f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"}
        )
    assert answer.status_code == 200

    servers = [
        s
        for s in span_exporter.get_finished_spans()
        if s.kind is trace.SpanKind.SERVER and format(s.context.trace_id, "032x") == CALLER_TRACE
    ]
    assert [s.name for s in servers] == ["GET /v1/refunds/{refund_id}"]
    attributes = dict(servers[0].attributes or {})
    assert attributes["http.route"] == "/v1/refunds/{refund_id}"
    assert attributes["http.request.method"] == "GET"
    assert attributes["http.response.status_code"] == 200
