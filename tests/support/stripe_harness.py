"""The Stripe side of the provider contract suite: its sandbox, the adapter, a shop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import stripe
from temporalio.client import Client

from activities.providers import PaymentProvider
from activities.stripe_provider import StripeProvider
from deploy.sandboxes.stripe_sandbox import StripeSandbox
from deploy.sandboxes.stripe_shop import create_payment, shop_client
from tests.support.harness import LATE_FAILURE, OK, PENDING, Receiver
from workers.settings import Settings
from workflows.models import Psp

SANDBOX_KEY = "sk_test_contract"
CARDS = {
    OK: "pm_card_visa",
    PENDING: "pm_card_pendingRefund",
    LATE_FAILURE: "pm_card_refundLateFail",
}


class StripeHarness:
    psp = Psp.STRIPE

    def __init__(
        self, sandbox: StripeSandbox, http: stripe.HTTPXClient, receiver: Receiver
    ) -> None:
        self.sandbox, self._receiver = sandbox, receiver
        self.provider: PaymentProvider = StripeProvider(SANDBOX_KEY, sandbox.base_url)
        self._shop = shop_client(sandbox.base_url, SANDBOX_KEY, http_client=http)

    async def paid(
        self, amount: int, currency: str = "EUR", *, captured: bool = True, refunds: str = OK
    ) -> str:
        return await create_payment(
            self._shop,
            amount=amount,
            currency=currency.lower(),
            customer="cus_contract",
            capture=captured,
            payment_method=CARDS[refunds],
        )

    async def refunds_made(self, payment_id: str) -> int:
        listed = await self._shop.v1.refunds.list_async({"payment_intent": payment_id})
        return len(listed.data)

    def drop_next_refund_answer(self) -> None:
        self.sandbox.faults.script("/v1/refunds", "POST", drop_times=1)

    def with_bad_credentials(self) -> PaymentProvider:
        return StripeProvider("sk_live_not_a_sandbox_key", self.sandbox.base_url)

    def configure_receiver(self, settings: Settings) -> Settings:
        return settings.with_overrides(
            stripe_webhook_secret=self._receiver.stripe_secret,
            stripe_api_key=SANDBOX_KEY,
            stripe_api_base=self.sandbox.base_url,
        )


@asynccontextmanager
async def stripe_harness(
    receiver: Receiver, client: Client, pool: asyncpg.Pool
) -> AsyncIterator[StripeHarness]:
    sandbox = StripeSandbox(
        pending_refund_seconds=0.3,
        late_failure_seconds=0.5,
        webhook_url=receiver.url(Psp.STRIPE),
        webhook_secret=receiver.stripe_secret,
    )
    await sandbox.start("127.0.0.1", 0)
    http = stripe.HTTPXClient()
    try:
        yield StripeHarness(sandbox, http, receiver)
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]
        await sandbox.stop()
