"""RefundWorkflow: one durable workflow per refund, ID ``refund-{request_id}``.

Validate -> reserve in the ledger -> void or refund at the provider -> (settle) -> done.
Every business outcome is a ``RefundResult``; the workflow itself fails only on a bug.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import search_attributes as sa
    from workflows.models import (
        CancelRequest,
        FetchPayment,
        FetchRefund,
        PaymentSnapshot,
        PspRefund,
        PspRefundStatus,
        RefundPlan,
        RefundRequest,
        RefundResult,
        RefundStatus,
        RefundView,
        ReserveRefund,
        ReverseAtProvider,
        SettleRefund,
    )
    from workflows.rules import Refusal, idempotency_key, plan_refund, request_problem

# Error types (ApplicationError.type) that mean "the request was wrong": REJECTED, not FAILED.
REFUSAL_TYPES = frozenset(
    {"RefundRefused", "PaymentNotFound", "PaymentNotRefundable", "CurrencyMismatch", "OverRefund"}
)

T = TypeVar("T")

LOCAL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
)
# The provider call retries until it gets an answer: giving up could leave money moved at the
# provider with the reservation voided. The idempotency key makes every retry the same request.
PROVIDER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5)
)
# Polling backs off from one minute to one hour: a week of waiting stays a few hundred events.
SETTLEMENT_FIRST_POLL = timedelta(minutes=1)
SETTLEMENT_POLL_AT_MOST = timedelta(hours=1)
SETTLEMENT_GIVE_UP_AFTER = timedelta(days=7)


class StepFailed(Exception):
    """An activity ended for good; ``refused`` when it was the request's fault."""

    def __init__(self, message: str, refused: bool) -> None:
        super().__init__(message)
        self.refused = refused


def _step_failure(error: ActivityError | ApplicationError) -> StepFailed:
    # A regular activity's failure arrives as ActivityError wrapping the ApplicationError;
    # a local activity's non-retryable failure arrives as the ApplicationError itself.
    cause = error.cause if isinstance(error, ActivityError) else error
    if isinstance(cause, ApplicationError):
        return StepFailed(cause.message, refused=cause.type in REFUSAL_TYPES)
    return StepFailed(str(cause or error), refused=False)


@workflow.defn(name="RefundWorkflow")
class RefundWorkflow:
    def __init__(self) -> None:
        self._request: RefundRequest | None = None
        self._status = RefundStatus.RECEIVED
        self._amount: int | None = None
        self._amount_refunded = 0
        self._psp_refund_id: str | None = None
        self._last_error: str | None = None
        self._cancel_requested_by: str | None = None

    @workflow.run
    async def run(self, request: RefundRequest) -> RefundResult:
        self._request = request
        self._amount = request.amount
        problem = request_problem(request)
        if problem:
            return await self._finish(RefundStatus.REJECTED, problem)
        self._status = RefundStatus.VALIDATING
        try:
            payment = await self._local(
                "fetch_payment",
                FetchPayment(psp=request.psp, payment_id=request.payment_id),
                PaymentSnapshot,
            )
            plan = plan_refund(request, payment)
        except Refusal as refusal:
            return await self._finish(RefundStatus.REJECTED, str(refusal))
        except StepFailed as failed:
            return await self._finish(_ended(failed), str(failed))
        self._amount = plan.amount
        try:
            await self._local(
                "reserve_refund",
                ReserveRefund(request_id=request.request_id, payment=payment, plan=plan),
                type(None),
            )
        except StepFailed as failed:
            return await self._finish(_ended(failed), str(failed))
        if self._cancel_requested_by:
            return await self._release(
                RefundStatus.CANCELED, f"canceled by {self._cancel_requested_by}"
            )
        return await self._reverse(request, payment, plan)

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
            outcome = await self._remote("reverse_at_provider", order, PspRefund)
        except StepFailed as failed:
            return await self._release(_ended(failed), str(failed))
        self._psp_refund_id = outcome.psp_refund_id
        if outcome.status is PspRefundStatus.PENDING:
            outcome = await self._await_settlement(request, outcome)
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

    async def _await_settlement(self, request: RefundRequest, pending: PspRefund) -> PspRefund:
        """Poll the provider on a durable timer until the refund settles either way."""
        self._status = RefundStatus.AWAITING_SETTLEMENT
        workflow.upsert_search_attributes([sa.REFUND_STATUS.value_set(self._status.value)])
        deadline = workflow.now() + SETTLEMENT_GIVE_UP_AFTER
        outcome, wait = pending, SETTLEMENT_FIRST_POLL
        while outcome.status is PspRefundStatus.PENDING and workflow.now() < deadline:
            await workflow.sleep(wait)
            wait = min(wait * 2, SETTLEMENT_POLL_AT_MOST)
            outcome = await self._remote(
                "fetch_refund",
                FetchRefund(psp=request.psp, psp_refund_id=pending.psp_refund_id),
                PspRefund,
            )
        if outcome.status is PspRefundStatus.SUCCEEDED:
            await self._local(
                "post_refund",
                SettleRefund(request_id=request.request_id, amount=outcome.amount),
                type(None),
            )
        return outcome

    async def _release(self, status: RefundStatus, reason: str) -> RefundResult:
        """Void the ledger reservation, then end: no money moved."""
        assert self._request is not None
        await self._local(
            "void_reservation", SettleRefund(request_id=self._request.request_id), type(None)
        )
        return await self._finish(status, reason)

    async def _finish(self, status: RefundStatus, reason: str | None) -> RefundResult:
        assert self._request is not None
        self._status = status
        if reason:
            self._last_error = reason
        updates: list[SearchAttributeUpdate[Any]] = [sa.REFUND_STATUS.value_set(status.value)]
        if self._amount is not None:
            updates.append(sa.REFUND_AMOUNT.value_set(self._amount))
        workflow.upsert_search_attributes(updates)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return RefundResult(
            request_id=self._request.request_id,
            status=status,
            amount_refunded=self._amount_refunded,
            currency=self._request.currency,
            psp_refund_id=self._psp_refund_id,
            reason=reason,
        )

    async def _local(self, name: str, arg: Any, result_type: type[T]) -> T:
        """A step against our own database or a provider read: local, so it costs no action."""
        try:
            result: T = await workflow.execute_local_activity(
                name,
                arg,
                result_type=result_type,
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=timedelta(minutes=10),
                retry_policy=LOCAL_RETRY,
            )
        except (ActivityError, ApplicationError) as error:
            raise _step_failure(error) from error
        return result

    async def _remote(self, name: str, arg: Any, result_type: type[T]) -> T:
        """A provider call that moves money: a regular activity, retried by the server."""
        try:
            result: T = await workflow.execute_activity(
                name,
                arg,
                result_type=result_type,
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=PROVIDER_RETRY,
            )
        except ActivityError as error:
            raise _step_failure(error) from error
        return result

    @workflow.signal
    def cancel(self, request: CancelRequest) -> None:
        """Honoured until the provider is asked; after that the money is already on its way."""
        if self._status in (RefundStatus.RECEIVED, RefundStatus.VALIDATING):
            self._cancel_requested_by = request.requested_by

    @workflow.query
    def status(self) -> RefundView:
        request = self._request
        return RefundView(
            request_id=request.request_id if request else workflow.info().workflow_id,
            status=self._status,
            amount=self._amount,
            amount_refunded=self._amount_refunded,
            currency=request.currency if request else "",
            psp_refund_id=self._psp_refund_id,
            last_error=self._last_error,
        )


def _ended(failed: StepFailed) -> RefundStatus:
    return RefundStatus.REJECTED if failed.refused else RefundStatus.FAILED
