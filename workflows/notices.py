"""Notices and records the refund workflow leaves on its way; its outcome never depends on
them (each is retried, then given up and logged)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.models import (
        CompensateRefund,
        LateFailureResult,
        PaymentSnapshot,
        PspRefund,
        RefundOutcomeEvent,
        RefundPlan,
        RefundRequest,
        RefundStatus,
        SettlementOverdue,
    )
    from workflows.review_models import EscalateReview, RecordOutcome, RiskAssessment
    from workflows.steps import StepFailed, local_step, side_step

# A notice may not hold up the refund: reviewers still decide meanwhile.
NOTICE_TRIES = timedelta(seconds=30)


async def escalate(request: RefundRequest, assessment: RiskAssessment, plan: RefundPlan) -> None:
    notice = EscalateReview(
        request_id=request.request_id,
        customer_id=request.customer_id,
        amount=plan.amount,
        currency=plan.currency,
        score=assessment.score,
        waiting_s=assessment.escalate_after_s,
    )
    await side_step("escalate_review", notice, "review escalation notice failed", NOTICE_TRIES)


async def settlement_overdue(request: RefundRequest, pending: PspRefund, waited_s: int) -> None:
    notice = SettlementOverdue(
        request_id=request.request_id,
        psp=request.psp,
        psp_refund_id=pending.psp_refund_id,
        amount=pending.amount,
        currency=pending.currency,
        waiting_s=waited_s,
    )
    await side_step("escalate_settlement", notice, "settlement escalation failed", NOTICE_TRIES)


async def announce(
    request: RefundRequest,
    status: RefundStatus,
    amount_refunded: int,
    psp_refund_id: str | None,
    reason: str | None,
) -> None:
    """The signed refund.* event to subscribers."""
    outcome = RefundOutcomeEvent(
        request_id=request.request_id,
        status=status,
        amount_refunded=amount_refunded,
        currency=request.currency,
        customer_id=request.customer_id,
        psp_refund_id=psp_refund_id,
        reason=reason,
    )
    await side_step("publish_outcome", outcome, "refund outcome event not sent", NOTICE_TRIES)


async def record_outcome(
    request: RefundRequest,
    payment: PaymentSnapshot | None,
    amount: int | None,
    status: RefundStatus,
) -> None:
    """Keep a refusal for later risk scoring (successes are in the ledger already)."""
    outcome = RecordOutcome(
        request_id=request.request_id,
        customer_id=request.customer_id,
        payment_key=payment.payment_key if payment else None,
        amount=amount,
        currency=request.currency,
        status=status,
    )
    await side_step("record_outcome", outcome, "could not record the outcome")


async def book_back(request: RefundRequest, failed: PspRefund) -> None:
    """The provider failed the refund after it succeeded, while this workflow was closing:
    book the posted refund back, as RefundLateFailureWorkflow does after it closed."""
    failure = CompensateRefund(
        request_id=request.request_id,
        event_id=f"late-{failed.psp_refund_id}",
        psp_refund_id=failed.psp_refund_id,
        amount=failed.amount,
        currency=failed.currency,
        failure_reason=failed.failure_reason,
    )
    try:
        await local_step("compensate_refund", failure, LateFailureResult)
    except StepFailed as error:
        workflow.logger.error("late failure of %s not booked: %s", request.request_id, error)
