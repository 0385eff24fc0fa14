"""A refund asked for before Adyen's AUTHORISATION notification waits for it, for a while."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from temporalio.testing import WorkflowEnvironment

from deploy.sandboxes.adyen_shop import adyen_checkout
from starters.client import start_refund
from tests.support.adyen_harness import served_adyen
from tests.support.stack import running_worker
from tests.workflows.test_refund_paths import refund_request
from workflows.models import Psp, RefundStatus


async def test_a_refund_right_after_checkout_waits_for_the_payments_notification(
    dev_env: WorkflowEnvironment, ledger_db: asyncpg.Pool
) -> None:
    client, queue = dev_env.client, f"notice-{uuid.uuid4().hex[:8]}"
    async with served_adyen(client, ledger_db, task_queue=queue) as adyen:
        adyen.sandbox.settle_after_seconds = 3.0  # the AUTHORISATION comes 3 s after checkout
        payment = await adyen_checkout(adyen.sandbox.base_url, 2200, "EUR")
        adyen.sandbox.settle_after_seconds = 0.2
        async with running_worker(
            client, ledger_db, None, providers={Psp.ADYEN: adyen.provider}, task_queue=queue
        ):
            request = refund_request(payment, psp=Psp.ADYEN, currency="EUR")
            handle = await start_refund(client, request, queue)  # before the notification
            result = await asyncio.wait_for(handle.result(), timeout=60)

    assert result.status is RefundStatus.SUCCEEDED, result.reason
    assert result.amount_refunded == 2200


async def test_a_payment_adyen_never_notifies_is_refused_after_half_an_hour(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool
) -> None:
    client, queue = time_skipping_env.client, f"notice-{uuid.uuid4().hex[:8]}"
    async with (
        served_adyen(client, ledger_db, task_queue=queue) as adyen,
        running_worker(
            client, ledger_db, None, providers={Psp.ADYEN: adyen.provider}, task_queue=queue
        ),
    ):
        request = refund_request("NEVERNOTIFIED000", psp=Psp.ADYEN, currency="EUR")
        handle = await start_refund(client, request, queue)
        result = await asyncio.wait_for(handle.result(), timeout=60)

    assert result.status is RefundStatus.REJECTED
    assert result.reason is not None
    assert result.reason.startswith("Adyen has not notified an AUTHORISATION for NEVERNOTIFIED000")
    assert result.reason.endswith("(waited 30m)")
