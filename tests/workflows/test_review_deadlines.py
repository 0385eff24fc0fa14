"""Review deadlines run on durable timers (skipped here); cancel works while in review."""

from __future__ import annotations

import asyncpg
import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.ledger import Ledger
from activities.risk import RiskPolicy
from starters.client import start_refund
from tests.support.stack import running_worker
from tests.workflows.review_support import paid, reach, refunds_at_provider
from tests.workflows.test_refund_paths import refund_request
from workflows.models import CancelRequest, RefundStatus
from workflows.refund import RefundWorkflow
from workflows.review_models import ApproveDecision

HIGH = 60_000


async def test_unreviewed_refund_escalates_then_expires_and_voids_its_reservation(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    payment = await paid(stripe_base, HIGH)
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        handle = await start_refund(client, refund_request(payment), queue)
        await reach(handle, RefundStatus.AWAITING_REVIEW)
        result = await handle.result()  # waiting on the result lets the server skip 72h
        with pytest.raises((WorkflowUpdateFailedError, RPCError)):  # too late: it has ended
            await handle.execute_update(
                RefundWorkflow.approve_refund, ApproveDecision(reviewer="late")
            )
        activities = [
            event.marker_recorded_event_attributes.details["data"].payloads[0].data
            async for event in handle.fetch_history_events()
            if event.HasField("marker_recorded_event_attributes")
        ]

    assert result.status is RefundStatus.EXPIRED
    assert result.reason == "no review decision within 72h"
    assert any(b'"escalate_review"' in data for data in activities), "escalation was not sent"
    assert await refunds_at_provider(stripe_base, payment) == []
    position = await Ledger(ledger_db).payment_position(f"stripe:{payment}")
    assert position is not None and (position.reserved, position.refunded) == (0, 0)


async def test_review_deadlines_follow_the_configured_policy(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    payment = await paid(stripe_base, HIGH)
    client = time_skipping_env.client
    policy = RiskPolicy(escalate_after_s=60, expire_after_s=600)
    async with running_worker(client, ledger_db, stripe_base, policy) as queue:
        handle = await start_refund(client, refund_request(payment), queue)
        view = await reach(handle, RefundStatus.AWAITING_REVIEW)
        assert view.review.deadline and view.review.escalates_at
        assert (view.review.deadline - view.review.escalates_at).total_seconds() == 540
        result = await handle.result()

    assert (result.status, result.reason) == (
        RefundStatus.EXPIRED,
        "no review decision within 10m",
    )


async def test_requester_cancels_during_review(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    payment = await paid(stripe_base, HIGH)
    client = time_skipping_env.client
    request = refund_request(payment, requested_by="sam")
    async with running_worker(client, ledger_db, stripe_base) as queue:
        handle = await start_refund(client, request, queue)
        await reach(handle, RefundStatus.AWAITING_REVIEW)
        await handle.execute_update(RefundWorkflow.cancel_refund, CancelRequest(requested_by="sam"))
        result = await handle.result()
        with pytest.raises((WorkflowUpdateFailedError, RPCError)):  # the refund has ended
            await handle.execute_update(
                RefundWorkflow.cancel_refund, CancelRequest(requested_by="sam")
            )

    assert (result.status, result.reason) == (
        RefundStatus.CANCELED,
        "canceled by sam during review",
    )
    assert await refunds_at_provider(stripe_base, payment) == []
    position = await Ledger(ledger_db).payment_position(f"stripe:{payment}")
    assert position is not None and (position.reserved, position.refunded) == (0, 0)


async def test_a_block_score_rejects_outright(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    payment = await paid(stripe_base, 1_000)
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base, RiskPolicy(block_score=0)) as queue:
        result = await (await start_refund(client, refund_request(payment), queue)).result()

    assert result.status is RefundStatus.REJECTED
    assert result.reason and result.reason.startswith("blocked by risk score")
    assert result.risk.decision == "block"
    assert await refunds_at_provider(stripe_base, payment) == []


async def test_signals_from_any_client_cancel_in_review_and_are_refused_once_it_ended(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    payment = await paid(stripe_base, HIGH)
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        handle = await start_refund(client, refund_request(payment), queue)
        await reach(handle, RefundStatus.AWAITING_REVIEW)
        await handle.signal(RefundWorkflow.cancel, CancelRequest(requested_by="crm"))
        result = await handle.result()

    assert (result.status, result.reason) == (
        RefundStatus.CANCELED,
        "canceled by crm during review",
    )
    assert await refunds_at_provider(stripe_base, payment) == []
