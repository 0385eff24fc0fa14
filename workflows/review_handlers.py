"""Signals and validated updates through which reviewers, requesters and providers steer a refund.

Signals (``approve``, ``reject``, ``cancel``) are the contract for any client and the Temporal
UI: a signal that breaks a rule is recorded as refused and changes nothing. The same decisions
as updates (``approve_refund``, ``reject_refund``, ``cancel_refund``) are what our CLI and API
send: their validators refuse a bad decision at once, and a refused update writes no history.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.models import (
        CancelRequest,
        PaymentDisputed,
        ProviderRefundUpdate,
        PspRefund,
        PspRefundStatus,
        RefundRequest,
        RefundStatus,
        RefundView,
    )
    from workflows.review import ReviewBook
    from workflows.review_models import ApproveDecision, RejectDecision

CANCELABLE = frozenset(
    {RefundStatus.RECEIVED, RefundStatus.VALIDATING, RefundStatus.AWAITING_REVIEW}
)


class ReviewHandlers:
    _review: ReviewBook
    _status: RefundStatus
    _canceled_by: str | None
    _psp_refund_id: str | None
    _pushed: dict[str, PspRefund]
    _closing: bool
    _disputed: str | None
    _request: RefundRequest
    _amount: int | None
    _seen_events: set[str]

    def status(self) -> RefundView:
        raise NotImplementedError

    @workflow.signal(name="approve")
    def approve(self, decision: ApproveDecision) -> None:
        problem = self._review.approve_problem(decision, self._status)
        if problem:
            self._review.refuse(decision.reviewer, "approve", problem)
        else:
            self._review.record_approval(decision)

    @workflow.update(name="approve_refund")
    def approve_refund(self, decision: ApproveDecision) -> RefundView:
        self._review.record_approval(decision)
        return self.status()

    @approve_refund.validator
    def _check_approval(self, decision: ApproveDecision) -> None:
        _refuse_if(self._review.approve_problem(decision, self._status))

    @workflow.signal(name="reject")
    def reject(self, decision: RejectDecision) -> None:
        problem = self._review.reject_problem(decision, self._status)
        if problem:
            self._review.refuse(decision.reviewer, "reject", problem)
        else:
            self._review.record_rejection(decision)

    @workflow.update(name="reject_refund")
    def reject_refund(self, decision: RejectDecision) -> RefundView:
        self._review.record_rejection(decision)
        return self.status()

    @reject_refund.validator
    def _check_rejection(self, decision: RejectDecision) -> None:
        _refuse_if(self._review.reject_problem(decision, self._status))

    @workflow.signal
    def cancel(self, request: CancelRequest) -> None:
        """Honoured until the provider is asked; after that the money is already on its way."""
        problem = self._cancel_problem()
        if problem:
            self._review.refuse(request.requested_by, "cancel", problem)
        elif self._canceled_by is None:
            self._canceled_by = request.requested_by

    @workflow.update(name="cancel_refund")
    def cancel_refund(self, request: CancelRequest) -> RefundView:
        self._canceled_by = self._canceled_by or request.requested_by
        return self.status()

    @cancel_refund.validator
    def _check_cancel(self, request: CancelRequest) -> None:
        _refuse_if(self._cancel_problem())

    @workflow.signal(name="provider_update")
    def provider_update(self, update: ProviderRefundUpdate) -> None:
        """A verified webhook about our refund at the provider; repeats change nothing."""
        if update.event_id in self._seen_events:
            return
        self._seen_events.add(update.event_id)
        fits = update.currency == self._request.currency and update.amount <= (self._amount or 0)
        if update.status is PspRefundStatus.PENDING or not fits:
            return
        # Kept by the provider's refund id: settlement takes only the one for its refund. The
        # first outcome stands, except a failure after success (a late failure: booked back).
        known = self._pushed.get(update.psp_refund_id)
        late_failure = (
            # Recorded in the history, so a refund that took the first word before this
            # replays as it ran.
            workflow.patched("late-failure-replaces-pushed-success")
            and known is not None
            and known.status is PspRefundStatus.SUCCEEDED
            and update.status is PspRefundStatus.FAILED
        )
        if known is None or late_failure:
            self._pushed[update.psp_refund_id] = update.as_outcome()

    @workflow.signal(name="payment_disputed")
    def payment_disputed(self, dispute: PaymentDisputed) -> None:
        if self._review.open and self._disputed is None:
            self._disputed = dispute.dispute_id

    def _cancel_problem(self) -> str | None:
        if self._closing:
            return "the refund is already ending"
        if self._status in CANCELABLE and not self._review.decided:
            return None
        return f"the refund is {self._status.value}: it can no longer be canceled"


async def wait_until(condition: Callable[[], bool], until: datetime) -> bool:
    """Wait on a durable timer; True when ``condition`` held before ``until``."""
    remaining = until - workflow.now()
    if remaining <= timedelta(0):
        return condition()
    try:
        await workflow.wait_condition(condition, timeout=remaining)
    except TimeoutError:
        return False
    return True


def _refuse_if(problem: str | None) -> None:
    if problem:
        raise ValueError(problem)
