"""Every bad request ends REJECTED with its reason: nothing reserved, nothing refunded."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.ledger import Ledger
from deploy.sandboxes.stripe_shop import create_payment, shop_client
from starters.client import start_refund
from tests.support.stack import SANDBOX_KEY, running_worker
from tests.workflows.test_refund_paths import refund_request
from workflows.models import RefundResult, RefundStatus
from workflows.refund import RefundWorkflow
from workflows.search_attributes import CUSTOMER_ID

CASES = [
    # (name, payment kwargs, request overrides, words the reason must contain)
    ("zero amount", {}, {"amount": 0}, "positive integer"),
    ("negative amount", {}, {"amount": -500}, "positive integer"),
    ("unknown currency", {}, {"currency": "xyz"}, "unknown currency 'XYZ'"),
    ("currency mismatch", {}, {"currency": "eur"}, "currency mismatch"),
    ("unknown payment", None, {}, "No such payment_intent"),
    ("above refundable", {}, {"amount": 5001}, "above what is still refundable"),
    ("disputed payment", {"payment_method": "pm_card_createDispute"}, {}, "disputed"),
]


@pytest.mark.parametrize(
    ("name", "payment", "overrides", "words"), CASES, ids=[c[0] for c in CASES]
)
async def test_bad_request_is_rejected_and_moves_nothing(
    time_skipping_env: WorkflowEnvironment,
    ledger_db: asyncpg.Pool,
    stripe_base: str,
    name: str,
    payment: dict[str, str] | None,
    overrides: dict[str, object],
    words: str,
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    if payment is None:
        payment_id = "pi_doesnotexist0000"
    else:
        payment_id = await create_payment(
            shop, amount=5000, currency="usd", customer="cus_42", **payment
        )
    request = refund_request(payment_id, **overrides)
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        result = await (await start_refund(client, request, queue)).result()

    assert result.status is RefundStatus.REJECTED, result
    assert result.amount_refunded == 0
    assert result.reason and words in result.reason, result.reason
    assert await Ledger(ledger_db).transfers_for_refund(request.request_id) == []
    if payment is not None:
        refunds = await shop.v1.refunds.list_async({"payment_intent": payment_id})
        assert refunds.data == []


PLAIN_JSON_CASES = [
    ({"psp": "STRIPE"}, "psp"),
    ({"amount": 10.5}, "amount"),
    ({"amount": True}, "amount"),
    ({"amount": "100"}, "amount"),
    ({"metadata": {"n": 1}}, "metadata.n"),
    ({"reason": "chargeback"}, "reason"),
    ({"customer_id": None}, "customer_id"),
    ({"amount": 2**63}, "larger than any payment"),
]


@pytest.mark.parametrize(
    ("change", "words"), PLAIN_JSON_CASES, ids=[c[1] for c in PLAIN_JSON_CASES]
)
async def test_a_malformed_start_from_any_language_is_rejected_not_stuck(
    time_skipping_env: WorkflowEnvironment,
    ledger_db: asyncpg.Pool,
    stripe_base: str,
    change: dict[str, object],
    words: str,
) -> None:
    body: dict[str, object] = {
        "request_id": f"json-{uuid.uuid4().hex[:8]}",
        "psp": "stripe",
        "payment_id": "pi_x",
        "currency": "usd",
        "customer_id": "c",
        "requested_by": "erp",
    }
    body.update(change)
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        result = await client.execute_workflow(
            "RefundWorkflow",
            body,
            id=f"refund-{body['request_id']}",
            task_queue=queue,
            result_type=RefundResult,
        )
    assert result.status is RefundStatus.REJECTED
    assert result.reason and words in result.reason, result.reason


async def test_a_workflow_id_that_is_not_refund_request_id_is_rejected(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    client = time_skipping_env.client
    request = refund_request("pi_anything")
    async with running_worker(client, ledger_db, stripe_base) as queue:
        result = await client.execute_workflow(
            RefundWorkflow.run, request, id=f"other-{request.request_id}", task_queue=queue
        )
    assert result.status is RefundStatus.REJECTED
    assert result.reason and "must be 'refund-" in result.reason


async def test_an_email_as_customer_id_is_refused_and_never_indexed(
    dev_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    client = dev_env.client
    request = refund_request("pi_whatever", customer_id="alice@example.com")
    async with running_worker(client, ledger_db, stripe_base) as queue:
        handle = await start_refund(client, request, queue)
        result = await handle.result()
        described = await handle.describe()
    assert result.status is RefundStatus.REJECTED
    assert result.reason and "customer_id must be an opaque id" in result.reason
    assert described.typed_search_attributes.get(CUSTOMER_ID) is None
