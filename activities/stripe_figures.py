"""Stripe's words and figures read into ours, without the SDK (``stripe_provider`` uses them).

Stripe's balance transaction ``exchange_rate`` is a JSON number, a float in the SDK: an amount
in the payment's currency times it is the amount in the account's settlement currency. Taken
through its shortest text (``Decimal(str(rate))``), 1.0842 stays 1.0842 instead of the float's
binary expansion, and is never used as a float.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from workflows.models import PaymentState, ProviderRate, RefundReason

# Stripe knows three refund reasons; ours are finer and travel in metadata instead.
STRIPE_REASONS = {
    RefundReason.DUPLICATE: "duplicate",
    RefundReason.FRAUDULENT: "fraudulent",
}
PAYMENT_STATES = {
    "requires_capture": PaymentState.AUTHORIZED,
    "succeeded": PaymentState.CAPTURED,
    "canceled": PaymentState.CANCELED,
}


def provider_rate(settlement_currency: str, exchange_rate: float | None) -> ProviderRate | None:
    """The rate Stripe converted at; None when nothing was converted (same currency)."""
    if exchange_rate is None:
        return None
    return ProviderRate(
        settlement_currency=settlement_currency.upper(), rate=Decimal(str(exchange_rate))
    )


class ChargeFigures(Protocol):
    """What a Stripe Charge says about its money (``stripe.Charge`` has these)."""

    captured: bool
    amount: int
    amount_captured: int
    amount_refunded: int


def refunded_of_captured(charge: ChargeFigures | None) -> int:
    """What was refunded of the captured money only.

    Stripe counts the released remainder of a partial capture in ``amount_refunded``; that
    money was never taken, so it is not part of what the customer got back.
    """
    if charge is None or not charge.captured:
        return 0
    released = charge.amount - charge.amount_captured
    return max(charge.amount_refunded - released, 0)
