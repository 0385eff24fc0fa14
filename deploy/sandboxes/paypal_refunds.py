"""Refunds of captures, with PayPal's refusals and the outcomes of the sandbox's test cards.

This is what the refund service is built against, so the rules matter most here: what remains
refundable (REFUND_AMOUNT_EXCEEDED, CAPTURE_FULLY_REFUNDED), how many refunds a capture takes
(MAX_NUMBER_OF_REFUNDS_EXCEEDED past 10), how old a capture may be (REFUND_TIME_LIMIT_EXCEEDED
past 180 days), and refunds whose final status comes later:

- `PENDING_REFUND_CARD`: PENDING (`status_details.reason` ECHECK), COMPLETED after
  `settle_after` seconds (`PAYMENT.REFUND.PENDING`, then `PAYMENT.CAPTURE.REFUNDED`).
- `LATE_FAILURE_CARD`: COMPLETED, then FAILED `settle_after` seconds later
  (`PAYMENT.REFUND.FAILED`). PayPal's refund statuses are CANCELLED, FAILED, PENDING and
  COMPLETED, and PAYMENT.REFUND.FAILED is the event for a refund that failed; the other
  candidate, PAYMENT.CAPTURE.REVERSED, is PayPal taking a capture back from the merchant
  (a chargeback), not a refund of ours failing, so the sandbox uses FAILED. The money returns
  to the capture, which is refundable again.

A refund's events: COMPLETED -> `PAYMENT.CAPTURE.REFUNDED` (the resource is the refund, as at
PayPal), PENDING -> `PAYMENT.REFUND.PENDING`, FAILED -> `PAYMENT.REFUND.FAILED`.
"""

from __future__ import annotations

from deploy.sandboxes.paypal_errors import invalid, not_found, refused
from deploy.sandboxes.paypal_objects import (
    MAX_NUMBER_OF_REFUNDS,
    REFUND_TIME_LIMIT_DAYS,
    JsonObject,
    Refund,
    format_value,
    new_id,
    now,
)
from deploy.sandboxes.paypal_payments import Payments, parse_amount, reference

_EVENTS = {
    "COMPLETED": "PAYMENT.CAPTURE.REFUNDED",
    "PENDING": "PAYMENT.REFUND.PENDING",
    "FAILED": "PAYMENT.REFUND.FAILED",
}
_BODY_KEYS = {"amount", "invoice_id", "custom_id", "note_to_payer", "payment_instruction"}


class Refunds:
    """`POST /v2/payments/captures/{id}/refund`, `GET /v2/payments/refunds/{id}`, settling."""

    def __init__(self, payments: Payments, settle_after_seconds: float = 10.0) -> None:
        self.payments, self.state = payments, payments.state
        self.settle_after_seconds = settle_after_seconds

    def refund(self, refund_id: str) -> Refund:
        found = self.state.refunds.get(refund_id)
        if found is None:
            raise not_found()
        return found

    def to_api(self, refund: Refund) -> JsonObject:
        capture = self.state.captures[refund.capture_id]
        return refund.to_api(self.payments.base, self.payments.refunded(capture))

    def create(self, capture_id: str, body: JsonObject) -> Refund:
        capture = self.payments.capture(capture_id)
        unknown = set(body) - _BODY_KEYS
        if unknown:
            field = sorted(unknown)[0]
            raise invalid("INVALID_PARAMETER_SYNTAX", f"Unknown field {field}.", f"/{field}")
        note = body.get("note_to_payer")
        if note is not None and (not isinstance(note, str) or not 1 <= len(note) <= 255):
            raise invalid(
                "INVALID_STRING_LENGTH", "note_to_payer is 1 to 255 characters.", "/note_to_payer"
            )
        custom_id, invoice_id = reference(body, "custom_id"), reference(body, "invoice_id")
        remaining = capture.amount - self.payments.refunded(capture)
        if remaining <= 0:
            raise refused("CAPTURE_FULLY_REFUNDED", "The capture has already been fully refunded")
        amount = remaining
        if body.get("amount") is not None:
            amount, _ = parse_amount(body["amount"], capture.currency, "/refund/amount")
        if capture.created < now() - REFUND_TIME_LIMIT_DAYS * 86400:
            raise refused(
                "REFUND_TIME_LIMIT_EXCEEDED",
                "You are over the time limit to perform a refund on this capture.",
            )
        if len(capture.refund_ids) >= MAX_NUMBER_OF_REFUNDS:
            raise refused(
                "MAX_NUMBER_OF_REFUNDS_EXCEEDED",
                "You have exceeded the number of refunds that can be processed per capture.",
            )
        if amount > remaining:
            raise refused(
                "REFUND_AMOUNT_EXCEEDED",
                "The refund amount must be less than or equal to the capture amount that has "
                f"not yet been refunded ({format_value(remaining, capture.currency)} "
                f"{capture.currency}).",
            )
        moment = now()
        refund = Refund(
            id=new_id(),
            capture_id=capture.id,
            status="COMPLETED",
            currency=capture.currency,
            amount=amount,
            created=moment,
            updated=moment,
            custom_id=custom_id,
            invoice_id=invoice_id,
            note_to_payer=note,
        )
        if capture.behaviour == "pending":
            refund.status, refund.settles_to = "PENDING", "COMPLETED"
            refund.settles_at = moment + self.settle_after_seconds
        elif capture.behaviour == "late_failure":
            refund.settles_to, refund.settles_at = "FAILED", moment + self.settle_after_seconds
        self.state.refunds[refund.id] = refund
        capture.refund_ids.append(refund.id)
        capture.updated = moment
        self._announce(refund)
        return refund

    def settle_due(self, at: float | None = None) -> bool:
        """Move refunds whose time has come to their final status; True if any did."""
        moment = now() if at is None else at
        due = [
            r
            for r in self.state.refunds.values()
            if r.settles_at is not None and r.settles_at <= moment and r.settles_to
        ]
        for refund in due:
            self._finish(refund, refund.settles_to or "COMPLETED")
        return bool(due)

    def settle(self, refund_id: str, status: str) -> Refund:
        """Finish a pending refund now (COMPLETED, FAILED or CANCELLED), as PayPal would."""
        refund = self.refund(refund_id)
        if refund.status != "PENDING":
            raise refused("REFUND_NOT_PENDING", f"Refund {refund.id} is {refund.status}.")
        if status not in ("COMPLETED", "FAILED", "CANCELLED"):
            raise invalid(
                "INVALID_PARAMETER_VALUE", "status is COMPLETED, FAILED or CANCELLED.", "/status"
            )
        self._finish(refund, status)
        return refund

    def _finish(self, refund: Refund, status: str) -> None:
        refund.status, refund.settles_at, refund.settles_to = status, None, None
        refund.updated = now()
        self._announce(refund)

    def _announce(self, refund: Refund) -> None:
        event = _EVENTS.get(refund.status)
        if self.payments.emit is None or event is None:
            return
        amount = f"{format_value(refund.amount, refund.currency)} {refund.currency}"
        summary = {
            "COMPLETED": f"A {amount} capture payment was refunded",
            "PENDING": f"A {amount} refund is pending",
            "FAILED": f"A {amount} refund failed",
        }[refund.status]
        self.payments.emit(event, "refund", self.to_api(refund), summary)
