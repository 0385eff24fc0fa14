"""Provider trouble never moves money twice and never leaves a reservation behind."""

from __future__ import annotations

import asyncpg
from temporalio.testing import WorkflowEnvironment

from activities.ledger import Ledger
from deploy.sandboxes.stripe_sandbox import StripeSandbox
from deploy.sandboxes.stripe_shop import create_payment, shop_client
from starters.client import start_refund
from tests.support.stack import SANDBOX_KEY, running_worker
from tests.workflows.test_refund_paths import refund_request
from workflows.models import RefundStatus


async def test_answer_lost_after_the_refund_was_made_is_retried_into_one_refund(
    time_skipping_env: WorkflowEnvironment,
    ledger_db: asyncpg.Pool,
    stripe_sandbox: StripeSandbox,
    stripe_base: str,
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(shop, amount=7000, currency="usd", customer="cus_7")
    stripe_sandbox.faults.script("/v1/refunds", "POST", drop_times=1)
    request = refund_request(payment, amount=2500)
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        handle = await start_refund(client, request, queue)
        result = await handle.result()
        attempts = [
            event.activity_task_started_event_attributes.attempt
            async for event in handle.fetch_history_events()
            if event.HasField("activity_task_started_event_attributes")
        ]

    assert result.status is RefundStatus.SUCCEEDED
    assert attempts == [2], "the first attempt lost its answer and was retried once"
    refunds = await shop.v1.refunds.list_async({"payment_intent": payment})
    assert [r.amount for r in refunds.data] == [2500]
    position = await Ledger(ledger_db).payment_position(f"stripe:{payment}")
    assert position is not None and (position.reserved, position.refunded) == (0, 2500)


async def test_provider_errors_are_retried_until_it_answers(
    time_skipping_env: WorkflowEnvironment,
    ledger_db: asyncpg.Pool,
    stripe_sandbox: StripeSandbox,
    stripe_base: str,
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(shop, amount=1800, currency="usd", customer="cus_7")
    stripe_sandbox.faults.script("/v1/refunds", "POST", fail_times=2, status=503)
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        result = await (await start_refund(client, refund_request(payment), queue)).result()

    assert (result.status, result.amount_refunded) == (RefundStatus.SUCCEEDED, 1800)
    refunds = await shop.v1.refunds.list_async({"payment_intent": payment})
    assert len(refunds.data) == 1


async def test_refund_failed_by_the_provider_later_releases_the_reservation(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(
        shop, amount=6400, currency="usd", customer="cus_7", payment_method="pm_card_refundFail"
    )
    request = refund_request(payment)
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        result = await (await start_refund(client, request, queue)).result()

    assert result.status is RefundStatus.FAILED
    assert result.amount_refunded == 0
    assert result.reason and "expired_or_canceled_card" in result.reason
    ledger = Ledger(ledger_db)
    position = await ledger.payment_position(f"stripe:{payment}")
    assert position is not None and (position.reserved, position.refunded) == (0, 0)
    kinds = sorted(t.kind for t in await ledger.transfers_for_refund(request.request_id))
    assert kinds == ["pending", "void"]
