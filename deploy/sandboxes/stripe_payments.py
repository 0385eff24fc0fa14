"""PaymentIntents and their charges, with the life cycle and refusals Stripe applies.

Shops (and our tests and demos) pay orders the way they would at Stripe: a PaymentIntent
created and confirmed with a test payment method, captured at once or later. The test payment
methods behave as Stripe documents them, so the refund paths that depend on the payment
(declines, disputes, refunds that fail or stay pending) can be exercised end to end.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploy.sandboxes import stripe_params as p
from deploy.sandboxes.stripe_balance import capture_charge
from deploy.sandboxes.stripe_errors import StripeApiError, invalid, missing, refused
from deploy.sandboxes.stripe_objects import (
    CURRENCIES,
    Charge,
    JsonObject,
    PaymentIntent,
    Refund,
    SandboxState,
    new_id,
    now,
)
from deploy.sandboxes.stripe_webhooks import Emit, dispute_object


@dataclass(frozen=True)
class CardBehaviour:
    """What a test payment method does: decline (with Stripe's codes), get disputed, or make
    its refunds fail or wait."""

    declined_code: str | None = None  # the error `code`, e.g. card_declined
    decline_code: str | None = None  # the issuer reason, e.g. insufficient_funds
    message: str = "Your card was declined."
    disputed: bool = False
    refunds: str = "succeed"  # succeed | fail | pending | late_fail


def _declined(decline_code: str, message: str = "Your card was declined.") -> CardBehaviour:
    return CardBehaviour("card_declined", decline_code, message)


_SUCCESS_BRANDS = (
    "visa visa_debit mastercard mastercard_debit mastercard_prepaid amex discover diners jcb "
    "unionpay us gb de fr ca au jp"
)
TEST_PAYMENT_METHODS: dict[str, CardBehaviour] = {
    **{f"pm_card_{brand}": CardBehaviour() for brand in _SUCCESS_BRANDS.split()},
    "pm_card_chargeDeclined": _declined("generic_decline"),
    "pm_card_chargeDeclinedInsufficientFunds": _declined(
        "insufficient_funds", "Your card has insufficient funds."
    ),
    "pm_card_chargeDeclinedLostCard": _declined("lost_card"),
    "pm_card_chargeDeclinedStolenCard": _declined("stolen_card"),
    "pm_card_chargeDeclinedFraudulent": _declined("fraudulent"),
    "pm_card_chargeDeclinedExpiredCard": CardBehaviour(
        "expired_card", "expired_card", "Your card has expired."
    ),
    "pm_card_chargeDeclinedProcessingError": CardBehaviour(
        "processing_error",
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
    "pm_card_createDispute": CardBehaviour(disputed=True),
    "pm_card_refundFail": CardBehaviour(refunds="fail"),
    "pm_card_pendingRefund": CardBehaviour(refunds="pending"),
    # Sandbox-only, no Stripe test card does this on its own: Stripe warns that a refund can
    # "appear successful at first" and fail later (refund.updated, refund.failed). Its refunds
    # are created succeeded and fail `late_failure_seconds` later with expired_or_canceled_card.
    "pm_card_refundLateFail": CardBehaviour(refunds="late_fail"),
}

CANCELABLE = (
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
    "processing",
)
CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")
_CREATE_PARAMS = (
    "amount currency payment_method confirm capture_method customer metadata description "
    "payment_method_types automatic_payment_methods receipt_email return_url off_session "
    "statement_descriptor statement_descriptor_suffix setup_future_usage confirmation_method "
    "error_on_requires_action shipping payment_method_options"
).split()
_CONFIRM_PARAMS = "payment_method return_url off_session receipt_email capture_method".split()


class Payments:
    """The PaymentIntent and Charge endpoints over the sandbox state."""

    def __init__(self, state: SandboxState, emit: Emit | None = None) -> None:
        self.state = state
        self.emit = emit  # announces changes as Stripe events (webhooks), when set

    def payment_intent(self, intent_id: str, param: str | None = None) -> PaymentIntent:
        intent = self.state.payment_intents.get(intent_id)
        if intent is None:
            raise missing("payment_intent", intent_id, param)
        return intent

    def charge(self, charge_id: str, param: str | None = None) -> Charge:
        charge = self.state.charges.get(charge_id)
        if charge is None:
            raise missing("charge", charge_id, param)
        return charge

    def create(self, params: p.Params) -> PaymentIntent:
        p.reject_unknown(params, _CREATE_PARAMS)
        amount = p.positive_amount(params, "amount")
        if amount is None:
            raise invalid("Missing required param: amount.", "amount", "parameter_missing")
        currency = p.required_text(params, "currency").lower()
        if currency not in CURRENCIES:
            raise invalid(
                f"Invalid currency: {currency}. Stripe currently supports these currencies: "
                + ", ".join(sorted(CURRENCIES)),
                "currency",
            )
        capture_method = p.choice(
            params, "capture_method", ("automatic", "automatic_async", "manual")
        )
        payment_method = p.text(params, "payment_method")
        if payment_method is not None:
            self._behaviour(payment_method)
        confirm = p.boolean(params, "confirm") or False
        intent = PaymentIntent(
            id=new_id("pi"),
            amount=amount,
            currency=currency,
            capture_method=capture_method or "automatic_async",
            created=now(),
            customer=p.text(params, "customer"),
            description=p.text(params, "description"),
            metadata=p.metadata(params),
            payment_method=payment_method,
            status="requires_confirmation" if payment_method else "requires_payment_method",
        )
        self.state.payment_intents[intent.id] = intent
        if confirm:
            self._confirm(intent)
        return intent

    def confirm(self, intent_id: str, params: p.Params) -> PaymentIntent:
        p.reject_unknown(params, _CONFIRM_PARAMS)
        capture_method = p.choice(
            params, "capture_method", ("automatic", "automatic_async", "manual")
        )
        intent = self.payment_intent(intent_id)
        if intent.status not in ("requires_payment_method", "requires_confirmation"):
            raise refused(
                f"You cannot confirm this PaymentIntent because it has a status of "
                f"{intent.status}.",
                "payment_intent_unexpected_state",
            )
        payment_method = p.text(params, "payment_method")
        if payment_method is not None:
            self._behaviour(payment_method)
            intent.payment_method = payment_method
        intent.capture_method = capture_method or intent.capture_method
        if intent.payment_method is None:
            raise refused(
                "You cannot confirm this PaymentIntent because it's missing a payment method. "
                "You can either update the PaymentIntent with a payment method and then confirm "
                "it again, or confirm it again directly with a payment method.",
                "payment_intent_unexpected_state",
            )
        self._confirm(intent)
        return intent

    def capture(self, intent_id: str, params: p.Params) -> PaymentIntent:
        p.reject_unknown(params, ("amount_to_capture", "metadata", "statement_descriptor"))
        metadata = p.metadata(params)
        amount_to_capture = p.positive_amount(params, "amount_to_capture")
        intent = self.payment_intent(intent_id)
        if intent.status != "requires_capture" or intent.latest_charge is None:
            raise refused(
                f"This PaymentIntent could not be captured because it has a status of "
                f"{intent.status}. Only a PaymentIntent with one of the following statuses may "
                "be captured: requires_capture.",
                "payment_intent_unexpected_state",
            )
        amount = amount_to_capture or intent.amount_capturable
        if amount > intent.amount_capturable:
            raise refused(
                "The amount to capture must be less than or equal to the amount capturable "
                f"({intent.amount_capturable}).",
                "amount_too_large",
                "amount_to_capture",
            )
        charge = self.charge(intent.latest_charge)
        capture_charge(self.state, charge, amount)
        intent.status, intent.amount_received, intent.amount_capturable = "succeeded", amount, 0
        intent.metadata.update(metadata)
        if amount < charge.amount:
            self._release(charge, charge.amount - amount)  # Stripe refunds the uncaptured rest
        return intent

    def cancel(self, intent_id: str, params: p.Params) -> PaymentIntent:
        p.reject_unknown(params, ("cancellation_reason",))
        reason = p.choice(params, "cancellation_reason", CANCELLATION_REASONS)
        intent = self.payment_intent(intent_id)
        if intent.status not in CANCELABLE:
            raise refused(
                f"You cannot cancel this PaymentIntent because it has a status of "
                f"{intent.status}. Only a PaymentIntent with one of the following statuses may "
                "be canceled: " + ", ".join(CANCELABLE) + ".",
                "payment_intent_unexpected_state",
            )
        if intent.status == "requires_capture" and intent.latest_charge is not None:
            charge = self.charge(intent.latest_charge)
            self._release(charge, charge.amount - charge.amount_refunded)
        intent.status, intent.amount_capturable = "canceled", 0
        intent.cancellation_reason, intent.canceled_at = reason, now()
        return intent

    def _behaviour(self, payment_method: str) -> CardBehaviour:
        behaviour = TEST_PAYMENT_METHODS.get(payment_method)
        if behaviour is None:
            raise missing("PaymentMethod", payment_method, "payment_method")
        return behaviour

    def _confirm(self, intent: PaymentIntent) -> None:
        assert intent.payment_method is not None
        behaviour = self._behaviour(intent.payment_method)
        charge = Charge(
            id=new_id("ch"),
            amount=intent.amount,
            currency=intent.currency,
            created=now(),
            payment_intent=intent.id,
            payment_method=intent.payment_method,
            status="succeeded",
            customer=intent.customer,
            description=intent.description,
            metadata=dict(intent.metadata),
            refund_behaviour=behaviour.refunds,
        )
        self.state.charges[charge.id] = charge
        intent.latest_charge = charge.id
        if behaviour.declined_code is not None:
            self._decline(intent, charge, behaviour)
        if behaviour.disputed:
            charge.dispute = new_id("dp")
        if intent.capture_method == "manual":
            intent.status, intent.amount_capturable = "requires_capture", intent.amount
        else:
            capture_charge(self.state, charge, intent.amount)
            intent.status, intent.amount_received = "succeeded", intent.amount
        if charge.dispute is not None and self.emit is not None:
            self.emit("charge.dispute.created", dispute_object(charge))

    def _decline(self, intent: PaymentIntent, charge: Charge, behaviour: CardBehaviour) -> None:
        """Stripe keeps the failed charge, sends the PaymentIntent back to
        requires_payment_method and answers 402 with the PaymentIntent in the error."""
        charge.status = "failed"
        charge.failure_code, charge.failure_message = behaviour.declined_code, behaviour.message
        error: JsonObject = {
            "type": "card_error",
            "code": behaviour.declined_code,
            "decline_code": behaviour.decline_code,
            "message": behaviour.message,
            "charge": charge.id,
            "payment_method": {"id": intent.payment_method, "object": "payment_method"},
        }
        intent.status, intent.last_payment_error = "requires_payment_method", error
        raise StripeApiError(
            402,
            behaviour.message,
            error_type="card_error",
            code=behaviour.declined_code,
            decline_code=behaviour.decline_code,
            charge=charge.id,
            payment_intent=intent.to_api(),
        )

    def _release(self, charge: Charge, amount: int) -> None:
        """Give back an authorisation that will not be captured. Stripe books it as a refund on
        the charge, so `amount_refunded` (and the refunds list) include it."""
        if amount <= 0:
            return
        before = charge.to_api()
        refund = Refund(
            id=new_id("re"),
            amount=amount,
            charge=charge.id,
            payment_intent=charge.payment_intent,
            currency=charge.currency,
            created=now(),
            status="succeeded",
        )
        self.state.refunds[refund.id] = refund
        charge.amount_refunded += amount
        if self.emit is not None:
            self.emit("refund.created", refund.to_api(), by_request=True)
            self.emit("charge.refunded", charge.to_api(), before, by_request=True)
