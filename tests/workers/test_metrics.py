"""The Prometheus endpoint serves the SDK's and the service's metrics after a refund.

A runtime of its own on a free port (the session's clients keep theirs), the same one the
worker and API processes build, and a client connected through it.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime
from temporalio.testing import WorkflowEnvironment

from deploy.sandboxes.stripe_sandbox import StripeSandbox
from deploy.sandboxes.stripe_shop import create_payment, shop_client
from starters.client import start_refund
from tests.support.stack import SANDBOX_KEY, running_worker
from tests.workflows.review_support import paid, reach
from tests.workflows.test_refund_paths import refund_request
from tests.workflows.test_review import HIGH
from workers.logging_setup import telemetry_runtime_for
from workers.telemetry import webhook_rejected
from workflows.models import RefundStatus
from workflows.refund import RefundWorkflow
from workflows.review_models import ApproveDecision


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def metered(dev_env: WorkflowEnvironment) -> AsyncIterator[tuple[Client, Runtime, str]]:
    address = f"127.0.0.1:{free_port()}"
    runtime = telemetry_runtime_for(address)
    client = await Client.connect(
        dev_env.client.service_client.config.target_host,
        namespace=dev_env.client.namespace,
        data_converter=pydantic_data_converter,
        runtime=runtime,
    )
    yield client, runtime, f"http://{address}/metrics"


async def scrape(url: str) -> str:
    async with httpx.AsyncClient() as http:
        answer = await http.get(url)
    answer.raise_for_status()
    return answer.text


async def refund_through(client: Client, ledger_db: asyncpg.Pool, stripe_base: str) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(shop, amount=1800, currency="eur", customer="cus_42")
    async with running_worker(client, ledger_db, stripe_base) as queue:
        result = await (
            await start_refund(client, refund_request(payment, currency="eur"), queue)
        ).result()
    assert result.status is RefundStatus.SUCCEEDED


async def test_the_sdk_metrics_and_webhook_failures_are_served(
    metered: tuple[Client, Runtime, str], ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    client, runtime, url = metered
    await refund_through(client, ledger_db, stripe_base)
    webhook_rejected("stripe", runtime)

    text = await scrape(url)
    assert "temporal_workflow_completed{" in text
    assert 'workflow_type="RefundWorkflow"' in text
    assert "temporal_activity_execution_latency_bucket{" in text
    assert 'refunds_webhook_verification_failures_total{provider="stripe"' in text


async def test_a_refund_is_counted_with_its_amount_and_provider_latency(
    metered: tuple[Client, Runtime, str], ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    client, _, url = metered
    await refund_through(client, ledger_db, stripe_base)

    text = await scrape(url)
    finished = [line for line in text.splitlines() if line.startswith("refunds_finished_total{")]
    assert any('status="SUCCEEDED"' in line and 'psp="stripe"' in line for line in finished)
    amounts = [
        line
        for line in text.splitlines()
        if line.startswith("refunds_amount_refunded_minor_units_total{")
    ]
    assert any('currency="EUR"' in line and line.endswith(" 1800") for line in amounts)
    assert "refunds_provider_call_duration_seconds_bucket{" in text
    assert 'operation="refund"' in text
    assert "rma-" not in text  # refund ids are never labels: one series per refund


async def test_a_reviewed_refund_and_a_provider_error_are_measured(
    metered: tuple[Client, Runtime, str],
    ledger_db: asyncpg.Pool,
    stripe_base: str,
    stripe_sandbox: StripeSandbox,
) -> None:
    client, _, url = metered
    payment = await paid(stripe_base, HIGH)
    stripe_sandbox.faults.script("/v1/refunds", "POST", fail_times=1, status=500)
    async with running_worker(client, ledger_db, stripe_base) as queue:
        handle = await start_refund(client, refund_request(payment), queue)
        await reach(handle, RefundStatus.AWAITING_REVIEW)
        await handle.execute_update(
            RefundWorkflow.approve_refund, ApproveDecision(reviewer="rita", note="ok")
        )
        result = await handle.result()  # after one 500 from Stripe, retried
    assert result.status is RefundStatus.SUCCEEDED

    text = await scrape(url)
    waited = [
        line for line in text.splitlines() if line.startswith("refunds_review_wait_seconds_count{")
    ]
    assert any('status="SUCCEEDED"' in line and line.endswith(" 1") for line in waited)
    errors = [
        line for line in text.splitlines() if line.startswith("refunds_provider_errors_total{")
    ]
    assert any(
        'type="ProviderUnavailable"' in line and 'operation="refund"' in line for line in errors
    )
