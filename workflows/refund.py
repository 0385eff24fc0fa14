"""RefundWorkflow: one durable workflow per refund, ID ``refund-{request_id}``.

Validate -> reserve in the ledger -> score risk -> review when the policy asks (signals or
validated updates, escalation and expiry on durable timers) -> void or refund at the provider
-> (settle) -> done. Every business outcome is a ``RefundResult``; the workflow itself fails
only on a bug. Once the amount is reserved, every ending but success voids the reservation.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

with workflow.unsafe.imports_passed_through():
    from workflows import metrics
    from workflows import search_attributes as sa
    from workflows.models import (
        PaymentSnapshot,
        PspRefund,
        PspRefundStatus,
        RefundInput,
        RefundPlan,
        RefundRequest,
        RefundResult,
        RefundStatus,
        RefundView,
        ReverseAtProvider,
        RiskView,
        SettleRefund,
    )
    from workflows.notices import announce, book_back, escalate, record_outcome
    from workflows.payment_notice import fetch_payment
    from workflows.returns import plan_and_reserve
    from workflows.review import ReviewBook, format_duration
    from workflows.review_handlers import ReviewHandlers, wait_until
    from workflows.review_models import (
        RiskAssessment,
        RiskDecision,
        ScoreRefund,
    )
    from workflows.rules import (
        Refusal,
        describe_invalid,
        idempotency_key,
        is_opaque_id,
        request_problem,
        undecodable_request,
    )
    from workflows.settlement import LedgerNotPosted, await_settlement
    from workflows.steps import StepFailed, local_step, provider_step


@workflow.defn(name="RefundWorkflow")
class RefundWorkflow(ReviewHandlers):
    @workflow.init
    def __init__(self, request: RefundInput) -> None:
        self._invalid: str | None = None
        if isinstance(request, RefundRequest):
            self._request = request
        else:
            try:
                self._request = RefundRequest.model_validate(request)
            except ValidationError as error:
                self._invalid = describe_invalid(error)
                self._request = undecodable_request(request, workflow.info().workflow_id)
        self._status = RefundStatus.RECEIVED
        self._amount: int | None = self._request.amount if not self._invalid else None
        self._amount_refunded = 0
        self._psp_refund_id: str | None = None
        self._last_error: str | None = None
        self._canceled_by: str | None = None
        self._risk = RiskView()
        self._review = ReviewBook(self._request.requested_by)
        self._escalates_at: datetime | None = None
        self._deadline: datetime | None = None
        self._payment: PaymentSnapshot | None = None
        self._pushed: dict[str, PspRefund] = {}
        self._closing = False
        self._disputed: str | None = None
        self._notify = False  # learned from the assessment: are there event subscribers?
        self._seen_events: set[str] = set()
        self._review_wait_s: float | None = None

    @workflow.run
    async def run(self, _input: RefundInput) -> RefundResult:
        request = self._request
        problem = self._invalid or request_problem(request, workflow.info().workflow_id)
        if problem:
            self._amount = None  # never index a value that failed the checks
            return await self._finish(RefundStatus.REJECTED, problem)
        self._status = RefundStatus.VALIDATING
        try:
            payment = await fetch_payment(request, self._note_settlement)
            self._payment = payment
            plan = await plan_and_reserve(request, payment)
            self._amount = plan.amount
        except Refusal as refusal:
            return await self._finish(RefundStatus.REJECTED, str(refusal))
        except StepFailed as failed:
            # A return's quote and claim run again if this task does (a crash, a reset): a
            # refusal then may come after its reservation committed, so release whatever is
            # held (nothing, usually). Plain refunds keep the command sequence they had.
            returned = request.lines is not None and workflow.patched("release-refused-return")
            if self._payment is None or (failed.refused and not returned):
                return await self._finish(_ended(failed), str(failed))
            if failed.refused:
                return await self._release(RefundStatus.REJECTED, str(failed))
            # The reserve may have committed before its answer was lost: release it.
            return await self._release(RefundStatus.FAILED, str(failed))
        try:
            assessment = await local_step(
                "score_refund",
                ScoreRefund(request=request, payment=payment, plan=plan),
                RiskAssessment,
            )
        except StepFailed as failed:
            return await self._release(RefundStatus.FAILED, f"risk scoring failed: {failed}")
        self._risk = RiskView(
            score=assessment.score, decision=assessment.decision.value, reasons=assessment.reasons
        )
        self._notify = assessment.notify_outcomes
        if assessment.decision is RiskDecision.BLOCK:
            reasons = "; ".join(assessment.reasons)
            return await self._release(
                RefundStatus.REJECTED, f"blocked by risk score {assessment.score}: {reasons}"
            )
        if assessment.decision is RiskDecision.REVIEW:
            ended = await self._await_review(assessment, plan)
            if ended is not None:
                return ended
            plan = plan.model_copy(update={"amount": self._review.approved_amount})
            self._amount = plan.amount
        if self._canceled_by is not None:
            return await self._release(RefundStatus.CANCELED, f"canceled by {self._canceled_by}")
        return await self._reverse(request, payment, plan)

    async def _await_review(
        self, assessment: RiskAssessment, plan: RefundPlan
    ) -> RefundResult | None:
        """Wait for reviewers; escalate at the first deadline, expire at the second."""
        book = self._review
        book.begin(
            plan.amount,
            plan.currency,
            assessment.approvals_required,
            void=plan.operation == "void",
            quoted=self._request.lines is not None,
        )
        self._status = RefundStatus.AWAITING_REVIEW
        now = workflow.now()
        self._escalates_at = now + timedelta(seconds=assessment.escalate_after_s)
        self._deadline = now + timedelta(seconds=assessment.expire_after_s)
        workflow.upsert_search_attributes(
            [
                sa.REFUND_STATUS.value_set(self._status.value),
                sa.RISK_SCORE.value_set(assessment.score),
                sa.REFUND_AMOUNT.value_set(plan.amount),
                sa.REVIEW_DEADLINE.value_set(self._deadline),
            ]
        )

        def settled() -> bool:
            return book.decided or self._canceled_by is not None or self._disputed is not None

        if not await wait_until(settled, self._escalates_at):
            await escalate(self._request, assessment, plan)
            if not await wait_until(settled, self._deadline):
                book.open = False
                self._review_wait_s = (workflow.now() - now).total_seconds()
                waited = format_duration(assessment.expire_after_s)
                return await self._release(
                    RefundStatus.EXPIRED, f"no review decision within {waited}"
                )
        book.open = False
        self._review_wait_s = (workflow.now() - now).total_seconds()
        if self._disputed is not None:
            return await self._release(
                RefundStatus.REJECTED,
                f"the payment was disputed ({self._disputed}) during review: the dispute "
                "decides its money, a refund would pay the customer twice",
            )
        if self._canceled_by is not None:
            return await self._release(
                RefundStatus.CANCELED, f"canceled by {self._canceled_by} during review"
            )
        if book.rejection or not book.approved:
            why = book.rejection.reason if book.rejection else "no approval"
            who = book.rejection.reviewer if book.rejection else "review"
            return await self._release(RefundStatus.REJECTED, f"rejected by {who}: {why}")
        self._status = RefundStatus.APPROVED
        # Leaving the queue: engineers filtering AWAITING_REVIEW must not see it any more.
        workflow.upsert_search_attributes([sa.REFUND_STATUS.value_set(self._status.value)])
        return None

    async def _reverse(
        self, request: RefundRequest, payment: PaymentSnapshot, plan: RefundPlan
    ) -> RefundResult:
        self._status = RefundStatus.REFUNDING
        order = ReverseAtProvider(
            request_id=request.request_id,
            payment=payment,
            plan=plan,
            reason=request.reason,
            idempotency_key=idempotency_key(request.request_id, plan.operation),
        )
        try:
            outcome = await provider_step("reverse_at_provider", order, PspRefund, request.psp)
        except StepFailed as failed:
            return await self._release(_ended(failed), str(failed))
        self._psp_refund_id = outcome.psp_refund_id
        if outcome.status is PspRefundStatus.PENDING:
            self._status = RefundStatus.AWAITING_SETTLEMENT
            workflow.upsert_search_attributes([sa.REFUND_STATUS.value_set(self._status.value)])
            try:
                outcome = await await_settlement(
                    request, outcome, self._note_settlement, self._pushed.get
                )
            except LedgerNotPosted as unposted:
                # Money moved; the books could not record it. Never void: finance posts it.
                self._amount_refunded = unposted.outcome.amount
                return await self._finish(
                    RefundStatus.FAILED,
                    f"refunded at the provider ({unposted.outcome.psp_refund_id}) but the "
                    f"ledger post failed, reservation kept for finance: {unposted}",
                )
        if outcome.status is PspRefundStatus.PENDING:
            # Money may still move: the reservation stays for finance to settle by hand.
            return await self._finish(
                RefundStatus.FAILED, "the provider did not settle the refund within 7 days"
            )
        if outcome.status is PspRefundStatus.FAILED:
            return await self._release(
                RefundStatus.FAILED, f"the provider failed the refund: {outcome.failure_reason}"
            )
        self._amount_refunded = outcome.amount
        return await self._finish(RefundStatus.SUCCEEDED, None)

    def _note_settlement(self, why: str) -> None:
        self._last_error = why

    async def _release(self, status: RefundStatus, reason: str) -> RefundResult:
        """Void the ledger reservation, then end: no money moved."""
        self._closing = True
        await local_step(
            "void_reservation", SettleRefund(request_id=self._request.request_id), type(None)
        )
        return await self._finish(status, reason)

    async def _finish(self, status: RefundStatus, reason: str | None) -> RefundResult:
        self._closing = True
        self._status = status
        if reason:
            self._last_error = reason
        if status is not RefundStatus.SUCCEEDED:
            await record_outcome(self._request, self._payment, self._amount, status)
        if status is not RefundStatus.SUCCEEDED or self._notify:
            await announce(
                self._request, status, self._amount_refunded, self._psp_refund_id, reason
            )
        updates: list[SearchAttributeUpdate[Any]] = [sa.REFUND_STATUS.value_set(status.value)]
        # Set here too (a client may start without search attributes), but never a value
        # the checks refused: search attributes are stored in plaintext.
        if not self._invalid and is_opaque_id(self._request.customer_id):
            updates.append(sa.PSP.value_set(self._request.psp.value))
            updates.append(sa.CUSTOMER_ID.value_set(self._request.customer_id))
            updates.append(sa.PAYMENT_ID.value_set(self._request.payment_id))
        if self._amount is not None:
            updates.append(sa.REFUND_AMOUNT.value_set(self._amount))
        if self._risk.score is not None:
            updates.append(sa.RISK_SCORE.value_set(self._risk.score))
        workflow.upsert_search_attributes(updates)
        await workflow.wait_condition(workflow.all_handlers_finished)
        late = self._pushed.get(self._psp_refund_id or "")
        if status is RefundStatus.SUCCEEDED and late and late.status is PspRefundStatus.FAILED:
            self._last_error = f"failed at the provider after it succeeded: {late.failure_reason}"
            await book_back(self._request, late)
        metrics.refund_finished(self._request, status, self._amount_refunded, self._review_wait_s)
        return RefundResult(
            request_id=self._request.request_id,
            status=status,
            amount_refunded=self._amount_refunded,
            currency=self._request.currency,
            psp_refund_id=self._psp_refund_id,
            reason=reason,
            risk=self._risk,
        )

    @workflow.query
    def status(self) -> RefundView:
        review = self._review.view()
        review.escalates_at, review.deadline = self._escalates_at, self._deadline
        return RefundView(
            request_id=self._request.request_id,
            status=self._status,
            amount=self._amount,
            amount_refunded=self._amount_refunded,
            currency=self._request.currency,
            risk=self._risk,
            review=review,
            psp_refund_id=self._psp_refund_id,
            last_error=self._last_error,
        )


def _ended(failed: StepFailed) -> RefundStatus:
    return RefundStatus.REJECTED if failed.refused else RefundStatus.FAILED
