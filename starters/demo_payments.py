"""Paying for the demo's orders at each provider's sandbox, as a shop's checkout does.

Stripe and PayPal payments can be refunded as soon as they are paid. Adyen's cannot: the
service learns an Adyen payment only from its AUTHORISATION notification (Adyen has no
payment read API), so, like a shop that refunds only what it has been told of, the demo waits
until the receiver has recorded it.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Protocol

from activities.adyen_payments import AdyenPaymentBook
from deploy.sandboxes.adyen_shop import adyen_checkout
from deploy.sandboxes.paypal_shop import paypal_checkout
from deploy.sandboxes.stripe_shop import CheckoutFailed, checkout
from workers.settings import Settings
from workflows.models import Psp

ADYEN_BOOKED_WITHIN_S = 30.0


class Order(Protocol):
    @property
    def psp(self) -> Psp: ...
    @property
    def currency(self) -> str: ...
    @property
    def paid(self) -> int: ...
    @property
    def capture(self) -> bool: ...
    @property
    def payment_method(self) -> str: ...
    @property
    def unknown_payment(self) -> bool: ...


def check_sandboxes(settings: Settings) -> None:
    """The demo pays at the sandboxes: a real provider configured instead is not paid at."""
    missing = [
        name
        for name, base in (
            ("Stripe (STRIPE_API_BASE)", settings.stripe_api_base),
            ("PayPal (PAYPAL_API_BASE)", settings.paypal.api_base),
            ("Adyen (ADYEN_CHECKOUT_BASE)", settings.adyen.checkout_base),
        )
        if not base
    ]
    if missing:
        raise CheckoutFailed(
            "refunds demo pays for its orders in the providers' sandboxes, but these are "
            f"configured as real providers: {', '.join(missing)}; unset their credentials"
        )


async def pay_for(
    settings: Settings, order: Order, customer: str, order_ref: str, book: AdyenPaymentBook
) -> str:
    """The payment id a refund of ``order`` names."""
    if order.unknown_payment:
        return f"pi_unknown{uuid.uuid4().hex[:16]}"
    if order.psp is Psp.PAYPAL:
        return await paypal_checkout(
            settings.paypal.api_base or "",
            order.paid,
            order.currency,
            capture=order.capture,
            card=order.payment_method,
            custom_id=order_ref,
            attempts=6,
        )
    if order.psp is Psp.ADYEN:
        payment = await adyen_checkout(
            settings.adyen.checkout_base or "",
            order.paid,
            order.currency,
            capture=order.capture,
            card=order.payment_method,
            reference=order_ref,
            api_key=settings.adyen.api_key or "",
            merchant_account=settings.adyen.merchant_account or "",
            shopper_reference=customer,
            attempts=6,
        )
        await _until_booked(book, payment, "captured" if order.capture else "authorised")
        return payment
    return await checkout(
        settings.stripe_api_base or "",
        settings.stripe_api_key or "",
        order_ref=order_ref,
        amount=order.paid,
        currency=order.currency,
        customer=customer,
        capture=order.capture,
        payment_method=order.payment_method,
    )


async def _until_booked(book: AdyenPaymentBook, payment: str, state: str) -> None:
    for _ in range(int(ADYEN_BOOKED_WITHIN_S / 0.1)):
        booked = await book.payment(payment)
        if booked is not None and booked.state == state:
            return
        await asyncio.sleep(0.1)
    raise CheckoutFailed(
        f"Adyen payment {payment} was made, but the receiver (/webhooks/adyen) has not "
        f"recorded its notification as {state} within {ADYEN_BOOKED_WITHIN_S:.0f} s"
    )
