"""How the Adyen sandbox settles what it accepted, and which notification each step sends.

Adyen answers a refund, cancel or capture with ``received`` and decides later; its checks on
balance, currency and state happen then, and a refusal is a notification with
``success=false`` (e.g. REFUND "Insufficient balance on payment"), not an API error. The
sandbox does the same: every decision here runs when a scheduled step comes due.
"""

from __future__ import annotations

import time

from deploy.sandboxes.adyen_notifier import notification_item
from deploy.sandboxes.adyen_state import (
    LATE_FAILURE_CARD,
    REFUND_FAILS_CARD,
    JsonObject,
    Modification,
    Payment,
    SandboxState,
    Scheduled,
)

EVENT_CODES = {"refund": "REFUND", "cancel": "CANCELLATION", "capture": "CAPTURE"}


def due_steps(state: SandboxState, now: float | None = None) -> list[Scheduled]:
    """Take the steps due by ``now`` out of the schedule, oldest first."""
    moment = time.time() if now is None else now
    due = [step for step in state.scheduled if step.due <= moment]
    state.scheduled = [step for step in state.scheduled if step.due > moment]
    return sorted(due, key=lambda step: step.due)


def run_step(state: SandboxState, step: Scheduled, late_failure_seconds: float) -> JsonObject:
    """Carry out one step; the notification item it sends (unsigned)."""
    if step.action == "authorisation":
        return authorisation_item(state.payments[step.psp_reference])
    modification = state.modifications[step.psp_reference]
    payment = state.payments[modification.payment_psp_reference]
    if step.action == "late_failure":
        modification.status = "failed"
        modification.reason = "Refund failed at the card scheme (sandbox late-failure card)"
        payment.refunded -= modification.value
        return _item(modification, payment, "REFUND_FAILED", True)
    refusal = _refusal(modification, payment)
    modification.status = "failed" if refusal else "succeeded"
    modification.reason = refusal or ""
    if refusal is None:
        _apply(modification, payment)
        if modification.kind == "refund" and payment.card == LATE_FAILURE_CARD:
            state.scheduled.append(
                Scheduled(time.time() + late_failure_seconds, "late_failure", step.psp_reference)
            )
    return _item(modification, payment, EVENT_CODES[modification.kind], refusal is None)


def authorisation_item(payment: Payment) -> JsonObject:
    extra = {"shopperReference": payment.shopper_reference} if payment.shopper_reference else {}
    return notification_item(
        "AUTHORISATION",
        payment.psp_reference,
        payment.merchant_account,
        payment.reference,
        payment.value,
        payment.currency,
        payment.authorised,
        reason="" if payment.authorised else "Refused",
        additional_data=extra,
    )


def _refusal(modification: Modification, payment: Payment) -> str | None:
    if not payment.authorised:
        return "Transaction not found"
    if modification.kind == "capture":
        if payment.canceled:
            return "Transaction is cancelled"
        if modification.value > payment.value - payment.captured:
            return "Insufficient balance on payment"
        return None
    if modification.kind == "cancel":
        if payment.canceled:
            return "Transaction is cancelled"
        return "Payment already captured" if payment.captured else None
    if payment.card == REFUND_FAILS_CARD:
        return "Refund refused by the issuer (sandbox card test_4000000000000200)"
    if modification.currency != payment.currency:
        return "Modification in different currency than authorisation"
    if payment.disputed:
        return "Operation not allowed: the payment is disputed"
    if payment.canceled or not payment.captured:
        return "Operation not allowed: the payment is not captured"
    if modification.value > payment.captured - payment.refunded:
        return "Insufficient balance on payment"
    return None


def _apply(modification: Modification, payment: Payment) -> None:
    if modification.kind == "capture":
        payment.captured += modification.value
    elif modification.kind == "cancel":
        payment.canceled = True
    else:
        payment.refunded += modification.value


def _item(
    modification: Modification, payment: Payment, event_code: str, success: bool
) -> JsonObject:
    value = payment.value if modification.kind == "cancel" else modification.value
    return notification_item(
        event_code,
        modification.psp_reference,
        payment.merchant_account,
        modification.reference or payment.reference,
        value,
        modification.currency if modification.kind != "cancel" else payment.currency,
        success,
        original_reference=payment.psp_reference,
        reason=modification.reason,
    )
