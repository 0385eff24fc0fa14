"""Refunds, with the refusals Stripe applies and the asynchronous outcomes of its test cards.

This is what the refund service is built against, so the rules matter more than anywhere:
what remains refundable, what a disputed or uncaptured payment answers, and refunds whose
final status arrives later (`pm_card_refundFail`: pending, then failed with
`expired_or_canceled_card` from the next request on; `pm_card_pendingRefund`: pending until
`pending_refund_seconds` pass or a test settles it through `/_sandbox/refunds/{id}/settle`;
`pm_card_refundLateFail`, sandbox-only, see `stripe_payments`: succeeded, then failed
`late_failure_seconds` later). Due refunds settle on every request and on the sandbox's own
timer, so one nobody polls still settles; each change is announced through `emit` (Stripe's
webhook events) when one is set.
"""

from __future__ import annotations

import time

from deploy.sandboxes import stripe_params as p
from deploy.sandboxes.stripe_balance import record
from deploy.sandboxes.stripe_errors import invalid, missing, refused
from deploy.sandboxes.stripe_objects import (
    Charge,
    JsonObject,
    Refund,
    SandboxState,
    format_amount,
    new_id,
    now,
)
from deploy.sandboxes.stripe_payments import Payments
from deploy.sandboxes.stripe_webhooks import Emit

REASONS = ("duplicate", "fraudulent", "requested_by_customer")
FAILURE_REASON = "expired_or_canceled_card"
_CREATE_PARAMS = (
    "amount charge payment_intent reason metadata instructions_email origin customer "
    "refund_application_fee reverse_transfer"
).split()
_LIST_PARAMS = "charge payment_intent limit starting_after ending_before created".split()


