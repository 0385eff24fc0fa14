"""The provider contract harness for PayPal: its sandbox, the adapter through paypalrestsdk,
and a shop paying with the sandbox's test cards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

import asyncpg
import httpx
from temporalio.client import Client

from activities.paypal_provider import PayPalProvider
from deploy.sandboxes.paypal_objects import LATE_FAILURE_CARD, NORMAL_CARD, PENDING_REFUND_CARD
from deploy.sandboxes.paypal_sandbox import PayPalSandbox
from deploy.sandboxes.paypal_shop import paypal_checkout
from tests.support.harness import LATE_FAILURE, OK, PENDING, Receiver
from workers.settings import Settings
from workflows.models import Psp

CLIENT_ID, CLIENT_SECRET = "sandbox-client", "sandbox-secret"
REFUSED_SECRET = "bad-secret"  # the one secret the sandbox's OAuth refuses
_CARDS = {OK: NORMAL_CARD, PENDING: PENDING_REFUND_CARD, LATE_FAILURE: LATE_FAILURE_CARD}


@dataclass
class PayPalHarness:
    sandbox: PayPalSandbox
    provider: PayPalProvider
    psp: Psp = Psp.PAYPAL

    async def paid(
        self, amount: int, currency: str = "EUR", *, captured: bool = True, refunds: str = OK
    ) -> str:
        return await paypal_checkout(
            self.sandbox.base_url, amount, currency, capture=captured, card=_CARDS[refunds]
        )

    async def refunds_made(self, payment_id: str) -> int:
        url = f"{self.sandbox.base_url}/_sandbox/captures/{payment_id}/refunds"
        async with httpx.AsyncClient(trust_env=False) as http:
            answer = await http.get(url)
        if answer.status_code == 404:  # an authorization: never refunded
            return 0
        answer.raise_for_status()
        return len(answer.json()["refunds"])

    def drop_next_refund_answer(self) -> None:
        self.sandbox.faults.script("/v2/payments/captures/", "POST", drop_times=1)

    def with_bad_credentials(self) -> PayPalProvider:
        return PayPalProvider(CLIENT_ID, REFUSED_SECRET, self.sandbox.base_url)

    def configure_receiver(self, settings: Settings) -> Settings:
        """The receiver checks the sandbox's signatures with its certificate, as
        ``refunds dev`` configures it (PAYPAL_WEBHOOK_CERT_FILE)."""
        paypal = replace(
            settings.paypal,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            api_base=self.sandbox.base_url,
            webhook_id=self.sandbox.webhook_id,
            webhook_cert_file=self.sandbox.certificate_file,
        )
        return settings.with_overrides(paypal=paypal)


@asynccontextmanager
async def paypal_harness(
    receiver: Receiver | None = None,
    client: Client | None = None,
    pool: asyncpg.Pool | None = None,
    settle_after_seconds: float = 0.3,
) -> AsyncIterator[PayPalHarness]:
    """A PayPal sandbox on a free port, stopped even when the test fails; with a ``receiver``
    its signed webhooks go there (the suite serves the receiver itself: ``client`` and
    ``pool`` are unused)."""
    del client, pool
    sandbox = PayPalSandbox(
        settle_after_seconds=settle_after_seconds,
        webhook_url=receiver.url(Psp.PAYPAL) if receiver else None,
        webhook_id=receiver.paypal_webhook_id if receiver else None,
    )
    await sandbox.start("127.0.0.1", 0)
    try:
        yield PayPalHarness(sandbox, PayPalProvider(CLIENT_ID, CLIENT_SECRET, sandbox.base_url))
    finally:
        await sandbox.stop()
