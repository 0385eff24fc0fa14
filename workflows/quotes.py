"""The quote arithmetic: what a refund of some units of an order's lines returns, to the minor unit.

Each line's price after its discount, and each of its tax lines as charged, is split over the
line's units once and for all: unit ``i`` of ``q`` gets ``a(i) - a(i-1)`` where
``a(i) = round(total * i / q)``. The shares of all ``q`` units add up to the total exactly,
whichever units are refunded in whichever order, and a refund takes the lowest units still free
(a released refund gives its units back). So refunding every unit in any sequence of partial
refunds returns exactly what was paid, never a unit more or less; no line is refunded beyond
its quantity. Pure: the workflow and the HTTP API run the same function on the same inputs.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal

from workflows.currencies import format_amount
from workflows.models import RefundReason
from workflows.orders import (
    SHIPPING_LINE,
    Order,
    OrderLine,
    QuotedLine,
    QuotedTax,
    QuoteInput,
    RefundQuote,
    TakenUnits,
)
from workflows.refund_policy import RefundPolicy, ShippingRule, reason_refusal


class QuoteRefused(Exception):
    """The lines asked for cannot be refunded; the message says why, with the figures."""


def allotted(total: int, units: int, quantity: int) -> int:
    """``total`` split over ``quantity`` units: the first ``units`` units' share, half up."""
    return (2 * total * units + quantity) // (2 * quantity)


def units_share(total: int, units: Iterable[int], quantity: int) -> int:
    """The share of ``total`` that the given unit numbers (1..quantity) carry."""
    return sum(
        allotted(total, unit, quantity) - allotted(total, unit - 1, quantity) for unit in units
    )


def tax_as_charged(net: int, rate: Decimal) -> int:
    """The tax an order line was charged when only its rate is known: rounded half up once, at
    import, and stored; a quote never recomputes it."""
    return int((Decimal(net) * rate).to_integral_value(rounding=ROUND_HALF_UP))


def basis_points(amount: int, bps: int) -> int:
    return (2 * amount * bps + 10_000) // 20_000


def quote_refund(
    order: Order, taken: TakenUnits, asked: QuoteInput, policy: RefundPolicy
) -> RefundQuote:
    try:
        reason = RefundReason(asked.reason)
    except ValueError:
        known = ", ".join(r.value for r in RefundReason)
        raise QuoteRefused(f"unknown reason {asked.reason!r}: expected one of {known}") from None
    refused = reason_refusal(policy, reason)
    if refused:
        raise QuoteRefused(refused)
    names = [line.line_id for line in asked.lines]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise QuoteRefused(f"line {', '.join(repeated)} is asked for twice: name each line once")
    quoted = [_quote_line(order, line_id, quantity, taken) for line_id, quantity in _asked(asked)]
    shipping_free = 1 not in taken.get(SHIPPING_LINE, [])
    with_shipping = _shipping_included(order, asked, policy, reason, shipping_free)
    shipping = order.shipping.amount if with_shipping else 0
    shipping_tax = sum(tax.amount for tax in order.shipping.taxes) if with_shipping else 0
    bps = policy.restocking_bps(reason.value)
    fee = basis_points(sum(line.amount for line in quoted), bps)
    total = sum(line.total for line in quoted) + shipping + shipping_tax - fee
    if total <= 0:
        raise QuoteRefused(
            f"nothing to refund on order {order.order_id}: the lines and shipping asked for come "
            f"to {format_amount(total + fee, order.currency)} and the restocking fee is "
            f"{format_amount(fee, order.currency)}"
        )
    left_on_lines = sum(line.refundable_amount_after for line in quoted) + _untouched_lines_left(
        order, taken, {line.line_id for line in quoted}
    )
    shipping_left = order.shipping.paid if shipping_free and not with_shipping else 0
    return RefundQuote(
        order_id=order.order_id,
        currency=order.currency,
        reason=reason.value,
        lines=quoted,
        shipping=shipping,
        shipping_tax=shipping_tax,
        restocking_fee=fee,
        restocking_fee_bps=bps,
        total=total,
        refundable_after=left_on_lines + shipping_left,
    )


def _asked(asked: QuoteInput) -> list[tuple[str, int]]:
    return [(line.line_id, line.quantity) for line in asked.lines]


def _quote_line(order: Order, line_id: str, quantity: int, taken: TakenUnits) -> QuotedLine:
    line = order.line(line_id)
    if line is None:
        known = ", ".join(item.line_id for item in order.lines)
        raise QuoteRefused(f"order {order.order_id} has no line {line_id!r} (its lines: {known})")
    free = _free_units(line, taken)
    if quantity > len(free):
        earlier = line.quantity - len(free)
        raise QuoteRefused(
            f"line {line_id} of order {order.order_id}: {quantity} asked for, but only "
            f"{len(free)} of its {line.quantity} are still refundable ({earlier} refunded "
            "by earlier refunds)"
        )
    units, rest = free[:quantity], free[quantity:]
    taxes = [
        QuotedTax(
            jurisdiction=tax.jurisdiction,
            rate=tax.rate,
            amount=units_share(tax.amount, units, line.quantity),
        )
        for tax in line.taxes
    ]
    amount = units_share(line.net, units, line.quantity)
    tax = sum(item.amount for item in taxes)
    return QuotedLine(
        line_id=line.line_id,
        sku=line.sku,
        quantity=quantity,
        units=units,
        amount=amount,
        taxes=taxes,
        tax=tax,
        total=amount + tax,
        refundable_quantity_before=len(free),
        refundable_quantity_after=len(rest),
        refundable_amount_after=_units_paid(line, rest),
    )


def _free_units(line: OrderLine, taken: TakenUnits) -> list[int]:
    held = set(taken.get(line.line_id, []))
    return [unit for unit in range(1, line.quantity + 1) if unit not in held]


def _units_paid(line: OrderLine, units: list[int]) -> int:
    parts = [line.net, *(tax.amount for tax in line.taxes)]
    return sum(units_share(part, units, line.quantity) for part in parts)


def _untouched_lines_left(order: Order, taken: TakenUnits, quoted: set[str]) -> int:
    return sum(
        _units_paid(line, _free_units(line, taken))
        for line in order.lines
        if line.line_id not in quoted
    )


def _shipping_included(
    order: Order,
    asked: QuoteInput,
    policy: RefundPolicy,
    reason: RefundReason,
    shipping_free: bool,
) -> bool:
    rule = policy.shipping_rule(reason.value)
    wanted = asked.refund_shipping
    if wanted and rule is ShippingRule.NEVER:
        raise QuoteRefused(
            f"shipping is not refunded for reason {reason.value!r} under the refund policy "
            "(REFUNDS_SHIPPING_REFUND)"
        )
    if wanted and not shipping_free:
        raise QuoteRefused(f"the shipping of order {order.order_id} was already refunded")
    if order.shipping.paid == 0 or not shipping_free or wanted is False:
        return False
    return rule is ShippingRule.REFUND or (rule is ShippingRule.ON_REQUEST and bool(wanted))
