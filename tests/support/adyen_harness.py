"""The Adyen side of the provider contract suite: its sandbox, the adapter, a shop.

Adyen has no payment read API: the adapter knows a payment only once the receiver has
recorded its AUTHORISATION (and CAPTURE) notifications in the payment book. So ``paid`` pays
through the Adyen library and then waits, looking at the book, until they are in.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import asyncpg
from temporalio.client import Client

from activities.adyen_payments import AdyenPaymentBook
from activities.adyen_provider import AdyenProvider
from activities.providers import PaymentProvider
from deploy.sandboxes.adyen_sandbox import AdyenSandbox
from deploy.sandboxes.adyen_shop import SANDBOX_API_KEY, SANDBOX_MERCHANT_ACCOUNT, adyen_checkout
from deploy.sandboxes.adyen_state import LATE_FAILURE_CARD, VISA
from starters.webhooks import FraudWarningPolicy
from starters.webhooks_adyen import adyen_router
from tests.support.harness import LATE_FAILURE, OK, PENDING, Receiver
from tests.support.http import served_api
from workers.settings import Settings, parse_api_tokens
from workflows.models import Psp

# Every Adyen refund is pending until its REFUND notification; PENDING and OK differ only in
# name here.
CARDS = {OK: VISA, PENDING: VISA, LATE_FAILURE: LATE_FAILURE_CARD}
BOOKED_WITHIN_S = 15.0
# Short enough for tests, long enough that a notification that never comes is noticed.
SETTLEMENT_TIMEOUT_S = 120


class AdyenHarness:
    psp = Psp.ADYEN

    def __init__(self, sandbox: AdyenSandbox, book: AdyenPaymentBook, receiver: Receiver) -> None:
        self.sandbox, self.book, self._receiver = sandbox, book, receiver
        self.provider: PaymentProvider = self._provider(SANDBOX_API_KEY)

    def _provider(self, api_key: str) -> AdyenProvider:
        return AdyenProvider(
            api_key,
            SANDBOX_MERCHANT_ACCOUNT,
            self.book,
            self.sandbox.base_url,
            settlement_timeout_s=SETTLEMENT_TIMEOUT_S,
            auto_capture=False,  # the sandbox notifies CAPTURE, and delays it when asked
        )

    async def paid(
        self, amount: int, currency: str = "EUR", *, captured: bool = True, refunds: str = OK
    ) -> str:
        payment = await adyen_checkout(
            self.sandbox.base_url,
            amount,
            currency,
            capture=captured,
            card=CARDS[refunds],
            shopper_reference="cus_contract",
        )
        wanted = "captured" if captured else "authorised"
        try:
            async with asyncio.timeout(BOOKED_WITHIN_S):
                while True:
                    booked = await self.book.payment(payment)
                    if booked is not None and booked.state == wanted:
                        break
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise AssertionError(
                f"the receiver did not book Adyen payment {payment} as {wanted} within "
                f"{BOOKED_WITHIN_S} s; sandbox deliveries: "
                f"{[d.to_json() for d in self.sandbox.notifier.deliveries]}"
            ) from None
        return payment

    async def refunds_made(self, payment_id: str) -> int:
        return len(self.sandbox.refunds_of(payment_id))

    def drop_next_refund_answer(self) -> None:
        # Refunds are /v72/payments/{psp}/refunds: the rule's prefix cannot name the psp part,
        # so it takes the next modification of any payment (in the suite, that refund).
        self.sandbox.faults.script("/v72/payments/", "POST", drop_times=1)

    def with_bad_credentials(self) -> PaymentProvider:
        return self._provider("wrong")

    def configure_receiver(self, settings: Settings) -> Settings:
        adyen = replace(
            settings.adyen,
            api_key=SANDBOX_API_KEY,
            merchant_account=SANDBOX_MERCHANT_ACCOUNT,
            checkout_base=self.sandbox.base_url,
            hmac_key=self._receiver.adyen_hmac_key,
            settlement_timeout_s=SETTLEMENT_TIMEOUT_S,
            auto_capture=False,
        )
        return settings.with_overrides(adyen=adyen)


@asynccontextmanager
async def adyen_harness(
    receiver: Receiver, client: Client, pool: asyncpg.Pool
) -> AsyncIterator[AdyenHarness]:
    """The sandbox on a free port, notifying ``receiver``'s /webhooks/adyen; stopped even when
    the test fails. (``client`` is unused: the suite serves the receiver itself.)"""
    del client
    sandbox = AdyenSandbox(
        settle_after_seconds=0.2,
        late_failure_seconds=0.5,
        webhook_url=receiver.url(Psp.ADYEN),
        hmac_key=receiver.adyen_hmac_key,
    )
    await sandbox.start("127.0.0.1", 0)
    sandbox.notifier.first_backoff = 0.1
    try:
        yield AdyenHarness(sandbox, AdyenPaymentBook(pool), receiver)
    finally:
        await sandbox.stop()


@asynccontextmanager
async def served_adyen(
    client: Client, pool: asyncpg.Pool, task_queue: str = "adyen-tests"
) -> AsyncIterator[AdyenHarness]:
    """The harness with its receiver: /webhooks/adyen served on a free port (the adyen router
    alone, signalling through ``client``), the sandbox notifying it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    receiver = Receiver(f"http://127.0.0.1:{port}")
    async with adyen_harness(receiver, client, pool) as harness:
        settings = harness.configure_receiver(
            Settings(
                task_queue=task_queue,
                http_address=f"127.0.0.1:{port}",
                api_tokens=parse_api_tokens("t:admin:ops", "REFUNDS_API_TOKENS"),
            )
        )
        router = adyen_router(
            client, task_queue, harness.book, settings.adyen.hmac_keys, None, FraudWarningPolicy()
        )
        async with served_api(client, settings, [router]):
            yield harness
