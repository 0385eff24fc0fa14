"""PayPal's payment JSON as the service's models: amounts, refunds, snapshots.

Pure functions over what Payments v2 and Orders v2 answer; ``paypal_provider`` does the calls.
An order may have several purchase units, each with its own ``payments`` (captures, refunds):
``order_payments`` merges them, and refunds belong to a capture by their ``up`` link, so a
capture's refunds are found whichever unit lists them.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from activities.errors import RefundRefused
from workflows.currencies import MINOR_UNITS
from workflows.models import PaymentSnapshot, PaymentState, Psp, PspRefund, PspRefundStatus

Json = dict[str, Any]
NO_DECIMALS = frozenset({"HUF", "JPY", "TWD"})  # PayPal takes these without decimals
REFUND_STATES = {
    "COMPLETED": PspRefundStatus.SUCCEEDED,
    "PENDING": PspRefundStatus.PENDING,
    "FAILED": PspRefundStatus.FAILED,
    "CANCELLED": PspRefundStatus.FAILED,
}
_REFUNDED_STATES = ("COMPLETED", "PENDING")  # money gone back or on its way


def paypal_value(amount: int, currency: str) -> str:
    """Minor units (ISO 4217) as PayPal's decimal string; PayPal takes JPY, HUF and TWD
    without decimals, so an amount with a fraction of those cannot be sent at all."""
    code = currency.upper()
    value = Decimal(amount).scaleb(-MINOR_UNITS.get(code, 2))
    quantum = Decimal(1) if code in NO_DECIMALS else Decimal("0.01")
    if value != value.quantize(quantum):
        # The request asks what PayPal cannot do: a refusal (REJECTED), nothing was sent.
        raise RefundRefused(
            f"PayPal: {code} amounts take no decimals ({value} {code}); ask for whole {code}"
        )
    return str(value.quantize(quantum))


def minor_units(money: Any) -> tuple[int, str]:
    """PayPal's ``{"currency_code", "value"}`` as (minor units, currency)."""
    code = str(money["currency_code"]).upper()
    return int(Decimal(str(money["value"])).scaleb(MINOR_UNITS.get(code, 2))), code


def order_payments(order: Json) -> dict[str, list[Json]]:
    """Every purchase unit's ``payments``, merged by kind (captures, refunds, ...)."""
    merged: dict[str, list[Json]] = {}
    units = order.get("purchase_units")
    for unit in units if isinstance(units, list) else []:
        payments = unit.get("payments") if isinstance(unit, dict) else None
        for kind, items in (payments if isinstance(payments, dict) else {}).items():
            if isinstance(items, list):
                merged.setdefault(str(kind), []).extend(i for i in items if isinstance(i, dict))
    return merged


def refunded_of(capture: Json, payments: dict[str, list[Json]]) -> int:
    """What the capture's own refunds (COMPLETED or PENDING) add up to, in minor units."""
    capture_id = str(capture["id"])
    return sum(
        minor_units(refund["amount"])[0]
        for refund in payments.get("refunds", [])
        if refund.get("status") in _REFUNDED_STATES
        and isinstance(refund.get("amount"), dict)
        and up_is(refund, "captures", capture_id)
    )


def capture_snapshot(
    payment_id: str, capture: Json, payments: dict[str, list[Json]] | None
) -> PaymentSnapshot:
    """A capture; ``payments`` (its order's) is needed only when it is PARTIALLY_REFUNDED."""
    amount, currency = minor_units(capture["amount"])
    status = str(capture.get("status"))
    refunded = amount if status == "REFUNDED" else 0
    if status == "PARTIALLY_REFUNDED":
        refunded = refunded_of(capture, payments or {})
    reason = (capture.get("status_details") or {}).get("reason")
    return PaymentSnapshot(
        psp=Psp.PAYPAL,
        payment_id=payment_id,
        canonical_id=str(capture["id"]),
        state=PaymentState.CAPTURED
        if status in ("COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED")
        else PaymentState.UNPAID,
        currency=currency,
        amount_authorized=0,
        amount_captured=amount,
        amount_refunded=min(refunded, amount),
        disputed=reason in ("BUYER_COMPLAINT", "CHARGEBACK"),
        created=parse_time(capture.get("create_time")),
    )


def authorization_snapshot(payment_id: str, auth: Json) -> PaymentSnapshot:
    amount, currency = minor_units(auth["amount"])
    status = str(auth.get("status"))
    return PaymentSnapshot(
        psp=Psp.PAYPAL,
        payment_id=payment_id,
        canonical_id=str(auth["id"]),
        state={
            "CREATED": PaymentState.AUTHORIZED,
            "VOIDED": PaymentState.CANCELED,
            "EXPIRED": PaymentState.CANCELED,
        }.get(status, PaymentState.UNPAID),
        currency=currency,
        amount_authorized=amount if status == "CREATED" else 0,
        amount_captured=0,
        amount_refunded=0,
        created=parse_time(auth.get("create_time")),
    )


def psp_refund(refund: Json, amount: int | None = None, currency: str = "") -> PspRefund:
    """A refund resource as PspRefund; ``amount``/``currency`` stand in when PayPal's answer
    has none (a minimal answer: only ``id``, ``status`` and links)."""
    if isinstance(refund.get("amount"), dict):
        amount, currency = minor_units(refund["amount"])
    status = str(refund.get("status"))
    reason = (refund.get("status_details") or {}).get("reason")
    failed = REFUND_STATES.get(status) is PspRefundStatus.FAILED
    return PspRefund(
        psp_refund_id=str(refund["id"]),
        status=REFUND_STATES.get(status, PspRefundStatus.PENDING),
        amount=amount or 0,
        currency=currency.upper(),
        failure_reason=f"PayPal refund {status}" + (f" ({reason})" if reason else "")
        if failed
        else None,
    )


def up_is(resource: Json, kind: str, resource_id: str) -> bool:
    """Whether the resource's ``up`` link names ``/v2/payments/{kind}/{resource_id}``."""
    links = resource.get("links") or []
    ups = [str(link.get("href", "")) for link in links if link.get("rel") == "up"]
    return any(href.endswith(f"/v2/payments/{kind}/{resource_id}") for href in ups)


def parse_time(text: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text)) if text else None
    except ValueError:
        return None
