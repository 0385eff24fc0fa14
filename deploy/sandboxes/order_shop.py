"""Orders as a shop's checkout makes them, and the signed ``order.created`` event it sends.

A sample order has three lines (one of several units, two with a discount), two tax rates, and
shipping taxed like the goods, in a given currency: a US shop charges a state and a city sales
tax on every line and on shipping; a shop in EUR, GBP or JPY charges VAT (or consumption tax)
at the standard rate on most lines and at the reduced rate on one. Each tax is computed once,
at checkout, with ``workflows.quotes.tax_as_charged``, and kept as charged: a refund's quote
splits those amounts, it never recomputes them.

The shop pays the order's ``total`` at the provider first, then tells the service of the order
with ``send_order_created``: a ``Refunds-Signature``-signed event to the receiver's
``/webhooks/shop`` (``REFUNDS_SHOP_WEBHOOK_SECRET``), whose 2xx means the order is stored.
"""

from __future__ import annotations

import json
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from activities.events import SIGNATURE_HEADER, sign
from workflows.currencies import MINOR_UNITS
from workflows.models import Psp
from workflows.orders import Order, OrderLine, Shipping, TaxLine
from workflows.quotes import tax_as_charged


class OrderEventRefused(Exception):
    """The receiver did not store the order (no 2xx); the message has its answer."""


@dataclass(frozen=True)
class Item:
    line_id: str
    sku: str
    quantity: int
    discount_percent: int  # of the line's price: a promotion, as the checkout applied it
    reduced_rate: bool  # taxed at the reduced rate where there is one (books, food)


ITEMS = (
    Item("L1", "TSHIRT-ORGANIC", 2, 20, reduced_rate=False),
    Item("L2", "COFFEE-BEANS-500G", 3, 0, reduced_rate=True),
    Item("L3", "POSTER-A2", 1, 10, reduced_rate=False),
)

# Unit prices of L1, L2, L3 and the shipping, in each currency's minor units.
PRICES: dict[str, tuple[int, int, int, int]] = {
    "USD": (2500, 1299, 1850, 799),
    "EUR": (2300, 1190, 1650, 690),
    "GBP": (1999, 1049, 1450, 595),
    "JPY": (3800, 1980, 2700, 1200),
}

# (jurisdiction, rate) pairs: US sales tax is two lines (state and city) on everything; a VAT
# country charges its standard rate, or the reduced one on reduced-rate goods.
US_TAXES = (("US-IL", Decimal("0.0625")), ("US-IL-CHICAGO", Decimal("0.0225")))
VAT: dict[str, tuple[tuple[str, Decimal], tuple[str, Decimal]]] = {
    "EUR": (("DE", Decimal("0.19")), ("DE-REDUCED", Decimal("0.07"))),
    "GBP": (("GB", Decimal("0.20")), ("GB-REDUCED", Decimal("0.05"))),
    "JPY": (("JP", Decimal("0.10")), ("JP-REDUCED", Decimal("0.08"))),
}


def prices_in(currency: str) -> tuple[int, int, int, int]:
    """The catalogue's prices in ``currency``: its own list, else the USD one in its units."""
    code = currency.upper()
    if code in PRICES:
        return PRICES[code]
    if code not in MINOR_UNITS:
        raise ValueError(f"{currency!r} is not an ISO 4217 currency code")
    scale = Decimal(10) ** (MINOR_UNITS[code] - 2)
    prices = tuple(max(1, int(Decimal(p) * scale)) for p in PRICES["USD"])
    return prices[0], prices[1], prices[2], prices[3]


def _taxes(net: int, currency: str, reduced: bool) -> list[TaxLine]:
    code = currency.upper()
    if code in VAT:
        jurisdiction, rate = VAT[code][1 if reduced else 0]
        rates: tuple[tuple[str, Decimal], ...] = ((jurisdiction, rate),)
    else:
        rates = US_TAXES
    return [
        TaxLine(jurisdiction=place, rate=rate, amount=tax_as_charged(net, rate))
        for place, rate in rates
    ]


def sample_order(
    order_id: str,
    currency: str,
    psp: Psp,
    payment_id: str,
    customer_id: str | None = None,
    placed_at: datetime | None = None,
) -> Order:
    """The shop's sample order in ``currency``, paid by ``payment_id`` (its ``total``)."""
    *unit_prices, shipping = prices_in(currency)
    lines = []
    for item, unit_price in zip(ITEMS, unit_prices, strict=True):
        gross = item.quantity * unit_price
        discount = gross * item.discount_percent // 100
        lines.append(
            OrderLine(
                line_id=item.line_id,
                sku=item.sku,
                quantity=item.quantity,
                unit_price=unit_price,
                discount=discount,
                taxes=_taxes(gross - discount, currency, item.reduced_rate),
            )
        )
    return Order(
        order_id=order_id,
        psp=psp,
        payment_id=payment_id,
        currency=currency.upper(),
        customer_id=customer_id,
        placed_at=placed_at or datetime.now(UTC),
        lines=lines,
        shipping=Shipping(amount=shipping, taxes=_taxes(shipping, currency, reduced=False)),
    )


def sample_total(currency: str) -> int:
    """What the sample order in ``currency`` costs: the amount the shop charges for it."""
    return sample_order("quote", currency, Psp.STRIPE, "unpaid").total


def order_event(order: Order, event_type: str = "order.created") -> dict[str, Any]:
    """The shop event telling the service of ``order`` (its id is stable per order)."""
    return {
        "id": f"evt_{event_type.replace('.', '_')}_{order.order_id}",
        "type": event_type,
        "created": int(time.time()),
        "data": order.model_dump(mode="json"),
    }


async def send_order_created(
    receiver: str, secret: str, order: Order, http: httpx.AsyncClient | None = None
) -> dict[str, Any]:
    """POST the signed ``order.created`` event of ``order`` to ``receiver`` (the service's
    ``/webhooks/shop`` URL); the receiver's answer once it has stored the order. Raises
    ``OrderEventRefused`` for any answer but 2xx."""
    if not secret:
        raise OrderEventRefused("no shop webhook secret (REFUNDS_SHOP_WEBHOOK_SECRET) to sign with")
    body = json.dumps(order_event(order), separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(body, secret, int(time.time())),
    }
    async with AsyncExitStack() as stack:
        if http is None:
            http = await stack.enter_async_context(httpx.AsyncClient(timeout=15))
        try:
            answer = await http.post(receiver, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise OrderEventRefused(
                f"order.created for {order.order_id}: {receiver}: {exc}"
            ) from exc
    if not answer.is_success:
        raise OrderEventRefused(
            f"order.created for {order.order_id}: {receiver} answered {answer.status_code}: "
            f"{answer.text[:300]}"
        )
    result: dict[str, Any] = answer.json()
    return result
