"""Refund paths on the time-skipping server, with the real ledger and the Stripe sandbox."""

from __future__ import annotations

import uuid

import asyncpg
from temporalio.testing import WorkflowEnvironment

from activities.ledger import Ledger
from deploy.sandboxes.stripe_shop import capture_payment, create_payment, shop_client
from starters.client import start_refund
from tests.support.stack import SANDBOX_KEY, running_worker
from workflows.models import Psp, RefundReason, RefundRequest, RefundStatus
from workflows.refund import RefundWorkflow


def refund_request(payment_id: str, **fields: object) -> RefundRequest:
    values: dict[str, object] = {
        "request_id": f"rma-{uuid.uuid4().hex[:10]}",
        "psp": Psp.STRIPE,
        "payment_id": payment_id,
        "currency": "usd",
        "reason": RefundReason.REQUESTED_BY_CUSTOMER,
        "customer_id": "cus_42",
        "requested_by": "support@shop.example",
    }
    values.update(fields)
    return RefundRequest.model_validate(values)


async def test_full_refund_moves_the_money_and_posts_the_ledger(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(shop, amount=4999, currency="usd", customer="cus_42")
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        handle = await start_refund(client, refund_request(payment), queue)
        result = await handle.result()
        view = await handle.query(RefundWorkflow.status)

    assert result.status is RefundStatus.SUCCEEDED
    assert result.amount_refunded == 4999
    assert result.currency == "USD"
    assert result.psp_refund_id and result.psp_refund_id.startswith("re_")
    assert view.status is RefundStatus.SUCCEEDED
    intent = await shop.v1.payment_intents.retrieve_async(payment, {"expand": ["latest_charge"]})
    assert intent.latest_charge.amount_refunded == 4999  # type: ignore[union-attr]
    position = await Ledger(ledger_db).payment_position(f"stripe:{payment}")
    assert position is not None
    assert (position.reserved, position.refunded) == (0, 4999)
    assert await Ledger(ledger_db).verify() == []


async def test_partial_refund_by_charge_id_leaves_the_rest_refundable(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(shop, amount=12000, currency="eur", customer="cus_42")
    intent = await shop.v1.payment_intents.retrieve_async(payment)
    charge_id = str(intent.latest_charge)
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        first = await (
            await start_refund(
                client, refund_request(charge_id, amount=3500, currency="EUR"), queue
            )
        ).result()
        rest = await (
            await start_refund(client, refund_request(charge_id, currency="eur"), queue)
        ).result()

    assert (first.status, first.amount_refunded) == (RefundStatus.SUCCEEDED, 3500)
    assert (rest.status, rest.amount_refunded) == (RefundStatus.SUCCEEDED, 8500)
    charge = await shop.v1.charges.retrieve_async(charge_id)
    assert charge.amount_refunded == 12000


async def test_authorised_only_payment_is_voided_not_refunded(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(
        shop, amount=2500, currency="usd", customer="cus_42", capture=False
    )
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        result = await (await start_refund(client, refund_request(payment), queue)).result()

    assert result.status is RefundStatus.SUCCEEDED
    assert result.amount_refunded == 2500
    intent = await shop.v1.payment_intents.retrieve_async(payment, {"expand": ["latest_charge"]})
    assert intent.status == "canceled"
    assert intent.latest_charge.captured is False  # type: ignore[union-attr]
    balances = {(b.account, b.currency): b.balance for b in await Ledger(ledger_db).balances()}
    assert balances[("merchant:voided_authorizations", "USD")] == 2500
    assert balances[("psp:stripe:authorizations", "USD")] == -2500


async def test_repeated_start_joins_the_same_refund_and_refunds_once(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(shop, amount=3000, currency="usd", customer="cus_42")
    request = refund_request(payment, amount=1000)
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        first = await start_refund(client, request, queue)
        second = await start_refund(client, request, queue)
        assert second.id == first.id
        assert second.result_run_id == first.result_run_id
        result = await first.result()
        after_close = await start_refund(client, request, queue)
        assert await after_close.result() == result

    refunds = await shop.v1.refunds.list_async({"payment_intent": payment})
    assert [r.amount for r in refunds.data] == [1000]


async def test_partly_captured_payment_refunds_what_was_captured(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(
        shop, amount=1000, currency="usd", customer="cus_42", capture=False
    )
    await capture_payment(shop, payment, amount=600)
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        too_much = await (
            await start_refund(client, refund_request(payment, amount=601), queue)
        ).result()
        everything = await (await start_refund(client, refund_request(payment), queue)).result()

    assert too_much.status is RefundStatus.REJECTED
    assert too_much.reason and "6.00 USD" in too_much.reason
    assert (everything.status, everything.amount_refunded) == (RefundStatus.SUCCEEDED, 600)
