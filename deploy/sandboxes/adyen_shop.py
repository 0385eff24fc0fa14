"""Paying as a shop pays at Adyen: ``/payments`` with a test card, through the Adyen library.

Tests and demos make their own payments this way, so the sandbox is driven exactly as a real
shop drives Adyen (the library's own request, headers and error handling).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import Adyen  # type: ignore[import-untyped]
from Adyen.exceptions import AdyenAPIResponseError  # type: ignore[import-untyped]

from deploy.sandboxes.adyen_state import VISA

SANDBOX_API_KEY = "AQE_sandbox_key"
SANDBOX_MERCHANT_ACCOUNT = "RefundsSandboxECOM"
# Authorised only: the capture is left for a later /captures (the sandbox never auto-captures).
DELAYED_CAPTURE_HOURS = 24 * 7


def shop_adyen(checkout_base: str, api_key: str = SANDBOX_API_KEY) -> Any:
    """The Adyen library as a shop configures it, aimed at ``checkout_base`` (``.../v72``)."""
    adyen = Adyen.Adyen(xapikey=api_key, platform="test", http_force="urllib")
    base = checkout_base.rstrip("/")
    adyen.checkout.payments_api.baseUrl = base
    adyen.checkout.modifications_api.baseUrl = base
    return adyen


async def adyen_checkout(
    checkout_base: str,
    amount: int,
    currency: str,
    *,
    capture: bool = True,
    card: str = VISA,
    reference: str | None = None,
    api_key: str = SANDBOX_API_KEY,
    merchant_account: str = SANDBOX_MERCHANT_ACCOUNT,
    shopper_reference: str | None = None,
    attempts: int = 1,
) -> str:
    """Pay ``amount`` with a ``test_`` card; the payment's pspReference.

    With ``attempts`` above one it pays as a careful shop does: a 5xx, a 429 or a lost answer
    is retried with the same ``Idempotency-Key``, so a retry never charges twice.
    Raises ``ValueError`` when the payment is not Authorised (e.g. the refused test card).
    """
    request: dict[str, Any] = {
        "merchantAccount": merchant_account,
        "amount": {"value": amount, "currency": currency.upper()},
        "reference": reference or f"order-{uuid.uuid4().hex[:12]}",
        "paymentMethod": {
            "type": "scheme",
            "encryptedCardNumber": card,
            "encryptedExpiryMonth": "test_03",
            "encryptedExpiryYear": "test_2030",
            "encryptedSecurityCode": "test_737",
        },
        "returnUrl": "https://shop.example/checkout/return",
    }
    if shopper_reference:
        request["shopperReference"] = shopper_reference
    if not capture:
        request["captureDelayHours"] = DELAYED_CAPTURE_HOURS
    adyen = shop_adyen(checkout_base, api_key)
    key = f"checkout-{request['reference']}"[:64]
    for attempt in range(1, attempts + 1):
        try:
            result = await asyncio.to_thread(
                adyen.checkout.payments_api.payments, request, idempotency_key=key
            )
            break
        except (OSError, AdyenAPIResponseError) as exc:
            status = getattr(exc, "status_code", None)
            transient = isinstance(exc, OSError) or status == 429 or (status or 0) >= 500
            if not transient or attempt == attempts:
                raise
            await asyncio.sleep(0.2 * attempt)
    answer = result.message
    if answer.get("resultCode") != "Authorised":
        raise ValueError(f"Adyen payment not authorised: {answer.get('resultCode')}: {answer}")
    return str(answer["pspReference"])
