"""What the provider contract suite needs of each provider: its sandbox, its adapter, a shop.

One harness per provider (Stripe, PayPal, Adyen) lives beside this file; the suite in
``tests/contract`` runs the same tests against each, so every adapter keeps one contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from activities.providers import PaymentProvider
from workers.settings import Settings
from workflows.models import Psp


@dataclass(frozen=True)
class Receiver:
    """The webhook receiver a harness's sandbox delivers to, with the secrets it checks."""

    base_url: str  # e.g. http://127.0.0.1:PORT; the provider's path is /webhooks/{psp}
    stripe_secret: str = "whsec_contract_suite"
    paypal_webhook_id: str = "WH-CONTRACT-SUITE"
    adyen_hmac_key: str = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"

    def url(self, psp: Psp) -> str:
        return f"{self.base_url}/webhooks/{psp.value}"


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

    def configure_receiver(self, settings: Settings) -> Settings:
        """``settings`` with what the receiver needs to verify this sandbox's webhooks."""
        ...