class Refunds:
    """The Refund endpoints over the sandbox state."""

    def __init__(
        self,
        state: SandboxState,
        payments: Payments,
        pending_refund_seconds: float = 10.0,
        emit: Emit | None = None,
        *,
        late_failure_seconds: float = 10.0,
    ) -> None:
        self.state = state
        self.payments = payments
        self.pending_refund_seconds = pending_refund_seconds
        self.late_failure_seconds = late_failure_seconds
        self.emit = emit  # announces changes as Stripe events (webhooks), when set

    def refund(self, refund_id: str) -> Refund:
        refund = self.state.refunds.get(refund_id)
        if refund is None:
            raise missing("refund", refund_id)
        return refund

    def create(self, params: p.Params) -> Refund:
        p.reject_unknown(params, _CREATE_PARAMS)
        amount = p.positive_amount(params, "amount")
        reason = p.choice(params, "reason", REASONS)
        metadata = p.metadata(params)
        charge = self._refundable_charge(params)
        remaining = charge.amount - charge.amount_refunded
        if charge.dispute is not None:
            raise refused(
                f"Charge {charge.id} has been charged back; cannot issue a refund.",
                "charge_disputed",
            )
        if remaining <= 0:
            message = f"Charge {charge.id} has already been refunded."
            raise refused(message, "charge_already_refunded")
        amount = remaining if amount is None else amount
        if amount > remaining:
            raise refused(
                f"Refund amount ({format_amount(amount, charge.currency)}) is greater than "
                f"unrefunded amount on charge ({format_amount(remaining, charge.currency)})",
                "amount_too_large",
                "amount",
            )
        refund = Refund(
            id=new_id("re"),
            amount=amount,
            charge=charge.id,
            payment_intent=charge.payment_intent,
            currency=charge.currency,
            created=now(),
            status="succeeded",
            reason=reason,
            metadata=metadata,
        )
        if charge.refund_behaviour == "fail":
            refund.status, refund.settles_to, refund.settles_at = "pending", "failed", time.time()
        elif charge.refund_behaviour == "pending":
            refund.status, refund.settles_to = "pending", "succeeded"
            refund.settles_at = time.time() + self.pending_refund_seconds
        elif charge.refund_behaviour == "late_fail":
            # Succeeded now, as far as anyone can tell; the card network rejects it later.
            refund.settles_to = "failed"
            refund.settles_at = time.time() + self.late_failure_seconds
        refund.balance_transaction = record(
            self.state, refund.id, "refund", -amount, charge.currency
        )
        before = charge.to_api()
        self.state.refunds[refund.id] = refund
        charge.amount_refunded += amount
        if self.emit is not None:
            self.emit("refund.created", refund.to_api(), by_request=True)
            self.emit("charge.refunded", charge.to_api(), before, by_request=True)
        return refund

    def _refundable_charge(self, params: p.Params) -> Charge:
        intent_id, charge_id = p.text(params, "payment_intent"), p.text(params, "charge")
        if intent_id is None and charge_id is None:
            raise invalid(
                "One of the following params should be provided for this request: "
                "payment_intent or charge.",
                code="parameter_missing",
            )
        if intent_id is not None:
            intent = self.payments.payment_intent(intent_id, "payment_intent")
            if intent.status == "requires_capture":
                raise refused(
                    f"This PaymentIntent ({intent.id}) has not been captured. You must cancel "
                    "the PaymentIntent to reverse the authorization instead of refunding it.",
                    "charge_not_refundable",
                    "payment_intent",
                )
            if intent.latest_charge is None or (charge_id and charge_id != intent.latest_charge):
                raise refused(
                    f"This PaymentIntent ({intent.id}) does not have a successful charge to "
                    "refund.",
                    "charge_not_refundable",
                    "payment_intent",
                )
            charge_id = intent.latest_charge
        assert charge_id is not None
        charge = self.payments.charge(charge_id, "charge")
        if charge.status != "succeeded":
            raise refused(
                f"This charge ({charge.id}) was not successful and cannot be refunded.",
                "charge_not_refundable",
            )
        if not charge.captured and charge.amount_refunded < charge.amount:
            raise refused(
                f"This uncaptured Charge was created by a PaymentIntent ({charge.payment_intent})"
                ". You must cancel the PaymentIntent to reverse the authorization instead of "
                "refunding the Charge directly.",
                "charge_not_refundable",
            )
        return charge

    def list_refunds(self, params: p.Params) -> JsonObject:
        """Newest first, filtered by `payment_intent` or `charge`, in Stripe's list shape."""
        p.reject_unknown(params, _LIST_PARAMS)
        limit = p.integer(params, "limit") or 10
        if not 1 <= limit <= 100:
            raise invalid("This value must be between 1 and 100.", "limit")
        intent_id, charge_id = p.text(params, "payment_intent"), p.text(params, "charge")
        matching = [
            refund
            for refund in reversed(self.state.refunds.values())
            if (intent_id is None or refund.payment_intent == intent_id)
            and (charge_id is None or refund.charge == charge_id)
        ]
        ids = [refund.id for refund in matching]
        after, before = p.text(params, "starting_after"), p.text(params, "ending_before")
        if after is not None:
            start = self._position(ids, after, "starting_after") + 1
            page = matching[start : start + limit]
            has_more = start + limit < len(matching)
        elif before is not None:
            end = self._position(ids, before, "ending_before")
            page = matching[max(0, end - limit) : end]
            has_more = end - limit > 0
        else:
            page, has_more = matching[:limit], len(matching) > limit
        return {
            "object": "list",
            "data": [refund.to_api() for refund in page],
            "has_more": has_more,
            "url": "/v1/refunds",
        }

    def _position(self, ids: list[str], refund_id: str, param: str) -> int:
        if refund_id not in ids:
            raise missing("refund", refund_id, param)
        return ids.index(refund_id)

    def settle_due(self, at: float | None = None) -> bool:
        """Move refunds whose time has come to their final status (pending ones, and succeeded
        ones of `pm_card_refundLateFail` to failed); True if any did."""
        moment = time.time() if at is None else at
        due = [
            refund
            for refund in self.state.refunds.values()
            if refund.status in ("pending", "succeeded")
            and refund.settles_at is not None
            and refund.settles_at <= moment
        ]
        for refund in due:
            self._finish(refund, refund.settles_to or "succeeded")
        return bool(due)

    def settle(self, refund_id: str, status: str, failure_reason: str | None = None) -> Refund:
        """Finish a pending refund now, as the card network eventually would."""
        refund = self.refund(refund_id)
        if refund.status != "pending":
            raise refused(f"Refund {refund.id} is {refund.status}, not pending.", None)
        if status not in ("succeeded", "failed"):
            raise invalid("status must be succeeded or failed", "status")
        self._finish(refund, status, failure_reason)
        return refund

    def _finish(self, refund: Refund, status: str, failure_reason: str | None = None) -> None:
        """The network's answer, which no API request causes: its events name no request."""
        charge = self.payments.charge(refund.charge)
        refund_before, charge_before = refund.to_api(), charge.to_api()
        refund.status, refund.settles_at, refund.settles_to = status, None, None
        if status == "failed":
            # The money comes back to the merchant's balance; the charge is refundable again.
            refund.failure_reason = failure_reason or FAILURE_REASON
            charge.amount_refunded -= refund.amount
        if self.emit is not None:
            self.emit("refund.updated", refund.to_api(), refund_before)
            if status == "failed":
                self.emit("refund.failed", refund.to_api())
                self.emit("charge.refunded", charge.to_api(), charge_before)
