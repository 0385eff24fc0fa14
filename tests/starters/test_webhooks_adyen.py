"""POST /webhooks/adyen served by uvicorn: verified before anything, booked, signalled, and
answered ``[accepted]`` only then."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.adyen_payments import AdyenPaymentBook
from deploy.sandboxes.adyen_notifier import notification_item, sign_item
from starters.client import start_refund
from starters.webhooks import FraudWarningPolicy
from starters.webhooks_adyen import adyen_router
from tests.support.http import served_api
from workers.settings import Settings, parse_api_tokens
from workflows.models import Psp, RefundReason, RefundRequest

KEY = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
AUTH = ("adyen-notifier", "s3cret")


@dataclass
class Receiver:
    http: httpx.AsyncClient
    book: AdyenPaymentBook
    client: Client
    queue: str

    async def post(
        self, *items: dict[str, Any], key: str = KEY, auth: Any = AUTH
    ) -> httpx.Response:
        wrapped = [{"NotificationRequestItem": sign_item(item, key)} for item in items]
        body = json.dumps({"live": "false", "notificationItems": wrapped})
        return await self.http.post(
            "/webhooks/adyen",
            content=body,
            headers={"Content-Type": "application/json"},
            auth=auth,
        )


@pytest.fixture
async def receiver(
    dev_env: WorkflowEnvironment, ledger_db: asyncpg.Pool
) -> AsyncIterator[Receiver]:
    client, queue = dev_env.client, f"adyen-receiver-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        task_queue=queue,
        http_address="127.0.0.1:0",
        api_tokens=parse_api_tokens("t:admin:ops", "REFUNDS_API_TOKENS"),
    )
    book = AdyenPaymentBook(ledger_db)
    router = adyen_router(client, queue, book, [KEY], AUTH, FraudWarningPolicy())
    async with (
        served_api(client, settings, [router]) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as http,
    ):
        yield Receiver(http, book, client, queue)


def authorisation(psp: str, value: int = 5000) -> dict[str, Any]:
    return notification_item(
        "AUTHORISATION", psp, "RefundsSandboxECOM", "order-1", value, "EUR", True
    )


def refund(psp: str, payment: str, request_id: str, value: int = 1000) -> dict[str, Any]:
    return notification_item(
        "REFUND",
        psp,
        "RefundsSandboxECOM",
        request_id,
        value,
        "EUR",
        True,
        original_reference=payment,
    )


def new_ref() -> str:
    return uuid.uuid4().hex[:16].upper()


async def test_a_forged_item_is_refused_and_nothing_is_booked(receiver: Receiver) -> None:
    payment = new_ref()
    forged = sign_item(authorisation(payment), KEY)
    forged["amount"]["value"] = 1  # changed after signing
    body = json.dumps(
        {
            "live": "false",
            "notificationItems": [
                {"NotificationRequestItem": sign_item(authorisation(new_ref()), KEY)},
                {"NotificationRequestItem": forged},
            ],
        }
    )
    answer = await receiver.http.post("/webhooks/adyen", content=body, auth=AUTH)
    assert answer.status_code == 401
    assert "item 1" in answer.json()["error"]["message"]
    assert await receiver.book.payment(payment) is None


async def test_wrong_basic_auth_is_refused(receiver: Receiver) -> None:
    answer = await receiver.post(authorisation(new_ref()), auth=("adyen-notifier", "guess"))
    assert answer.status_code == 401


async def test_malformed_json_is_a_400(receiver: Receiver) -> None:
    answer = await receiver.http.post("/webhooks/adyen", content=b"{not json", auth=AUTH)
    assert answer.status_code == 400


async def test_a_good_batch_is_accepted_and_booked_once(receiver: Receiver) -> None:
    payment = new_ref()
    capture = notification_item(
        "CAPTURE",
        new_ref(),
        "RefundsSandboxECOM",
        "order-1",
        5000,
        "EUR",
        True,
        original_reference=payment,
    )
    for _ in range(2):  # Adyen delivers at least once
        answer = await receiver.post(authorisation(payment), capture)
        assert (answer.status_code, answer.text) == (200, "[accepted]")
    booked = await receiver.book.payment(payment)
    assert booked is not None
    assert (booked.state, booked.amount_authorised, booked.amount_captured) == (
        "captured",
        5000,
        5000,
    )


async def test_a_refund_notification_signals_the_running_refund(receiver: Receiver) -> None:
    payment, request_id = new_ref(), f"rma-{uuid.uuid4().hex[:10]}"
    request = RefundRequest(
        request_id=request_id,
        psp=Psp.ADYEN,
        payment_id=payment,
        currency="EUR",
        reason=RefundReason.REQUESTED_BY_CUSTOMER,
        customer_id="cus_1",
        requested_by="support@shop.example",
    )
    # No worker polls this queue: the refund stays running and its history shows the signal.
    handle = await start_refund(receiver.client, request, receiver.queue)
    modification = new_ref()
    answer = await receiver.post(authorisation(payment), refund(modification, payment, request_id))
    assert answer.text == "[accepted]"

    signals = [
        event.workflow_execution_signaled_event_attributes.signal_name
        async for event in handle.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]
    assert signals == ["provider_update"]
    made = await receiver.book.modification(modification)
    assert made is not None and (made.outcome, made.merchant_reference) == ("succeeded", request_id)
    await handle.terminate("test over")
