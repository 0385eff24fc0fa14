"""What the provider contract suite needs of each provider: its sandbox, its adapter, a shop.

One harness per provider (Stripe, PayPal, Adyen) lives beside this file; the suite in
``tests/contract`` runs the same tests against each, so every adapter keeps one contract.
"""

from __future__ import annotations

from typing import Protocol

from activities.providers import PaymentProvider
from workflows.models import Psp

# What a test payment's refunds do at the sandbox.
OK = "ok"  # refunds settle at once
PENDING = "pending"  # refunds answer pending, then settle as succeeded a little later
LATE_FAILURE = "late_failure"  # refunds succeed, then fail a little later


class ProviderHarness(Protocol):
    psp: Psp
    provider: PaymentProvider  # the real adapter, through the real SDK, aimed at the sandbox

    async def paid(
        self, amount: int, currency: str = "EUR", *, captured: bool = True, refunds: str = OK
    ) -> str:
        """Pay as a shop pays (authorised only when not ``captured``); the payment's id, as
        the adapter's ``fetch_payment`` takes it and a ``RefundRequest`` names it. Returns only
        once the service could refund it (for Adyen: its AUTHORISATION notification is in)."""
        ...

    async def refunds_made(self, payment_id: str) -> int:
        """How many refunds the sandbox holds for the payment (read from the sandbox itself)."""
        ...

    def drop_next_refund_answer(self) -> None:
        """The next refund request is carried out, then its connection closed unanswered."""
        ...

    def with_bad_credentials(self) -> PaymentProvider:
        """The same adapter with credentials the sandbox refuses."""
        ...
