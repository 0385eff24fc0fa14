"""The demo's reviewers: they approve, approve for less, reject, or leave a refund to expire."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from starters.client import RefundHandle
from workflows.models import CancelRequest, RefundStatus, RefundView
from workflows.refund import RefundWorkflow
from workflows.review_models import ApproveDecision, RejectDecision

# Under `refunds dev` the worker's review deadline may be days away: the demo then cancels
# the refund it meant to let expire, instead of waiting for it.
LONGEST_WAIT_FOR_EXPIRY = timedelta(minutes=2)
APPROVED_FOR_LESS = 50_000


async def in_review(handle: RefundHandle, timeout_s: float = 120) -> RefundView | None:
    """The refund's view once it awaits review; None if it ended without needing one."""
    async with asyncio.timeout(timeout_s):
        while True:
            view = await handle.query(RefundWorkflow.status)
            if view.status is RefundStatus.AWAITING_REVIEW:
                return view
            if view.status.is_final:
                return None
            await asyncio.sleep(0.2)


async def review_as_demo(handle: RefundHandle, plan: str) -> RefundStatus | None:
    """Act as the scenario's reviewers; returns a changed expectation (an expiry cancelled)."""
    view = await in_review(handle)
    if view is None:
        return None
    if plan == "approve":
        await _approve(handle, "ana@finance.example", "receipt and return label checked")
    elif plan == "dual":
        await _approve(handle, "ana@finance.example", "first approval")
        await _approve(handle, "ben@finance.example", "second approval: over the dual limit")
    elif plan == "partial":
        await _approve(handle, "ana@finance.example", "one item kept", APPROVED_FOR_LESS)
    elif plan == "reject":
        await handle.execute_update(
            RefundWorkflow.reject_refund,
            RejectDecision(reviewer="ana@finance.example", reason="item came back damaged"),
        )
    elif plan == "expire":
        deadline = view.review.deadline
        if deadline is None or deadline - datetime.now(UTC) > LONGEST_WAIT_FOR_EXPIRY:
            await handle.execute_update(
                RefundWorkflow.cancel_refund, CancelRequest(requested_by="demo@shop.example")
            )
            return RefundStatus.CANCELED
    return None


async def _approve(
    handle: RefundHandle, reviewer: str, note: str, amount: int | None = None
) -> None:
    await handle.execute_update(
        RefundWorkflow.approve_refund, ApproveDecision(reviewer=reviewer, note=note, amount=amount)
    )
