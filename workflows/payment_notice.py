"""Reading the payment, and waiting for it when its provider tells of payments only by
notification (Adyen): a refund asked for just after checkout may come before the
AUTHORISATION notification does."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.models import FetchPayment, PaymentSnapshot, RefundRequest
    from workflows.review import format_duration
    from workflows.steps import StepFailed, local_step

NOT_YET_NOTIFIED = "PaymentNotYetNotified"
# Adyen delivers most notifications in seconds, some minutes late: ask again on durable
# timers, from a few seconds apart to five minutes, for half an hour before refusing.
FIRST_LOOK_AGAIN = timedelta(seconds=2)
LOOK_AGAIN_AT_MOST = timedelta(minutes=5)
WAIT_FOR_NOTICE = timedelta(minutes=30)


async def fetch_payment(request: RefundRequest, note: Callable[[str], None]) -> PaymentSnapshot:
    deadline = workflow.now() + WAIT_FOR_NOTICE
    wait = FIRST_LOOK_AGAIN
    order = FetchPayment(psp=request.psp, payment_id=request.payment_id)
    while True:
        try:
            return await local_step("fetch_payment", order, PaymentSnapshot)
        except StepFailed as failed:
            if failed.error_type != NOT_YET_NOTIFIED:
                raise
            if workflow.now() + wait > deadline:
                waited = format_duration(int(WAIT_FOR_NOTICE.total_seconds()))
                raise StepFailed(f"{failed} (waited {waited})", refused=True) from failed
            note(f"waiting for the payment's notification: {failed}")
            await workflow.sleep(wait)
            wait = min(wait * 2, LOOK_AGAIN_AT_MOST)
