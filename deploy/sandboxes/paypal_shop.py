"""Paying as a shop pays at PayPal, through paypalrestsdk, so tests and demos make their own
payments: an order with a card `payment_source` (no buyer approval), then captured or only
authorised. The SDK is synchronous, so each call runs in a thread.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import paypalrestsdk  # type: ignore[import-untyped]
import paypalrestsdk.exceptions  # type: ignore[import-untyped]
import requests  # type: ignore[import-untyped, unused-ignore]

from deploy.sandboxes.paypal_objects import NORMAL_CARD
from workflows.currencies import MINOR_UNITS

SHOP_CLIENT = ("sandbox-shop", "sandbox-shop-secret")


def decimal_value(amount: int, currency: str) -> str:
    """Minor units (ISO 4217 exponent) as PayPal's decimal string (no decimals for JPY, HUF,
    TWD at PayPal)."""
    exponent = MINOR_UNITS.get(currency.upper(), 2)
    value = Decimal(amount).scaleb(-exponent)
    places = 0 if currency.upper() in ("JPY", "HUF", "TWD") else 2
    quantum = Decimal(1).scaleb(-places)
    if value != value.quantize(quantum):
        raise ValueError(f"PayPal takes {currency} with {places} decimals, not {value}")
    return str(value.quantize(quantum))


def _checkout(
    base_url: str,
    amount: int,
    currency: str,
    capture: bool,
    card: str,
    custom_id: str | None,
    attempts: int,
) -> str:
    client_id, secret = SHOP_CLIENT
    api = paypalrestsdk.Api(
        {"mode": "sandbox", "client_id": client_id, "client_secret": secret, "endpoint": base_url}
    )
    unit: dict[str, Any] = {
        "amount": {"currency_code": currency.upper(), "value": decimal_value(amount, currency)}
    }
    if custom_id:
        unit["custom_id"] = custom_id
    order_key = f"order-{custom_id or uuid.uuid4()}"
    order = _carefully(
        attempts,
        lambda: api.post(
            "v2/checkout/orders",
            {
                "intent": "CAPTURE" if capture else "AUTHORIZE",
                "purchase_units": [unit],
                "payment_source": {
                    "card": {"number": card, "expiry": "2030-12", "name": "Sandbox Shopper"}
                },
            },
            {"PayPal-Request-Id": order_key, "Prefer": "return=representation"},
        ),
    )
    action = "capture" if capture else "authorize"
    done = _carefully(
        attempts,
        lambda: api.post(
            f"v2/checkout/orders/{order['id']}/{action}",
            {},
            {"PayPal-Request-Id": f"{order_key}-{action}", "Prefer": "return=representation"},
        ),
    )
    payments = done["purchase_units"][0]["payments"]
    return str(payments["captures" if capture else "authorizations"][0]["id"])


def _carefully(attempts: int, call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """As a careful shop calls: a 5xx, a 429 or a lost answer is retried with the same
    PayPal-Request-Id (PayPal replays the first answer), so a retry never pays twice."""
    for attempt in range(1, attempts + 1):
        try:
            return _ok(call())
        except (
            paypalrestsdk.exceptions.ServerError,
            paypalrestsdk.exceptions.ResourceConflict,  # the same request still in progress
            paypalrestsdk.exceptions.ClientError,
            requests.ConnectionError,
        ) as exc:
            status = getattr(getattr(exc, "response", None), "status_code", None)
            transient = status is None or status in (409, 429) or status >= 500
            if not transient or attempt == attempts:
                raise
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


def _ok(answer: dict[str, Any]) -> dict[str, Any]:
    if "error" in answer:  # paypalrestsdk answers a 400 instead of raising
        raise RuntimeError(f"PayPal refused the shop's request: {answer['error']}")
    return answer


async def paypal_checkout(
    base_url: str,
    amount: int,
    currency: str,
    *,
    capture: bool = True,
    card: str = NORMAL_CARD,
    custom_id: str | None = None,
    attempts: int = 1,
) -> str:
    """Pay `amount` (minor units) with a test card; the capture id, or the authorization id
    when not `capture`. With `attempts` above one, transient failures are retried with the
    same request ids (`custom_id`, the order reference, makes them stable across calls)."""
    return await asyncio.to_thread(
        _checkout, base_url, amount, currency, capture, card, custom_id, attempts
    )
