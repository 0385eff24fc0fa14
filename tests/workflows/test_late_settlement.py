"""A provider that settles a refund after its workflow gave up: the kept reservation follows."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.ledger import Ledger
from starters.client import start_refund
from tests.support.adyen_harness import served_adyen
from tests.support.stack import running_worker
from tests.workflows.test_refund_paths import refund_request
from workflows.late_settlement import RefundLateSettlementWorkflow, late_settlement_workflow_id
from workflows.models import Psp, RefundStatus


async def test_a_refund_adyen_settles_after_seven_days_is_posted_then(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool
) -> None:
    client, queue = time_skipping_env.client, f"late-settle-{uuid.uuid4().hex[:8]}"
    ledger = Ledger(ledger_db)
    async with served_adyen(client, ledger_db, task_queue=queue) as adyen:
        payment = await adyen.paid(4000)
        adyen.sandbox.settle_after_seconds = 3600  # Adyen takes its time with the REFUND
        async with running_worker(
            client, ledger_db, None, providers={Psp.ADYEN: adyen.provider}, task_queue=queue
        ):
            request = refund_request(payment, psp=Psp.ADYEN, currency="EUR")
            handle = await start_refund(client, request, queue)
            gave_up = await asyncio.wait_for(handle.result(), timeout=60)  # 7 days, skipped
            kept = await ledger.payment_position(f"adyen:{payment}")

            adyen.sandbox.settle_now()  # ...and then notifies success after all
            late = client.get_workflow_handle_for(
                RefundLateSettlementWorkflow.run, late_settlement_workflow_id(request.request_id)
            )
            for _ in range(100):  # the receiver starts it when the notification arrives
                try:
                    await late.describe()
                    break
                except RPCError:
                    await asyncio.sleep(0.1)
            settled = await asyncio.wait_for(late.result(), timeout=30)
            posted = await ledger.payment_position(f"adyen:{payment}")

    assert gave_up.status is RefundStatus.FAILED
    assert gave_up.reason == "the provider did not settle the refund within 7 days"
    assert kept is not None and (kept.reserved, kept.refunded) == (4000, 0)
    assert settled.action == "posted"
    assert posted is not None and (posted.reserved, posted.refunded) == (0, 4000)
    assert await ledger.verify() == []
