"""The refund policy: which reasons are accepted, for how long after capture, how many refunds a
payment may have, and what a return gives back of shipping and keeps as a restocking fee.

Configured on the worker (``REFUNDS_REFUND_WINDOW_DAYS``, ``REFUNDS_MAX_REFUNDS_PER_PAYMENT``,
``REFUNDS_ALLOWED_REASONS``, ``REFUNDS_SHIPPING_REFUND``, ``REFUNDS_RESTOCKING_FEE``); each check
here is a pure function whose refusal says what the policy is and what the request was.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

from workflows.models import RefundReason


class ShippingRule(StrEnum):
    REFUND = "refund"  # shipping goes back with the first refund of the order's lines
    ON_REQUEST = "on_request"  # only when the request asks (``refund_shipping: true``)
    NEVER = "never"


# The customer did not get what was paid for: shipping goes back. A change of mind keeps it.
DEFAULT_SHIPPING: dict[RefundReason, ShippingRule] = {
    RefundReason.DUPLICATE: ShippingRule.REFUND,
    RefundReason.FRAUDULENT: ShippingRule.REFUND,
    RefundReason.PRODUCT_NOT_RECEIVED: ShippingRule.REFUND,
    RefundReason.OUT_OF_STOCK: ShippingRule.REFUND,
    RefundReason.DELIVERY_FAILED: ShippingRule.REFUND,
    RefundReason.PRODUCT_UNACCEPTABLE: ShippingRule.ON_REQUEST,
    RefundReason.REQUESTED_BY_CUSTOMER: ShippingRule.NEVER,
    RefundReason.OTHER: ShippingRule.ON_REQUEST,
}


class RefundPolicy(BaseModel):
    window_days: int | None = Field(default=180, gt=0, le=36_500)  # None: no window
    max_refunds_per_payment: int | None = Field(default=10, gt=0, le=36_500)  # None: no limit
    allowed_reasons: list[RefundReason] = Field(default_factory=lambda: list(RefundReason))
    shipping: dict[RefundReason, ShippingRule] = Field(
        default_factory=lambda: dict(DEFAULT_SHIPPING)
    )
    # Basis points of the refunded lines' price kept as a restocking fee: 1000 is 10 %.
    restocking_fee_bps: dict[RefundReason, int] = Field(default_factory=dict)

    def shipping_rule(self, reason: str) -> ShippingRule:
        return self.shipping.get(RefundReason(reason), ShippingRule.ON_REQUEST)

    def restocking_bps(self, reason: str) -> int:
        return self.restocking_fee_bps.get(RefundReason(reason), 0)


def reason_refusal(policy: RefundPolicy, reason: RefundReason) -> str | None:
    if reason in policy.allowed_reasons:
        return None
    allowed = ", ".join(r.value for r in policy.allowed_reasons) or "none"
    return (
        f"reason {reason.value!r} is not accepted by the refund policy "
        f"(REFUNDS_ALLOWED_REASONS: {allowed})"
    )


def window_refusal(
    policy: RefundPolicy, captured_at: datetime | None, now: datetime, payment_id: str
) -> str | None:
    if policy.window_days is None or captured_at is None:
        return None
    age = now - captured_at
    if age <= timedelta(days=policy.window_days):
        return None
    return (
        f"payment {payment_id} was captured on {captured_at.date()}, more than "
        f"{policy.window_days} days ago ({_age(age)}): "
        f"the refund window is {policy.window_days} days (REFUNDS_REFUND_WINDOW_DAYS)"
    )


def count_refusal(policy: RefundPolicy, earlier_refunds: int, payment_id: str) -> str | None:
    limit = policy.max_refunds_per_payment
    if limit is None or earlier_refunds < limit:
        return None
    return (
        f"payment {payment_id} already has {earlier_refunds} refunds: the policy allows at most "
        f"{limit} per payment (REFUNDS_MAX_REFUNDS_PER_PAYMENT)"
    )


def _age(age: timedelta) -> str:
    hours = age.seconds // 3600
    return f"{age.days} days and {hours} hours" if hours else f"{age.days} days"
