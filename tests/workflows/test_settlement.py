"""A refund the provider answers as pending waits, on durable timers, for the provider to settle."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
from temporalio.testing import WorkflowEnvironment

from activities.ledger import Ledger
from deploy.sandboxes.stripe_sandbox import StripeSandbox
from deploy.sandboxes.stripe_shop import create_payment, shop_client
from starters.client import RefundHandle, start_refund
from tests.support.stack import SANDBOX_KEY, running_worker
from tests.workflows.test_refund_paths import refund_request
from workflows.models import ProviderRefundUpdate, PspRefundStatus, RefundStatus
from workflows.refund import RefundWorkflow


async def wait_for_status(handle: RefundHandle, status: RefundStatus) -> str:
    async with asyncio.timeout(20):
        while True:
            view = await handle.query(RefundWorkflow.status)
            if view.status is status:
                assert view.psp_refund_id is not None
                return view.psp_refund_id
            await asyncio.sleep(0.1)


async def test_pending_refund_is_posted_once_the_provider_settles_it(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(
        shop,
        amount=9100,
        currency="usd",
        customer="cus_9",
        payment_method="pm_card_pendingRefund",
    )
    request = refund_request(payment, amount=4000)
    client = time_skipping_env.client
    ledger = Ledger(ledger_db)
    async with running_worker(client, ledger_db, stripe_base) as queue:
        handle = await start_refund(client, request, queue)
        psp_refund_id = await wait_for_status(handle, RefundStatus.AWAITING_SETTLEMENT)
        position = await ledger.payment_position(f"stripe:{payment}")
        assert position is not None and (position.reserved, position.refunded) == (4000, 0)

        async with httpx.AsyncClient(base_url=stripe_base) as sandbox:
            answer = await sandbox.post(
                f"/_sandbox/refunds/{psp_refund_id}/settle", json={"status": "succeeded"}
            )
            answer.raise_for_status()
        result = await handle.result()

    assert (result.status, result.amount_refunded) == (RefundStatus.SUCCEEDED, 4000)
    position = await ledger.payment_position(f"stripe:{payment}")
    assert position is not None and (position.reserved, position.refunded) == (0, 4000)
    assert await ledger.verify() == []


async def test_a_failing_settlement_poll_is_noted_and_polling_goes_on(
    time_skipping_env: WorkflowEnvironment,
    ledger_db: asyncpg.Pool,
    stripe_sandbox: StripeSandbox,
    stripe_base: str,
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(
        shop,
        amount=5200,
        currency="usd",
        customer="cus_9",
        payment_method="pm_card_pendingRefund",
    )
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        handle = await start_refund(client, refund_request(payment), queue)
        psp_refund_id = await wait_for_status(handle, RefundStatus.AWAITING_SETTLEMENT)
        # The next poll is refused for good (a revoked key, say): noted, then polled again.
        stripe_sandbox.faults.script(
            f"/v1/refunds/{psp_refund_id}", "GET", fail_times=1, status=401
        )
        async with httpx.AsyncClient(base_url=stripe_base) as sandbox:
            await sandbox.post(
                f"/_sandbox/refunds/{psp_refund_id}/settle", json={"status": "succeeded"}
            )
        result = await handle.result()
        view = await handle.query(RefundWorkflow.status)

    assert (result.status, result.amount_refunded) == (RefundStatus.SUCCEEDED, 5200)
    assert view.last_error and "settlement poll failed, will poll again" in view.last_error
    position = await Ledger(ledger_db).payment_position(f"stripe:{payment}")
    assert position is not None and (position.reserved, position.refunded) == (0, 5200)


async def test_a_webhook_update_settles_the_refund_once_however_often_it_arrives(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(
        shop,
        amount=3300,
        currency="usd",
        customer="cus_9",
        payment_method="pm_card_pendingRefund",
    )
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        handle = await start_refund(client, refund_request(payment), queue)
        psp_refund_id = await wait_for_status(handle, RefundStatus.AWAITING_SETTLEMENT)
        failed = ProviderRefundUpdate(
            event_id="evt_fail",
            psp_refund_id=psp_refund_id,
            status=PspRefundStatus.FAILED,
            amount=3300,
            currency="USD",
            failure_reason="lost_or_stolen_card",
        )
        for _ in range(3):  # one webhook, delivered three times
            await handle.signal(RefundWorkflow.provider_update, failed)
        result = await handle.result()

    assert result.status is RefundStatus.FAILED
    assert result.reason == "the provider failed the refund: lost_or_stolen_card"
    position = await Ledger(ledger_db).payment_position(f"stripe:{payment}")
    assert position is not None and (position.reserved, position.refunded) == (0, 0)


async def test_an_update_for_another_refund_or_amount_is_not_taken(
    time_skipping_env: WorkflowEnvironment,
    ledger_db: asyncpg.Pool,
    stripe_base: str,
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(
        shop,
        amount=2100,
        currency="usd",
        customer="cus_9",
        payment_method="pm_card_pendingRefund",
    )
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        handle = await start_refund(client, refund_request(payment), queue)
        psp_refund_id = await wait_for_status(handle, RefundStatus.AWAITING_SETTLEMENT)
        for event_id, refund_id, amount in (
            ("evt_other", "re_someone_else", 2100),
            ("evt_more", psp_refund_id, 2101),
        ):
            await handle.signal(
                RefundWorkflow.provider_update,
                ProviderRefundUpdate(
                    event_id=event_id,
                    psp_refund_id=refund_id,
                    status=PspRefundStatus.FAILED,
                    amount=amount,
                    currency="USD",
                    failure_reason="not ours",
                ),
            )
        async with httpx.AsyncClient(base_url=stripe_base) as sandbox:
            await sandbox.post(
                f"/_sandbox/refunds/{psp_refund_id}/settle", json={"status": "succeeded"}
            )
        result = await handle.result()

    assert (result.status, result.amount_refunded) == (RefundStatus.SUCCEEDED, 2100)
