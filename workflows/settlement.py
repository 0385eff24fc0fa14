"""Waiting for a provider that answered "pending": polling on durable timers, then posting."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.models import (
        FetchRefund,
        PspRefund,
        PspRefundStatus,
        RefundRequest,
        SettleRefund,
    )
    from workflows.notices import settlement_overdue
    from workflows.review import format_duration
    from workflows.review_handlers import wait_until
    from workflows.steps import StepFailed, local_step, provider_step

# Polling backs off from one minute to one hour: a week of waiting stays a few hundred events.
SETTLEMENT_FIRST_POLL = timedelta(minutes=1)
SETTLEMENT_POLL_AT_MOST = timedelta(hours=1)
SETTLEMENT_GIVE_UP_AFTER = timedelta(days=7)


class LedgerNotPosted(Exception):
    """The provider settled the refund but the ledger post failed for good."""

    def __init__(self, outcome: PspRefund, why: str) -> None:
        super().__init__(why)
        self.outcome = outcome


async def await_settlement(
    request: RefundRequest,
    pending: PspRefund,
    note_failure: Callable[[str], None],
    pushed: Callable[[str], PspRefund | None],
) -> PspRefund:
    """Wait until the refund settles either way: told by the provider's webhook (``pushed``,
    from the ``provider_update`` signal) or, failing that, by polling on durable timers."""
    deadline = workflow.now() + SETTLEMENT_GIVE_UP_AFTER
    if pending.notification_only_escalate_after_s is not None:
        outcome = await _await_notification(request, pending, deadline, pushed, note_failure)
        return await _post_if_settled(request, outcome, pending)
    outcome, wait = pending, SETTLEMENT_FIRST_POLL
    while outcome.status is PspRefundStatus.PENDING and workflow.now() < deadline:
        told = pushed(pending.psp_refund_id)
        if told is None and await wait_until(
            lambda: pushed(pending.psp_refund_id) is not None, workflow.now() + wait
        ):
            told = pushed(pending.psp_refund_id)
        if told is not None:
            outcome = told
            break
        wait = min(wait * 2, SETTLEMENT_POLL_AT_MOST)
        try:
            outcome = await provider_step(
                "fetch_refund",
                FetchRefund(psp=request.psp, psp_refund_id=pending.psp_refund_id),
                PspRefund,
                request.psp,
            )
        except StepFailed as failed:  # the money may be moving: keep asking, never give up
            note_failure(f"settlement poll failed, will poll again: {failed}")
    return await _post_if_settled(request, outcome, pending)


async def _await_notification(
    request: RefundRequest,
    pending: PspRefund,
    deadline: datetime,
    pushed: Callable[[str], PspRefund | None],
    note_overdue: Callable[[str], None],
) -> PspRefund:
    """A provider with no status poll (Adyen): wait for its notification; when it is late,
    escalate to a human and keep waiting, since the money may still move."""

    def told() -> bool:
        return pushed(pending.psp_refund_id) is not None

    escalate_after_s = pending.notification_only_escalate_after_s or 0
    escalate_at = min(workflow.now() + timedelta(seconds=escalate_after_s), deadline)
    if not await wait_until(told, escalate_at):
        note_overdue(
            f"{request.psp.value} has not notified the outcome of {pending.psp_refund_id} "
            f"within {format_duration(escalate_after_s)}: escalated, still waiting"
        )
        await settlement_overdue(request, pending, escalate_after_s)
        await wait_until(told, deadline)
    return pushed(pending.psp_refund_id) or pending


async def _post_if_settled(
    request: RefundRequest, outcome: PspRefund, pending: PspRefund
) -> PspRefund:
    if outcome.settlement_rate is None:
        # A webhook tells no exchange rate; the provider gave the refund's when it was made.
        outcome = outcome.model_copy(update={"settlement_rate": pending.settlement_rate})
    if outcome.status is PspRefundStatus.SUCCEEDED:
        settle = SettleRefund(
            request_id=request.request_id,
            amount=outcome.amount,
            settlement_rate=outcome.settlement_rate,
        )
        try:
            await local_step("post_refund", settle, type(None))
        except StepFailed as failed:
            raise LedgerNotPosted(outcome, str(failed)) from failed
    return outcome
