"""Stripe adapter: the only module that imports the ``stripe`` SDK.

The SDK would add a random ``Idempotency-Key`` to every POST and retry by itself; a Temporal
activity retry would then become a second refund. So every money-moving call passes our own
key and the client is built with ``max_network_retries=0``: Temporal does the retrying.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import stripe

from activities.errors import (
    OverRefund,
    PaymentNotFound,
    PaymentNotRefundable,
    ProviderAuthFailed,
    ProviderDeclined,
    ProviderRateLimited,
    ProviderUnavailable,
    RefundError,
)
from activities.stripe_events import REFUND_STATES, stripe_event_actions
from activities.stripe_figures import (
    PAYMENT_STATES,
    STRIPE_REASONS,
    provider_rate,
    refunded_of_captured,
)
from activities.webhook_actions import WebhookAction, WebhookRejected
from workflows.models import (
    PaymentSnapshot,
    PaymentState,
    ProviderRate,
    Psp,
    PspRefund,
    PspRefundStatus,
    RefundPlan,
    RefundReason,
)

T = TypeVar("T")


class StripeProvider:
    psp = Psp.STRIPE

    def __init__(self, api_key: str, api_base: str | None = None) -> None:
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=0,
        )

    async def fetch_payment(self, payment_id: str) -> PaymentSnapshot:
        if payment_id.startswith("pi_"):
            intent = await _call(
                self._client.v1.payment_intents.retrieve_async(
                    payment_id, params={"expand": ["latest_charge.balance_transaction"]}
                )
            )
            charge = (
                intent.latest_charge if isinstance(intent.latest_charge, stripe.Charge) else None
            )
            return _snapshot(payment_id, intent, charge)
        if payment_id.startswith("ch_"):
            charge = await _call(
                self._client.v1.charges.retrieve_async(
                    payment_id, params={"expand": ["balance_transaction"]}
                )
            )
            owner: stripe.PaymentIntent | None = None
            if isinstance(charge.payment_intent, str):
                owner = await _call(
                    self._client.v1.payment_intents.retrieve_async(charge.payment_intent)
                )
            return _snapshot(payment_id, owner, charge)
        raise PaymentNotFound(
            f"{payment_id!r} is not a Stripe payment id: expected a PaymentIntent (pi_...) "
            "or a Charge (ch_...)"
        )

    async def refund(
        self,
        payment: PaymentSnapshot,
        plan: RefundPlan,
        reason: RefundReason,
        idempotency_key: str,
        refund_id: str,
    ) -> PspRefund:
        target = "payment_intent" if payment.payment_id.startswith("pi_") else "charge"
        params: dict[str, Any] = {
            target: payment.payment_id,
            "amount": plan.amount,
            "reason": STRIPE_REASONS.get(reason, "requested_by_customer"),
            "metadata": {"refund_request_id": refund_id, "reason_code": reason.value},
        }
        refund = await _call(
            self._client.v1.refunds.create_async(
                params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        )
        # Its rate is read apart, not through `expand` on the create: a retry must send the
        # very parameters its key was first used with, whichever version of us sent them.
        txn = refund.balance_transaction
        if isinstance(txn, str):
            refund.balance_transaction = await _call(
                self._client.v1.balance_transactions.retrieve_async(txn)
            )
        return _psp_refund(refund)

    async def void(
        self, payment: PaymentSnapshot, idempotency_key: str, refund_id: str = ""
    ) -> PspRefund:
        intent_id = payment.payment_id
        if not intent_id.startswith("pi_"):
            raise PaymentNotRefundable(
                f"charge {intent_id} is only authorised; void it through its PaymentIntent"
            )
        try:
            intent = await _call(
                self._client.v1.payment_intents.cancel_async(
                    intent_id,
                    params={"cancellation_reason": "requested_by_customer"},
                    options={"idempotency_key": idempotency_key},
                )
            )
        except PaymentNotRefundable:
            # Canceled already (our earlier attempt, its key since expired): the hold is gone.
            intent = await _call(self._client.v1.payment_intents.retrieve_async(intent_id))
            if intent.status != "canceled":
                raise
        return PspRefund(
            psp_refund_id=intent.id,
            status=PspRefundStatus.SUCCEEDED
            if intent.status == "canceled"
            else PspRefundStatus.FAILED,
            amount=payment.amount_authorized,
            currency=intent.currency.upper(),
            failure_reason=None
            if intent.status == "canceled"
            else f"PaymentIntent is {intent.status}",
        )

    async def fetch_refund(self, psp_refund_id: str) -> PspRefund:
        return _psp_refund(
            await _call(
                self._client.v1.refunds.retrieve_async(
                    psp_refund_id, params={"expand": ["balance_transaction"]}
                )
            )
        )

    async def find_refund(self, payment: PaymentSnapshot, refund_id: str) -> PspRefund | None:
        target = "payment_intent" if payment.payment_id.startswith("pi_") else "charge"
        params: dict[str, Any] = {
            target: payment.payment_id,
            "limit": 100,
            "expand": ["data.balance_transaction"],
        }
        listed = await _call(self._client.v1.refunds.list_async(params))  # type: ignore[arg-type]
        for refund in listed.data:
            metadata = refund.to_dict().get("metadata") or {}
            if metadata.get("refund_request_id") == refund_id:
                return _psp_refund(refund)
        return None


def _snapshot(
    payment_id: str, intent: stripe.PaymentIntent | None, charge: stripe.Charge | None
) -> PaymentSnapshot:
    if intent is not None:
        state = PAYMENT_STATES.get(intent.status, PaymentState.UNPAID)
        currency, authorized = intent.currency, intent.amount_capturable
        customer = intent.customer if isinstance(intent.customer, str) else None
        created = intent.created
    elif charge is not None:  # a charge made without a PaymentIntent (legacy Charges API)
        state = PaymentState.CAPTURED if charge.captured else PaymentState.AUTHORIZED
        currency, authorized = charge.currency, 0 if charge.captured else charge.amount
        customer = charge.customer if isinstance(charge.customer, str) else None
        created = charge.created
    else:
        raise PaymentNotFound(f"no such Stripe payment: {payment_id}")
    return PaymentSnapshot(
        psp=Psp.STRIPE,
        payment_id=payment_id,
        canonical_id=intent.id if intent is not None else payment_id,
        state=state,
        currency=currency.upper(),
        amount_authorized=authorized,
        amount_captured=charge.amount_captured if charge else 0,
        amount_refunded=refunded_of_captured(charge),
        disputed=bool(charge and charge.disputed),
        customer=customer,
        created=datetime.fromtimestamp(created, UTC),
        **_capture_of(charge),
    )


def _capture_of(charge: stripe.Charge | None) -> dict[str, Any]:
    """When the charge was captured (its balance transaction's time, else the charge's) and
    the rate Stripe converted it to the account's settlement currency at."""
    if charge is None or not charge.captured:
        return {}
    txn = _txn(charge.balance_transaction)
    moment = txn.created if txn is not None else charge.created
    return {"captured_at": datetime.fromtimestamp(moment, UTC), "settlement_rate": _rate(txn)}


