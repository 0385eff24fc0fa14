"""The webhook receiver, served by uvicorn with the API: verified events, one effect each."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.events import SIGNATURE_HEADER, sign
from activities.ledger import Ledger
from activities.stripe_provider import StripeProvider
from deploy.sandboxes.stripe_shop import create_payment, shop_client
from starters.client import refund_handle, start_refund
from starters.webhooks import FraudWarningPolicy, webhook_router
from tests.activities.test_webhook_verification import stripe_signed
from tests.support.http import served_api
from tests.support.stack import SANDBOX_KEY, running_worker
from tests.workflows.review_support import paid, reach, refunds_at_provider
from tests.workflows.test_refund_paths import refund_request
from tests.workflows.test_settlement import wait_for_status
from workers.settings import Settings, parse_api_tokens
from workflows.models import Psp, RefundStatus

STRIPE_SECRET, SHOP_SECRET = "whsec_receiver", "shop_secret_receiver"


@pytest.fixture
async def receiver(
    dev_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    client = dev_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        settings = Settings(
            task_queue=queue,
            http_address="127.0.0.1:0",
            api_tokens=parse_api_tokens("t:admin:ops", "REFUNDS_API_TOKENS"),
        )
        warnings = FraudWarningPolicy(
            "refund", {Psp.STRIPE: StripeProvider(SANDBOX_KEY, stripe_base)}
        )
        routers = [webhook_router(client, queue, [STRIPE_SECRET], [SHOP_SECRET], warnings)]
        async with (
            served_api(client, settings, routers) as base_url,
            httpx.AsyncClient(base_url=base_url, timeout=30) as http,
        ):
            yield http, queue


def shop_event(event_id: str, data: dict[str, Any], kind: str = "refund.requested") -> bytes:
    return json.dumps(
        {"id": event_id, "type": kind, "created": int(time.time()), "data": data}
    ).encode()


def shop_headers(body: bytes, secret: str = SHOP_SECRET) -> dict[str, str]:
    return {
        SIGNATURE_HEADER: sign(body, secret, int(time.time())),
        "Content-Type": "application/json",
    }


async def exists(client: Client, request_id: str) -> bool:
    try:
        await refund_handle(client, request_id).describe()
    except RPCError:
        return False
    return True


async def test_a_stripe_refund_webhook_settles_the_refund_once_however_often_it_comes(
    receiver: tuple[httpx.AsyncClient, str],
    dev_env: WorkflowEnvironment,
    ledger_db: asyncpg.Pool,
    stripe_base: str,
) -> None:
    http, _ = receiver
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(
        shop, amount=4100, currency="usd", customer="cus_wh", payment_method="pm_card_pendingRefund"
    )
    request_id = f"rma-wh-{uuid.uuid4().hex[:6]}"
    body = shop_event(
        f"evt_shop_{request_id}",
        {
            "request_id": request_id,
            "psp": "stripe",
            "payment_id": payment,
            "currency": "usd",
            "customer_id": "cus_wh",
            "requested_by": "shop",
        },
    )
    answer = await http.post("/webhooks/shop", content=body, headers=shop_headers(body))
    assert answer.status_code == 200, answer.text
    handle = refund_handle(dev_env.client, request_id)
    psp_refund_id = await wait_for_status(handle, RefundStatus.AWAITING_SETTLEMENT)

    refund = (await shop.v1.refunds.retrieve_async(psp_refund_id)).to_dict()
    event = json.dumps(
        {
            "id": "evt_settled_1",
            "type": "refund.updated",
            "data": {"object": refund | {"status": "succeeded"}},
        }
    ).encode()
    signed = {"Stripe-Signature": stripe_signed(event, STRIPE_SECRET)}
    answers = await asyncio.gather(
        *(http.post("/webhooks/stripe", content=event, headers=signed) for _ in range(100))
    )
    assert {a.status_code for a in answers} == {200}
    result = await handle.result()
    gate = asyncio.Semaphore(50)

    async def again() -> int:
        async with gate:
            return (await http.post("/webhooks/stripe", content=event, headers=signed)).status_code

    # The provider keeps delivering after the refund ended: 1000 more times, still one effect.
    assert set(await asyncio.gather(*(again() for _ in range(1000)))) == {200}

    assert (result.status, result.amount_refunded) == (RefundStatus.SUCCEEDED, 4100)
    transfers = await Ledger(ledger_db).transfers_for_refund(request_id)
    assert sorted(t.kind for t in transfers) == ["pending", "post"]


async def test_a_shop_refund_request_delivered_100_times_in_parallel_starts_one_refund(
    receiver: tuple[httpx.AsyncClient, str], dev_env: WorkflowEnvironment, stripe_base: str
) -> None:
    http, _ = receiver
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(shop, amount=2000, currency="eur", customer="cus_wh")
    event_id = f"evt_rr_{uuid.uuid4().hex[:8]}"  # no request_id: the event id is the key
    body = shop_event(
        event_id,
        {
            "psp": "stripe",
            "payment_id": payment,
            "amount": 500,
            "currency": "eur",
            "customer_id": "cus_wh",
            "requested_by": "erp",
        },
    )
    answers = await asyncio.gather(
        *(http.post("/webhooks/shop", content=body, headers=shop_headers(body)) for _ in range(100))
    )
    assert {a.status_code for a in answers} == {200}
    result = await refund_handle(dev_env.client, event_id).result()
    assert (result.status, result.amount_refunded) == (RefundStatus.SUCCEEDED, 500)
    listed = await shop.v1.refunds.list_async({"payment_intent": payment})
    assert [r.amount for r in listed.data] == [500]


async def test_bad_webhooks_are_refused_and_start_nothing(
    receiver: tuple[httpx.AsyncClient, str], dev_env: WorkflowEnvironment
) -> None:
    http, _ = receiver
    request_id = f"rma-bad-{uuid.uuid4().hex[:6]}"
    body = shop_event(
        "evt_bad",
        {
            "request_id": request_id,
            "psp": "stripe",
            "payment_id": "pi_x",
            "currency": "usd",
            "customer_id": "c",
            "requested_by": "r",
        },
    )
    cases = {
        "no signature": (body, {}),
        "wrong secret": (body, shop_headers(body, "another-secret")),
        "old signature": (
            body,
            {SIGNATURE_HEADER: sign(body, SHOP_SECRET, int(time.time()) - 900)},
        ),
        "body changed": (body + b" ", shop_headers(body)),
    }
    for name, (content, headers) in cases.items():
        answer = await http.post("/webhooks/shop", content=content, headers=headers)
        assert answer.status_code == 401, (name, answer.text)
        assert answer.json()["error"]["message"]
    garbage = b"{not json"
    answer = await http.post("/webhooks/shop", content=garbage, headers=shop_headers(garbage))
    assert answer.status_code == 400
    unknown = shop_event("evt_other", {}, kind="inventory.counted")
    answer = await http.post("/webhooks/shop", content=unknown, headers=shop_headers(unknown))
    assert answer.status_code == 200 and "ignored" in answer.text
    huge = b"x" * (1024 * 1024 + 1)
    answer = await http.post("/webhooks/stripe", content=huge, headers=shop_headers(huge))
    assert answer.status_code == 413
    stripe_unsigned = await http.post("/webhooks/stripe", content=b"{}")
    assert stripe_unsigned.status_code == 401
    assert not await exists(dev_env.client, request_id)


async def test_an_early_fraud_warning_refunds_the_payment_before_a_chargeback(
    receiver: tuple[httpx.AsyncClient, str], dev_env: WorkflowEnvironment, stripe_base: str
) -> None:
    http, _ = receiver
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(shop, amount=7300, currency="gbp", customer="cus_efw")
    warning_id = f"issfr_{uuid.uuid4().hex[:10]}"

    def warning_event(event_id: str, actionable: bool) -> bytes:
        return json.dumps(
            {
                "id": event_id,
                "type": "radar.early_fraud_warning.created",
                "data": {
                    "object": {
                        "id": warning_id,
                        "object": "radar.early_fraud_warning",
                        "actionable": actionable,
                        "payment_intent": payment,
                        "fraud_type": "misc",
                    }
                },
            }
        ).encode()

    stale = warning_event("evt_efw_0", actionable=False)
    answer = await http.post(
        "/webhooks/stripe",
        content=stale,
        headers={"Stripe-Signature": stripe_signed(stale, STRIPE_SECRET)},
    )
    assert answer.status_code == 200 and "not actionable" in answer.text
    assert not await exists(dev_env.client, warning_id)

    event = warning_event("evt_efw_1", actionable=True)
    signed = {"Stripe-Signature": stripe_signed(event, STRIPE_SECRET)}
    answers = await asyncio.gather(
        *(http.post("/webhooks/stripe", content=event, headers=signed) for _ in range(20))
    )
    assert {a.status_code for a in answers} == {200}
    handle = refund_handle(dev_env.client, warning_id)
    result = await handle.result()
    view = await handle.query("status")

    assert (result.status, result.amount_refunded, result.currency) == (
        RefundStatus.SUCCEEDED,
        7300,
        "GBP",
    )
    listed = await shop.v1.refunds.list_async({"payment_intent": payment})
    assert [(r.amount, r.reason) for r in listed.data] == [(7300, "fraudulent")]
    assert view["request_id"] == warning_id


async def test_a_dispute_rejects_the_refunds_of_that_payment_still_in_review(
    receiver: tuple[httpx.AsyncClient, str],
    dev_env: WorkflowEnvironment,
    ledger_db: asyncpg.Pool,
    stripe_base: str,
) -> None:
    http, queue = receiver
    client = dev_env.client
    payment = await paid(stripe_base, 80_000)
    request = refund_request(payment)
    handle = await start_refund(client, request, queue)
    await reach(handle, RefundStatus.AWAITING_REVIEW)
    charge = str(
        (
            await shop_client(stripe_base, SANDBOX_KEY).v1.payment_intents.retrieve_async(payment)
        ).latest_charge
    )
    event = json.dumps(
        {
            "id": "evt_dispute_1",
            "type": "charge.dispute.created",
            "data": {
                "object": {
                    "id": "dp_1",
                    "object": "dispute",
                    "charge": charge,
                    "payment_intent": payment,
                    "amount": 80_000,
                    "currency": "usd",
                }
            },
        }
    ).encode()
    signed = {"Stripe-Signature": stripe_signed(event, STRIPE_SECRET)}
    async with asyncio.timeout(20):  # visibility lists the refund in review shortly after
        while True:
            answer = await http.post("/webhooks/stripe", content=event, headers=signed)
            assert answer.status_code == 200, answer.text
            if handle.id in answer.text:
                break
            await asyncio.sleep(0.2)
    result = await handle.result()

    assert result.status is RefundStatus.REJECTED
    assert result.reason and "the payment was disputed (dp_1) during review" in result.reason
    assert await refunds_at_provider(stripe_base, payment) == []

    # The payment is marked: a new refund of it is refused, though the provider's own
    # payment object (a plain visa payment here) shows no dispute.
    await client.get_workflow_handle("payment-dispute-dp_1").result()
    for payment_id in (payment, charge):
        again = await (
            await start_refund(client, refund_request(payment_id, amount=100), queue)
        ).result()
        assert again.status is RefundStatus.REJECTED
        assert again.reason and "is disputed (dp_1)" in again.reason
    position = await Ledger(ledger_db).payment_position(f"stripe:{payment}")
    assert position is not None and (position.reserved, position.refunded) == (0, 0)


async def test_a_failure_after_success_books_one_compensating_transfer(
    receiver: tuple[httpx.AsyncClient, str],
    dev_env: WorkflowEnvironment,
    ledger_db: asyncpg.Pool,
    stripe_base: str,
) -> None:
    http, queue = receiver
    client = dev_env.client
    payment = await paid(stripe_base, 2600)
    request = refund_request(payment)
    result = await (await start_refund(client, request, queue)).result()
    assert result.status is RefundStatus.SUCCEEDED and result.psp_refund_id
    refund = (
        await shop_client(stripe_base, SANDBOX_KEY).v1.refunds.retrieve_async(result.psp_refund_id)
    ).to_dict()
    event = json.dumps(
        {
            "id": "evt_late_1",
            "type": "refund.failed",
            "data": {
                "object": refund
                | {"status": "failed", "failure_reason": "expired_or_canceled_card"}
            },
        }
    ).encode()
    signed = {"Stripe-Signature": stripe_signed(event, STRIPE_SECRET)}
    answers = await asyncio.gather(
        *(http.post("/webhooks/stripe", content=event, headers=signed) for _ in range(10))
    )
    assert {a.status_code for a in answers} == {200}
    assert "late failure" in answers[0].text
    late = await client.get_workflow_handle(f"refund-{request.request_id}-late-failure").result()

    assert late["compensation_transfer_id"] == f"refund-{request.request_id}:late-failure"
    ledger = Ledger(ledger_db)
    kinds = sorted(t.kind for t in await ledger.transfers_for_refund(request.request_id))
    assert kinds == ["pending", "post", "single"]
    balances = {(b.account, b.currency): b.balance for b in await ledger.balances()}
    assert balances.get(("merchant:refunds", "USD"), 0) == 0, "the refund was booked back"
    assert await ledger.verify() == []


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"id": "re_someone_elses"}, "it is about re_someone_elses"),
        ({"currency": "eur"}, "it is in EUR, the refund in USD"),
    ],
)
async def test_a_late_failure_naming_another_refund_books_nothing(
    receiver: tuple[httpx.AsyncClient, str],
    dev_env: WorkflowEnvironment,
    ledger_db: asyncpg.Pool,
    stripe_base: str,
    change: dict[str, str],
    why: str,
) -> None:
    http, queue = receiver
    payment = await paid(stripe_base, 2700)
    request = refund_request(payment)
    result = await (await start_refund(dev_env.client, request, queue)).result()
    assert result.status is RefundStatus.SUCCEEDED and result.psp_refund_id
    refund = (
        await shop_client(stripe_base, SANDBOX_KEY).v1.refunds.retrieve_async(result.psp_refund_id)
    ).to_dict()
    failed = refund | {"status": "failed", "failure_reason": "unknown"} | change
    event = json.dumps(
        {
            "id": f"evt_odd_{uuid.uuid4().hex[:6]}",
            "type": "refund.failed",
            "data": {"object": failed},
        }
    ).encode()
    signed = {"Stripe-Signature": stripe_signed(event, STRIPE_SECRET)}
    answer = await http.post("/webhooks/stripe", content=event, headers=signed)

    assert answer.status_code == 200 and why in answer.text
    kinds = sorted(t.kind for t in await Ledger(ledger_db).transfers_for_refund(request.request_id))
    assert kinds == ["pending", "post"], "nothing was booked back"
