"""Human review on the time-skipping server: who may decide, and what each decision does."""

from __future__ import annotations

import asyncpg
import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.ledger import Ledger
from starters.client import start_refund
from tests.support.stack import running_worker
from tests.workflows.review_support import paid, reach, refunds_at_provider
from tests.workflows.test_refund_paths import refund_request
from workflows.models import RefundStatus
from workflows.refund import RefundWorkflow
from workflows.review_models import ApproveDecision, RejectDecision

HIGH = 60_000  # above the default REFUNDS_REVIEW_ABOVE of 50000: always reviewed
DUAL = 250_000  # above the default REFUNDS_DUAL_APPROVAL_ABOVE of 200000: two approvals


async def test_high_value_refund_waits_for_a_reviewer_before_any_money_moves(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    payment = await paid(stripe_base, HIGH)
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        handle = await start_refund(client, refund_request(payment), queue)
        view = await reach(handle, RefundStatus.AWAITING_REVIEW)
        assert await refunds_at_provider(stripe_base, payment) == []
        assert view.risk.decision == "review"
        assert any("above" in reason for reason in view.risk.reasons), view.risk.reasons
        assert view.review.deadline is not None and view.review.approvals_required == 1

        approved = await handle.execute_update(
            RefundWorkflow.approve_refund, ApproveDecision(reviewer="rita", note="receipt ok")
        )
        assert [a.reviewer for a in approved.review.approvals] == ["rita"]
        result = await handle.result()

    assert (result.status, result.amount_refunded) == (RefundStatus.SUCCEEDED, HIGH)
    assert result.risk.decision == "review"
    assert await refunds_at_provider(stripe_base, payment) == [HIGH]


async def test_requester_cannot_approve_their_own_refund(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    payment = await paid(stripe_base, HIGH)
    client = time_skipping_env.client
    request = refund_request(payment, requested_by="sam")
    async with running_worker(client, ledger_db, stripe_base) as queue:
        handle = await start_refund(client, request, queue)
        await reach(handle, RefundStatus.AWAITING_REVIEW)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                RefundWorkflow.approve_refund, ApproveDecision(reviewer="sam")
            )
        assert "sam requested this refund, so cannot approve it" in str(refused.value.cause)
        await handle.signal(RefundWorkflow.approve, ApproveDecision(reviewer="sam"))
        view = await handle.query(RefundWorkflow.status)
        assert view.status is RefundStatus.AWAITING_REVIEW
        assert view.review.approvals == []
        assert [(d.reviewer, d.action) for d in view.review.refused_decisions] == [
            ("sam", "approve")
        ]
        await handle.signal(RefundWorkflow.approve, ApproveDecision(reviewer="rita"))
        result = await handle.result()

    assert result.status is RefundStatus.SUCCEEDED


async def test_above_the_dual_approval_amount_two_different_reviewers_must_approve(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    payment = await paid(stripe_base, DUAL)
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        handle = await start_refund(client, refund_request(payment), queue)
        await reach(handle, RefundStatus.AWAITING_REVIEW)
        await handle.execute_update(RefundWorkflow.approve_refund, ApproveDecision(reviewer="a"))
        with pytest.raises(WorkflowUpdateFailedError, match="update"):
            await handle.execute_update(
                RefundWorkflow.approve_refund, ApproveDecision(reviewer="a")
            )
        view = await handle.query(RefundWorkflow.status)
        assert view.status is RefundStatus.AWAITING_REVIEW
        assert view.review.approvals_required == 2
        assert await refunds_at_provider(stripe_base, payment) == []
        await handle.execute_update(RefundWorkflow.approve_refund, ApproveDecision(reviewer="b"))
        result = await handle.result()

    assert (result.status, result.amount_refunded) == (RefundStatus.SUCCEEDED, DUAL)


async def test_a_reviewer_may_approve_less_never_more(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    payment = await paid(stripe_base, HIGH)
    client = time_skipping_env.client
    request = refund_request(payment)
    async with running_worker(client, ledger_db, stripe_base) as queue:
        handle = await start_refund(client, request, queue)
        await reach(handle, RefundStatus.AWAITING_REVIEW)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                RefundWorkflow.approve_refund, ApproveDecision(reviewer="rita", amount=HIGH + 1)
            )
        assert "more than the 600.00 USD requested" in str(refused.value.cause)
        await handle.execute_update(
            RefundWorkflow.approve_refund, ApproveDecision(reviewer="rita", amount=45_000)
        )
        result = await handle.result()

    assert (result.status, result.amount_refunded) == (RefundStatus.SUCCEEDED, 45_000)
    assert await refunds_at_provider(stripe_base, payment) == [45_000]
    position = await Ledger(ledger_db).payment_position(f"stripe:{payment}")
    assert position is not None and (position.reserved, position.refunded) == (0, 45_000)


async def test_rejection_voids_the_reservation_and_moves_nothing(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    payment = await paid(stripe_base, HIGH)
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        handle = await start_refund(client, refund_request(payment), queue)
        await reach(handle, RefundStatus.AWAITING_REVIEW)
        await handle.execute_update(
            RefundWorkflow.reject_refund, RejectDecision(reviewer="rita", reason="item not back")
        )
        result = await handle.result()
        with pytest.raises((WorkflowUpdateFailedError, RPCError)):  # the refund has ended
            await handle.execute_update(
                RefundWorkflow.approve_refund, ApproveDecision(reviewer="tom")
            )

    assert result.status is RefundStatus.REJECTED
    assert result.reason == "rejected by rita: item not back"
    assert await refunds_at_provider(stripe_base, payment) == []
    position = await Ledger(ledger_db).payment_position(f"stripe:{payment}")
    assert position is not None and (position.reserved, position.refunded) == (0, 0)


async def test_a_blank_cancel_or_a_renamed_reviewer_never_lets_money_out(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    payment = await paid(stripe_base, DUAL)
    client = time_skipping_env.client
    request = refund_request(payment, requested_by="sam@shop.example")
    async with running_worker(client, ledger_db, stripe_base) as queue:
        handle = await start_refund(client, request, queue)
        await reach(handle, RefundStatus.AWAITING_REVIEW)
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(
                RefundWorkflow.cancel_refund,
                {"requested_by": ""},  # type: ignore[arg-type]
            )
        await handle.signal("cancel", {"requested_by": ""})
        await handle.signal(RefundWorkflow.approve, ApproveDecision(reviewer="SAM@shop.example"))
        await handle.signal(RefundWorkflow.approve, ApproveDecision(reviewer="rita"))
        await handle.signal(RefundWorkflow.approve, ApproveDecision(reviewer=" RITA "))
        view = await handle.query(RefundWorkflow.status)
        assert view.status is RefundStatus.AWAITING_REVIEW
        assert [a.reviewer for a in view.review.approvals] == ["rita"]
        assert [d.reviewer for d in view.review.refused_decisions] == ["SAM@shop.example", "RITA"]
        assert await refunds_at_provider(stripe_base, payment) == []
        await handle.execute_update(RefundWorkflow.approve_refund, ApproveDecision(reviewer="tom"))
        result = await handle.result()

    assert (result.status, result.amount_refunded) == (RefundStatus.SUCCEEDED, DUAL)
