"""The refund workflow's order step: quote the lines a return gives back.

The order must be the one the refund's payment paid for, in its currency: a quote of one order
must never move money of another payment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from temporalio import activity

from activities.errors import CurrencyMismatch, OrderNotFound, QuoteRefused, as_application_errors
from workflows.models import PaymentSnapshot
from workflows.orders import Order, QuoteInput, RefundQuote
from workflows.refund_policy import RefundPolicy
from workflows.returns import QuoteOrder


class OrderReader(Protocol):
    async def fetch(self, order_id: str) -> Order | None: ...

    async def quote(
        self, asked: QuoteInput, policy: RefundPolicy, besides: str | None = None
    ) -> RefundQuote: ...


class OrderActivities:
    def __init__(self, orders: OrderReader, policy: RefundPolicy) -> None:
        self._orders = orders
        self._policy = policy

    @activity.defn(name="quote_refund")
    async def quote_refund(self, asked: QuoteOrder) -> RefundQuote:
        with as_application_errors():
            order = await self._orders.fetch(asked.order_id)
            if order is None:
                raise OrderNotFound(f"order {asked.order_id} is not known to the order store")
            check_paid_by(order, asked.payment)
            return await self._orders.quote(
                QuoteInput(
                    order_id=asked.order_id,
                    lines=asked.lines,
                    reason=asked.reason,
                    refund_shipping=asked.refund_shipping,
                ),
                self._policy,
                besides=asked.request_id,
            )

    def all(self) -> list[Callable[..., Any]]:
        return [self.quote_refund]


def check_paid_by(order: Order, payment: PaymentSnapshot) -> None:
    ids = {payment.payment_id, payment.canonical_id}
    if order.psp is not payment.psp or order.payment_id not in ids:
        raise QuoteRefused(
            f"order {order.order_id} was paid by {order.psp.value} payment {order.payment_id}, "
            f"not by {payment.psp.value} payment {payment.payment_id}"
        )
    if order.currency != payment.currency:
        raise CurrencyMismatch(
            f"order {order.order_id} is in {order.currency} but payment "
            f"{payment.payment_id} is in {payment.currency}"
        )
