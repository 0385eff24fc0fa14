"""`POST /webhooks/paypal` served by uvicorn: verified events reach the refund, others don't."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import httpx
import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.paypal_webhooks import PayPalWebhookVerifier
from deploy.sandboxes.paypal_sandbox import PayPalSandbox
from deploy.sandboxes.paypal_webhooks import Webhooks, event_bytes
from starters.client import workflow_id
from starters.webhooks import FraudWarningPolicy
from starters.webhooks_paypal import paypal_router, paypal_verifier
from tests.support.http import served_api
from workers.settings import Settings, parse_api_tokens
from workflows.models import ProviderRefundUpdate, PspRefundStatus

WEBHOOK_ID = "WH-RECEIVER-TEST"


@workflow.defn(name="PayPalUpdateListener")
class UpdateListener:
    """Stands in for a refund waiting on its provider: ends with the update it was told."""

    def __init__(self) -> None:
        self.update: ProviderRefundUpdate | None = None

    @workflow.signal(name="provider_update")
    def provider_update(self, update: ProviderRefundUpdate) -> None:
        self.update = update

    @workflow.run
    async def run(self) -> ProviderRefundUpdate:
        await workflow.wait_condition(lambda: self.update is not None)
        assert self.update is not None
        return self.update


@dataclass
class Receiver:
    http: httpx.AsyncClient
    client: Client
    queue: str
    signer: Webhooks


@pytest.fixture
async def receiver(dev_env: WorkflowEnvironment) -> AsyncIterator[Receiver]:
    client, queue = dev_env.client, f"paypal-hooks-{uuid.uuid4().hex[:8]}"
    sandbox = PayPalSandbox()  # only for its signing certificate
    await sandbox.start("127.0.0.1", 0)
    try:
        signer = Webhooks(None, WEBHOOK_ID, sandbox.webhooks.certificate)
        signer.cert_url = sandbox.webhooks.cert_url
        verifier = PayPalWebhookVerifier(WEBHOOK_ID, certificate_pem=sandbox.certificate_pem)
        settings = Settings(
            task_queue=queue,
            http_address="127.0.0.1:0",
            api_tokens=parse_api_tokens("t:admin:ops", "REFUNDS_API_TOKENS"),
        )
        routers = [paypal_router(client, queue, verifier, FraudWarningPolicy("ignore"))]
        async with (
            Worker(
                client,
                task_queue=queue,
                workflows=[UpdateListener],
                workflow_runner=UnsandboxedWorkflowRunner(),
            ),
            served_api(client, settings, routers) as base_url,
            httpx.AsyncClient(base_url=base_url, timeout=30) as http,
        ):
            yield Receiver(http, client, queue, signer)
    finally:
        await sandbox.stop()


def refund_completed(request_id: str) -> bytes:
    refund = {
        "id": "5BD75497ER8405713",
        "amount": {"currency_code": "EUR", "value": "25.00"},
        "status": "COMPLETED",
        "custom_id": request_id,
        "links": [],
    }
    event = {
        "id": f"WH-{uuid.uuid4().hex[:17].upper()}",
        "event_type": "PAYMENT.CAPTURE.REFUNDED",
        "resource_type": "refund",
        "resource": refund,
    }
    return event_bytes(event)


async def test_unsigned_events_are_401_and_start_nothing(receiver: Receiver) -> None:
    request_id = f"pp-{uuid.uuid4().hex[:8]}"
    body = refund_completed(request_id)
    answer = await receiver.http.post("/webhooks/paypal", content=body)
    assert answer.status_code == 401
    forged = receiver.signer.signed_headers(body)
    tampered = body.replace(b"25.00", b"95.00")
    answer = await receiver.http.post("/webhooks/paypal", content=tampered, headers=forged)
    assert answer.status_code == 401


async def test_signed_but_malformed_json_is_400(receiver: Receiver) -> None:
    body = b'{"id": "WH-1", "event_type": '
    answer = await receiver.http.post(
        "/webhooks/paypal", content=body, headers=receiver.signer.signed_headers(body)
    )
    assert answer.status_code == 400


async def test_a_signed_refund_event_reaches_the_running_refund(receiver: Receiver) -> None:
    request_id = f"pp-{uuid.uuid4().hex[:8]}"
    handle = await receiver.client.start_workflow(
        UpdateListener.run, id=workflow_id(request_id), task_queue=receiver.queue
    )
    body = refund_completed(request_id)
    answer = await receiver.http.post(
        "/webhooks/paypal", content=body, headers=receiver.signer.signed_headers(body)
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["received"] is True
    update = await handle.result()
    assert isinstance(update, ProviderRefundUpdate)
    assert (update.status, update.amount, update.currency, update.psp_refund_id) == (
        PspRefundStatus.SUCCEEDED,
        2500,
        "EUR",
        "5BD75497ER8405713",
    )


def test_the_verifier_downloads_only_from_the_configured_modes_hosts() -> None:
    base = Settings(
        task_queue="q",
        http_address="127.0.0.1:0",
        api_tokens=parse_api_tokens("t:admin:ops", "REFUNDS_API_TOKENS"),
    )
    for mode, hosts in (
        ("live", ("api.paypal.com", "api-m.paypal.com")),
        ("sandbox", ("api.sandbox.paypal.com", "api-m.sandbox.paypal.com")),
    ):
        paypal = replace(base.paypal, mode=mode, webhook_id=WEBHOOK_ID)
        verifier = paypal_verifier(base.with_overrides(paypal=paypal))
        assert verifier.allowed_cert_hosts == hosts
