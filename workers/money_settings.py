"""Settings of what a refund may return: the refund policy, the order source, and the
settlement currency the ledger values foreign-currency refunds in.

    REFUNDS_REFUND_WINDOW_DAYS        days after capture a payment may be refunded (180; "none")
    REFUNDS_MAX_REFUNDS_PER_PAYMENT   refunds one payment may have (10; "none")
    REFUNDS_ALLOWED_REASONS           reason codes accepted, comma-separated (all)
    REFUNDS_SHIPPING_REFUND           per reason: refund | on_request | never, as
                                      ``requested_by_customer=never,other=on_request``
    REFUNDS_RESTOCKING_FEE            per reason, a percentage of the refunded lines' price,
                                      as ``requested_by_customer=10%``
    REFUNDS_ORDER_SOURCE              ``package.module:factory`` of a commerce platform's order
                                      source (the built-in PostgreSQL store when unset)
    REFUNDS_SETTLEMENT_CURRENCY       the merchant's settlement currency (unset: no FX valuation)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from workflows.currencies import is_known_currency
from workflows.models import RefundReason
from workflows.refund_policy import RefundPolicy, ShippingRule

LIMIT_AT_MOST = 36_500  # a hundred years of days; more is "none"


class MoneySettingsError(Exception):
    """A refund policy, order source or currency setting is invalid; names the variable."""


@dataclass(frozen=True)
class MoneySettings:
    refund_policy: RefundPolicy = field(default_factory=RefundPolicy)
    order_source: str | None = None
    settlement_currency: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MoneySettings:
        def text(name: str) -> str:
            return env.get(name, "").strip()

        policy = RefundPolicy(
            window_days=_limit(
                text("REFUNDS_REFUND_WINDOW_DAYS"), "REFUNDS_REFUND_WINDOW_DAYS", 180
            ),
            max_refunds_per_payment=_limit(
                text("REFUNDS_MAX_REFUNDS_PER_PAYMENT"), "REFUNDS_MAX_REFUNDS_PER_PAYMENT", 10
            ),
            allowed_reasons=_reasons(text("REFUNDS_ALLOWED_REASONS")),
            shipping={**RefundPolicy().shipping, **_shipping(text("REFUNDS_SHIPPING_REFUND"))},
            restocking_fee_bps=_fees(text("REFUNDS_RESTOCKING_FEE")),
        )
        settlement = text("REFUNDS_SETTLEMENT_CURRENCY").upper() or None
        if settlement and not is_known_currency(settlement):
            raise MoneySettingsError(
                f"REFUNDS_SETTLEMENT_CURRENCY: {settlement!r} is not an ISO 4217 currency code"
            )
        source = text("REFUNDS_ORDER_SOURCE") or None
        if source and ":" not in source:
            raise MoneySettingsError(
                f"REFUNDS_ORDER_SOURCE must be package.module:factory, got {source!r}"
            )
        return cls(refund_policy=policy, order_source=source, settlement_currency=settlement)


def _limit(value: str, name: str, default: int) -> int | None:
    if not value:
        return default
    if value.lower() in ("none", "off", "unlimited"):
        return None
    if not (value.isascii() and value.isdigit()) or not 0 < int(value) <= LIMIT_AT_MOST:
        raise MoneySettingsError(
            f"{name} must be a whole number from 1 to {LIMIT_AT_MOST} or 'none', got {value!r}"
        )
    return int(value)


def _reason(value: str, name: str) -> RefundReason:
    try:
        return RefundReason(value.strip().lower())
    except ValueError:
        known = ", ".join(r.value for r in RefundReason)
        raise MoneySettingsError(f"{name}: unknown reason {value!r} (one of {known})") from None


def _pairs(value: str, name: str) -> list[tuple[RefundReason, str]]:
    pairs = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        reason, sep, setting = item.partition("=")
        if not sep or not setting.strip():
            raise MoneySettingsError(f"{name}: {item!r} is not reason=value")
        pairs.append((_reason(reason, name), setting.strip().lower()))
    return pairs


def _reasons(value: str) -> list[RefundReason]:
    if not value:
        return list(RefundReason)
    names = [part for part in value.split(",") if part.strip()]
    if not names:
        raise MoneySettingsError(
            f"REFUNDS_ALLOWED_REASONS names no reason ({value!r}): leave it unset to accept all"
        )
    return [_reason(name, "REFUNDS_ALLOWED_REASONS") for name in names]


def _shipping(value: str) -> dict[RefundReason, ShippingRule]:
    rules = {}
    for reason, rule in _pairs(value, "REFUNDS_SHIPPING_REFUND"):
        try:
            rules[reason] = ShippingRule(rule)
        except ValueError:
            raise MoneySettingsError(
                f"REFUNDS_SHIPPING_REFUND: {rule!r} for {reason.value} is not refund, "
                "on_request or never"
            ) from None
    return rules


def _fees(value: str) -> dict[RefundReason, int]:
    fees = {}
    for reason, fee in _pairs(value, "REFUNDS_RESTOCKING_FEE"):
        if not fee.endswith("%"):
            raise MoneySettingsError(
                f"REFUNDS_RESTOCKING_FEE: {fee!r} for {reason.value} needs its % sign "
                "(10% is ten percent)"
            )
        try:
            percent = Decimal(fee.removesuffix("%"))
        except InvalidOperation:
            percent = Decimal(-1)
        bps = percent * 100 if percent.is_finite() else Decimal(-1)
        if not (0 <= bps <= 10_000) or bps != bps.to_integral_value():
            raise MoneySettingsError(
                f"REFUNDS_RESTOCKING_FEE: {fee!r} for {reason.value} is not a percentage "
                "from 0% to 100% in steps of 0.01%"
            )
        fees[reason] = int(bps)
    return fees