def _txn(value: object) -> stripe.BalanceTransaction | None:
    return value if isinstance(value, stripe.BalanceTransaction) else None


def _rate(txn: stripe.BalanceTransaction | None) -> ProviderRate | None:
    return None if txn is None else provider_rate(txn.currency, txn.exchange_rate)


def _psp_refund(refund: stripe.Refund) -> PspRefund:
    return PspRefund(
        psp_refund_id=refund.id,
        status=REFUND_STATES.get(refund.status or "", PspRefundStatus.PENDING),
        amount=refund.amount,
        currency=refund.currency.upper(),
        failure_reason=getattr(refund, "failure_reason", None),
        settlement_rate=_rate(_txn(refund.balance_transaction)),
    )


# --- Webhooks: verified here, the one place that knows Stripe's shapes --------------------


def stripe_webhook_actions(
    payload: bytes, signature: str | None, secrets: Sequence[str], tolerance_s: int = 300
) -> list[WebhookAction]:
    """Verify a Stripe webhook (any of ``secrets``, for rotation) and say what it asks for.

    The signature is checked before the body is parsed. Stripe's library accepts timestamps
    from the future; a signature dated more than ``tolerance_s`` ahead is refused too.
    """
    _verify_stripe_signature(payload, signature, secrets, tolerance_s)
    return stripe_event_actions(payload)


def _verify_stripe_signature(
    payload: bytes, signature: str | None, secrets: Sequence[str], tolerance_s: int
) -> None:
    if not signature:
        raise WebhookRejected("no Stripe-Signature header")
    stamps = [part[2:] for part in signature.split(",") if part.startswith("t=")]
    if not stamps or not (stamps[0].isascii() and stamps[0].isdigit()):
        raise WebhookRejected("the Stripe-Signature header has no timestamp")
    if int(stamps[0]) > time.time() + tolerance_s:
        raise WebhookRejected("the Stripe-Signature timestamp is in the future")
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload, signature, secret, tolerance_s)
            return
        except stripe.SignatureVerificationError as exc:
            failure = exc
        except (UnicodeDecodeError, ValueError) as exc:  # a body that is not even UTF-8
            raise WebhookRejected(f"Stripe signature not accepted: {exc}") from exc
    raise WebhookRejected(
        f"Stripe signature not accepted: {failure.user_message or failure}"
        if secrets
        else "no STRIPE_WEBHOOK_SECRET is configured"
    )


async def _call(request: Awaitable[T]) -> T:
    try:
        return await request
    except stripe.StripeError as exc:
        raise _classify(exc) from exc


def _classify(exc: stripe.StripeError) -> RefundError:
    """Map one Stripe error onto the service's taxonomy (retryable or not)."""
    message = f"Stripe: {exc.user_message or str(exc)}"
    code = getattr(exc, "code", None)
    if isinstance(exc, stripe.RateLimitError):
        return ProviderRateLimited(message)
    if isinstance(exc, stripe.APIConnectionError):
        return ProviderUnavailable(message)
    if isinstance(exc, (stripe.AuthenticationError, stripe.PermissionError)):
        return ProviderAuthFailed(message)
    if isinstance(exc, stripe.CardError):
        return ProviderDeclined(message)
    if isinstance(exc, stripe.InvalidRequestError):
        if code == "resource_missing":
            return PaymentNotFound(message)
        if code in ("charge_already_refunded", "amount_too_large"):
            return OverRefund(message)
        if code in ("charge_disputed", "payment_intent_unexpected_state"):
            return PaymentNotRefundable(message)
        return ProviderDeclined(message)
    if exc.http_status == 409 or code == "lock_timeout":
        # Another request with our key is still running at Stripe: retry, never give up.
        return ProviderUnavailable(message)
    if exc.http_status is not None and exc.http_status < 500:
        return ProviderDeclined(message)
    return ProviderUnavailable(message)
