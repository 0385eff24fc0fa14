"""Adyen tells a refund's outcome only by notification: a late one is escalated, then awaited."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
from aiohttp import web
from temporalio.testing import WorkflowEnvironment

from activities.adyen_provider import AdyenProvider
from activities.events import EventPublisher
from deploy.sandboxes.adyen_shop import SANDBOX_API_KEY, SANDBOX_MERCHANT_ACCOUNT
from starters.client import start_refund
from tests.support.adyen_harness import served_adyen
from tests.support.stack import running_worker
from tests.workflows.test_refund_paths import refund_request
from workflows.models import Psp, RefundStatus
from workflows.refund import RefundWorkflow


async def test_a_late_adyen_notification_is_escalated_and_still_settles_the_refund(
    dev_env: WorkflowEnvironment,
    ledger_db: asyncpg.Pool,
    subscriber: tuple[str, list[web.Request], list[bytes]],
) -> None:
    base, _, bodies = subscriber
    client, queue = dev_env.client, f"adyen-late-{uuid.uuid4().hex[:8]}"
    async with served_adyen(client, ledger_db, task_queue=queue) as adyen:
        payment = await adyen.paid(6000)
        adyen.sandbox.settle_after_seconds = 4.0  # the REFUND notification comes late...
        provider = AdyenProvider(
            SANDBOX_API_KEY,
            SANDBOX_MERCHANT_ACCOUNT,
            adyen.book,
            adyen.sandbox.base_url,
            settlement_timeout_s=1,  # ...after the settlement timeout
        )
        async with running_worker(
            client,
            ledger_db,
            None,
            publisher=EventPublisher([f"{base}/hooks"], "whsec_overdue"),
            providers={Psp.ADYEN: provider},
            task_queue=queue,
        ):
            request = refund_request(payment, psp=Psp.ADYEN, currency="EUR")
            handle = await start_refund(client, request, queue)
            result = await asyncio.wait_for(handle.result(), timeout=30)
            view = await handle.query(RefundWorkflow.status)

    assert result.status is RefundStatus.SUCCEEDED
    assert result.amount_refunded == 6000
    events = [json.loads(body) for body in bodies]
    overdue = [e for e in events if e["type"] == "refund.settlement_overdue"]
    assert len(overdue) == 1
    assert overdue[0]["data"]["psp_refund_id"] == result.psp_refund_id
    assert overdue[0]["data"]["waiting_s"] == 1
    assert [e["type"] for e in events][-1] == "refund.succeeded"
    assert view.last_error and "escalated" in view.last_error
