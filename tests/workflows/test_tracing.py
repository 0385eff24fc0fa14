"""A refund's trace: the caller's span, the workflow, its activities and the provider call;
what of it reaches Temporal's history (no baggage, the header encrypted) and the exporter (no
error texts).

OpenTelemetry takes one global tracer provider per process, so the spans are collected by an
in-memory exporter added to that provider (set here unless something set one before).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import asyncpg
import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from deploy.sandboxes.stripe_sandbox import StripeSandbox
from deploy.sandboxes.stripe_shop import create_payment, shop_client
from starters.client import start_refund
from tests.starters.cli_run import TEST_KEY, TEST_KEY_ID
from tests.support.stack import SANDBOX_KEY, running_worker
from tests.workflows.test_refund_paths import refund_request
from workers.client import connect
from workers.codec import ENCODING, EncryptionCodec
from workers.ops_settings import OpsSettings
from workers.settings import Settings
from workers.telemetry import PrivateSpans, tracing_interceptors
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


@pytest.fixture(scope="session")
def private_exporter(span_exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    """What an exporter behind ``PrivateSpans`` gets, on the same global provider."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    provider.add_span_processor(PrivateSpans(SimpleSpanProcessor(exporter)))
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


BAGGAGE_EMAIL = "alice@example.com"


async def test_a_callers_baggage_never_reaches_the_history_and_the_header_is_encrypted(
    dev_env: WorkflowEnvironment,
    ledger_db: asyncpg.Pool,
    stripe_base: str,
    span_exporter: InMemorySpanExporter,
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(shop, amount=1200, currency="usd", customer="cus_42")
    target = dev_env.client.service_client.config.target_host
    settings = Settings(
        temporal_address=target,
        temporal_namespace=dev_env.client.namespace,
        ops=OpsSettings(encryption_keys=((TEST_KEY_ID, TEST_KEY),)),
    )
    client = await connect(settings)  # as every process builds its client
    request = refund_request(payment)
    token = context.attach(baggage.set_baggage("user.email", BAGGAGE_EMAIL))
    try:
        with trace.get_tracer(__name__).start_as_current_span("caller"):
            async with running_worker(client, ledger_db, stripe_base) as queue:
                handle = await start_refund(client, request, queue)
                assert (await handle.result()).status is RefundStatus.SUCCEEDED
    finally:
        context.detach(token)

    config = dev_env.client.config()  # a plain client: no codec, no interceptor
    config["data_converter"] = pydantic_data_converter
    config["interceptors"] = []
    plain = Client(**config)
    history = await plain.get_workflow_handle(handle.id).fetch_history()
    headers: list[Payload] = []
    for event in history.events:
        raw = event.SerializeToString()
        for form in (BAGGAGE_EMAIL, "alice%40example.com", "user.email"):
            assert form.encode() not in raw, f"{form} in {event.event_type}"
        for attributes in (
            event.workflow_execution_started_event_attributes,
            event.activity_task_scheduled_event_attributes,
        ):
            headers.extend(attributes.header.fields.values())
    assert len(headers) >= 2, "the workflow and its activities carry the trace context"
    assert {h.metadata["encoding"] for h in headers} == {ENCODING}
    # Decrypted, the header holds the W3C trace context and nothing else.
    for decoded in await EncryptionCodec([(TEST_KEY_ID, TEST_KEY)]).decode(headers):
        carrier = json.loads(decoded.data)
        assert set(carrier) <= {"traceparent", "tracestate"}, carrier
        assert "traceparent" in carrier


async def test_spans_of_a_failed_provider_call_reach_the_exporter_without_error_texts(
    dev_env: WorkflowEnvironment,
    ledger_db: asyncpg.Pool,
    stripe_sandbox: StripeSandbox,
    stripe_base: str,
    span_exporter: InMemorySpanExporter,
    private_exporter: InMemorySpanExporter,
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(shop, amount=900, currency="usd", customer="cus_42")
    stripe_sandbox.faults.script("/v1/refunds", "POST", fail_times=1, status=400)
    client = traced(dev_env.client)
    request = refund_request(payment)
    async with running_worker(client, ledger_db, stripe_base) as queue:
        result = await (await start_refund(client, request, queue)).result()
    assert result.status is RefundStatus.FAILED

    start = one(
        span_exporter.get_finished_spans(),
        "StartWorkflow:RefundWorkflow",
        attribute=f"refund-{request.request_id}",
    )
    trace_id = start.context.trace_id
    raw = [s for s in span_exporter.get_finished_spans() if s.context.trace_id == trace_id]
    failed_raw = one(raw, "RunActivity:reverse_at_provider")
    # What the SDK hands a processor: the provider's message, twice.
    assert failed_raw.status.description and "Stripe" in failed_raw.status.description
    assert "exception" in {e.name for e in failed_raw.events}

    spans = [s for s in private_exporter.get_finished_spans() if s.context.trace_id == trace_id]
    assert {s.name for s in spans} == {s.name for s in raw}
    for span in spans:
        assert "exception" not in {e.name for e in span.events}, f"exception event: {span.name}"
        assert span.status.description is None, f"{span.name}: {span.status.description}"
    failed = one(spans, "RunActivity:reverse_at_provider")
    assert failed.status.status_code is StatusCode.ERROR
    # The exception's class (the activity raises ApplicationError), as it was in the event.
    assert (failed.attributes or {})["error.type"] == "temporalio.exceptions.ApplicationError"
    errors = [s for s in spans if s.status.status_code is StatusCode.ERROR]
    assert all((s.attributes or {}).get("error.type") for s in errors)
