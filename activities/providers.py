"""The one interface every payment provider adapter implements (Stripe, PayPal, Adyen).

Provider-neutral on purpose: a payment is authorised or captured, money goes back by a void
(before capture) or a refund (after), and every money-moving call carries our own idempotency
key so a retried activity can never move money twice. Adapters map their SDK's errors onto
``activities.errors`` at this boundary.
"""

from __future__ import annotations

from typing import Protocol

from workflows.models import (
    PaymentSnapshot,
    Psp,
    PspRefund,
    RefundPlan,
    RefundReason,
)


class PaymentProvider(Protocol):
    psp: Psp

    async def fetch_payment(self, payment_id: str) -> PaymentSnapshot:
        """The payment's state, amounts and dispute flag; ``PaymentNotFound`` if unknown."""
        ...

    async def refund(
        self,
        payment: PaymentSnapshot,
        plan: RefundPlan,
        reason: RefundReason,
        idempotency_key: str,
        refund_id: str,
    ) -> PspRefund:
        """Return captured money; the answer may be pending until the provider settles it."""
        ...

    async def void(
        self, payment: PaymentSnapshot, idempotency_key: str, refund_id: str
    ) -> PspRefund:
        """Release an authorisation that was never captured (``refund_id`` names our request
        at a provider that reports the outcome later, like Adyen's CANCELLATION)."""
        ...

    async def fetch_refund(self, psp_refund_id: str) -> PspRefund:
        """A refund's current outcome, for settlement polling."""
        ...

    async def find_refund(self, payment: PaymentSnapshot, refund_id: str) -> PspRefund | None:
        """The refund this service already made for ``refund_id``, if any.

        Asked before retrying a refund: a provider keeps idempotency keys for a limited time
        (Stripe 24 hours), after which the same key would make a second refund.
        """
        ...
