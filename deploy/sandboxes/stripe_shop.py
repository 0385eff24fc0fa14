"""Paying for an order at the Stripe sandbox the way a shop does: through the real SDK.

Tests, demos and `refunds demo` need payments to refund. Making them with the same SDK calls a
shop's checkout makes (a PaymentIntent created and confirmed with a test payment method, manual
capture when the order is only authorised) keeps the sandbox honest: anything the shop can do
here, it could do at Stripe.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import stripe
from stripe.params import PaymentIntentCaptureParams, PaymentIntentCreateParams

SANDBOX_API_KEY = "sk_test_sandbox"
StripeShop = stripe.StripeClient  # what callers outside the adapter hold, without the SDK


def shop_client(
    base_url: str,
    api_key: str = SANDBOX_API_KEY,
    *,
    http_client: stripe.HTTPClient | None = None,
) -> stripe.StripeClient:
    """A StripeClient aimed at `base_url`. No SDK retries: callers see every fault as it is
    (pass an `http_client` you close yourself to avoid leaving a connection pool open)."""
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": base_url},
        max_network_retries=0,
        http_client=http_client,
    )


async def create_payment(
    client: stripe.StripeClient,
    *,
    amount: int,
    currency: str,
    customer: str,
    capture: bool = True,
    payment_method: str = "pm_card_visa",
    metadata: Mapping[str, str] | None = None,
    description: str | None = None,
    idempotency_key: str | None = None,
) -> str:
    """Create and confirm a PaymentIntent in one call; return its id.

    Captured at once unless `capture` is False (then it waits in `requires_capture`). A
    declining test card (`pm_card_chargeDeclined`) raises `stripe.CardError`, as at Stripe.
    """
    params: PaymentIntentCreateParams = {
        "amount": amount,
        "currency": currency,
        "customer": customer,
        "payment_method": payment_method,
        "confirm": True,
        "capture_method": "automatic" if capture else "manual",
        "metadata": dict(metadata or {}),
    }
    if description is not None:
        params["description"] = description
    options: stripe.RequestOptions = {}
    if idempotency_key is not None:
        options["idempotency_key"] = idempotency_key
    intent = await client.v1.payment_intents.create_async(params, options)
    return intent.id


async def capture_payment(
    client: stripe.StripeClient, payment_intent: str, *, amount: int | None = None
) -> str:
    """Capture an authorised payment (all of it, or `amount`); return the charge id."""
    params: PaymentIntentCaptureParams = {}
    if amount is not None:
        params["amount_to_capture"] = amount
    intent = await client.v1.payment_intents.capture_async(payment_intent, params)
    charge = intent.latest_charge
    assert charge is not None
    return charge if isinstance(charge, str) else charge.id


@asynccontextmanager
async def shop_session(
    base_url: str, api_key: str = SANDBOX_API_KEY
) -> AsyncIterator[stripe.StripeClient]:
    """A shop client whose connection pool is closed on the way out."""
    http = stripe.HTTPXClient()
    try:
        yield shop_client(base_url, api_key, http_client=http)
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]


class CheckoutFailed(Exception):
    """The shop could not take a payment (declined, or Stripe kept failing)."""


_TRANSIENT = (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError)


async def checkout(
    base_url: str,
    api_key: str,
    *,
    order_ref: str,
    amount: int,
    currency: str,
    customer: str,
    capture: bool = True,
    payment_method: str = "pm_card_visa",
    attempts: int = 6,
) -> str:
    """Pay for one order as a careful shop does: transient failures are retried with the same
    idempotency key, so a retry after a lost answer never charges the customer twice."""
    async with shop_session(base_url, api_key) as client:
        return await _checkout(
            client, order_ref, amount, currency, customer, capture, payment_method, attempts
        )


async def _checkout(
    client: stripe.StripeClient,
    order_ref: str,
    amount: int,
    currency: str,
    customer: str,
    capture: bool,
    payment_method: str,
    attempts: int,
) -> str:
    for attempt in range(1, attempts + 1):
        try:
            return await create_payment(
                client,
                amount=amount,
                currency=currency,
                customer=customer,
                capture=capture,
                payment_method=payment_method,
                metadata={"order": order_ref},
                idempotency_key=f"checkout-{order_ref}",
            )
        except _TRANSIENT as exc:
            if attempt == attempts:
                raise CheckoutFailed(f"Stripe kept failing for order {order_ref}: {exc}") from exc
            await asyncio.sleep(0.05 * 2**attempt)
        except stripe.StripeError as exc:
            raise CheckoutFailed(f"payment for order {order_ref} refused: {exc}") from exc
    raise AssertionError("unreachable")
