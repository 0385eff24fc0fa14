"""A refund's trace: the caller's span, the workflow, its activities and the provider call.

OpenTelemetry takes one global tracer provider per process, so the spans are collected by an
in-memory exporter added to that provider (set here unless something set one before).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import asyncpg
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from deploy.sandboxes.stripe_shop import create_payment, shop_client
from starters.client import start_refund
from tests.support.stack import SANDBOX_KEY, running_worker
from tests.workflows.test_refund_paths import refund_request
from workers.telemetry import tracing_interceptors
from workflows.models import RefundStatus

PLANTED_CUSTOMER = "cus_planted_7f3a9c"
PLANTED_METADATA = "note-planted-c41d2e"


@pytest.fixture(scope="session")
def span_exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        trace.set_tracer_provider(TracerProvider())
        provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider), "another global tracer provider was set"
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.clear()


def traced(client: Client) -> Client:
    """The same connection, with the tracing interceptor (which also traces its workers)."""
    config = client.config()
    config["interceptors"] = tracing_interceptors()
    return Client(**config)


async def traced_refund(
    dev_env: WorkflowEnvironment,
    ledger_db: asyncpg.Pool,
    stripe_base: str,
    exporter: InMemorySpanExporter,
) -> list[ReadableSpan]:
    """Run one Stripe refund through a traced client and worker; the spans of its trace."""
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(shop, amount=2500, currency="usd", customer=PLANTED_CUSTOMER)
    client = traced(dev_env.client)
    request = refund_request(
        payment, customer_id=PLANTED_CUSTOMER, metadata={"ticket_note": PLANTED_METADATA}
    )
    async with running_worker(client, ledger_db, stripe_base) as queue:
        result = await (await start_refund(client, request, queue)).result()
    assert result.status is RefundStatus.SUCCEEDED
    spans = list(exporter.get_finished_spans())
    start = one(spans, "StartWorkflow:RefundWorkflow", attribute=f"refund-{request.request_id}")
    return [s for s in spans if s.context.trace_id == start.context.trace_id]


def one(spans: Sequence[ReadableSpan], name: str, attribute: str | None = None) -> ReadableSpan:
    found = [
        s
        for s in spans
        if s.name == name
        and (attribute is None or attribute in {str(v) for v in (s.attributes or {}).values()})
    ]
    assert len(found) == 1, f"{len(found)} spans named {name}: {[s.name for s in spans]}"
    return found[0]


def parent_of(span: ReadableSpan, spans: Sequence[ReadableSpan]) -> ReadableSpan:
    assert span.parent is not None, f"{span.name} has no parent"
    return next(s for s in spans if s.context.span_id == span.parent.span_id)


async def test_a_refund_is_one_trace_from_the_caller_to_each_activity(
    dev_env: WorkflowEnvironment,
    ledger_db: asyncpg.Pool,
    stripe_base: str,
    span_exporter: InMemorySpanExporter,
) -> None:
    spans = await traced_refund(dev_env, ledger_db, stripe_base, span_exporter)

    # TracingInterceptor's workflow spans are zero-length marks made outside the sandbox (so
    # never again on replay): RunWorkflow and the activities it starts are siblings, both
    # children of the caller's StartWorkflow.
    start_workflow = one(spans, "StartWorkflow:RefundWorkflow")
    run_workflow = one(spans, "RunWorkflow:RefundWorkflow")
    run_activity = one(spans, "RunActivity:reverse_at_provider")
    start_activity = parent_of(run_activity, spans)
    assert start_activity.name == "StartActivity:reverse_at_provider"
    assert parent_of(start_activity, spans) is start_workflow
    assert parent_of(run_workflow, spans) is start_workflow
    assert start_workflow.parent is None  # the caller's own span is the root here
    assert "RunActivity:fetch_payment" in {s.name for s in spans}
    for span in spans:
        values = " ".join(str(v) for v in (span.attributes or {}).values())
        assert PLANTED_CUSTOMER not in values, f"customer id in span {span.name}"
        assert PLANTED_METADATA not in values, f"metadata in span {span.name}"
        assert SANDBOX_KEY not in values, f"API key in span {span.name}"


async def test_the_provider_call_is_a_span_of_its_activity(
    dev_env: WorkflowEnvironment,
    ledger_db: asyncpg.Pool,
    stripe_base: str,
    span_exporter: InMemorySpanExporter,
) -> None:
    spans = await traced_refund(dev_env, ledger_db, stripe_base, span_exporter)

    provider = one(spans, "stripe.refund")
    assert parent_of(provider, spans).name == "RunActivity:reverse_at_provider"
    attributes = dict(provider.attributes or {})
    assert attributes["refund.psp"] == "stripe"
    assert str(attributes["refund.id"]).startswith("rma-")
    assert attributes["refund.status"] == "succeeded"  # the provider's answer
    assert provider.kind is trace.SpanKind.CLIENT
