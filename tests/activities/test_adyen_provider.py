"""The Adyen adapter through the Adyen library against the sandbox, with the payment book in
PostgreSQL fed by the real receiver: what it reads, what it sends, and how errors map."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from Adyen.exceptions import AdyenEndpointInvalidFormat  # type: ignore[import-untyped]
from temporalio.testing import WorkflowEnvironment

from activities.adyen_notifications import AdyenNotification
from activities.adyen_payments import AdyenPaymentBook
from activities.adyen_provider import AdyenProvider, adyen_idempotency_key, classify
from activities.errors import (
    PaymentNotFound,
    PaymentNotYetNotified,
    ProviderAuthFailed,
    ProviderRateLimited,
    ProviderUnavailable,
    RefundError,
)
from tests.support.adyen_harness import SETTLEMENT_TIMEOUT_S, AdyenHarness, served_adyen
from workflows.models import (
    PaymentState,
    PspRefundStatus,
    RefundPlan,
    RefundReason,
)


@pytest.fixture
async def adyen(
    dev_env: WorkflowEnvironment, ledger_db: asyncpg.Pool
) -> AsyncIterator[AdyenHarness]:
    async with served_adyen(dev_env.client, ledger_db) as harness:
        yield harness


async def settled(provider: AdyenProvider, psp_refund_id: str) -> PspRefundStatus:
    async with asyncio.timeout(10):
        while True:
            made = await provider.fetch_refund(psp_refund_id)
            if made.status is not PspRefundStatus.PENDING:
                return made.status
            await asyncio.sleep(0.05)


def adapter(harness: AdyenHarness) -> AdyenProvider:
    assert isinstance(harness.provider, AdyenProvider)
    return harness.provider


async def test_a_payment_adyen_never_notified_is_not_found(adyen: AdyenHarness) -> None:
    with pytest.raises(PaymentNotYetNotified, match="has not notified an AUTHORISATION for NOSUCH"):
        await adyen.provider.fetch_payment("NOSUCHPAYMENT000")


async def test_payments_are_read_from_the_notifications_booked(adyen: AdyenHarness) -> None:
    captured = await adyen.provider.fetch_payment(await adyen.paid(2599, "EUR"))
    assert captured.state is PaymentState.CAPTURED
    assert (captured.currency, captured.amount_captured, captured.amount_refunded) == (
        "EUR",
        2599,
        0,
    )
    assert captured.customer == "cus_contract" and captured.created is not None
    held = await adyen.provider.fetch_payment(await adyen.paid(700, "USD", captured=False))
    assert held.state is PaymentState.AUTHORIZED
    assert (held.amount_authorized, held.amount_captured) == (700, 0)


async def test_a_refund_is_pending_until_its_notification_settles_it(adyen: AdyenHarness) -> None:
    provider = adapter(adyen)
    payment = await provider.fetch_payment(await adyen.paid(5000))
    plan = RefundPlan(operation="refund", amount=1200, currency="EUR")
    answer = await provider.refund(payment, plan, RefundReason.DUPLICATE, "refund-r1-refund", "r1")
    assert answer.status is PspRefundStatus.PENDING
    assert answer.notification_only_escalate_after_s == SETTLEMENT_TIMEOUT_S
    assert (answer.amount, answer.currency) == (1200, "EUR")
    assert await provider.find_refund(payment, "r1") == answer

    assert await settled(provider, answer.psp_refund_id) is PspRefundStatus.SUCCEEDED
    assert (await provider.fetch_payment(payment.payment_id)).amount_refunded == 1200
    assert await provider.find_refund(payment, "someone-else") is None


async def test_a_long_key_is_cut_to_adyens_64_characters_the_same_way_each_time(
    adyen: AdyenHarness,
) -> None:
    provider = adapter(adyen)
    payment = await provider.fetch_payment(await adyen.paid(3000))
    key = "refund-" + "x" * 120 + "-refund"
    assert len(adyen_idempotency_key(key)) <= 64
    assert adyen_idempotency_key(key) == adyen_idempotency_key(key)
    plan = RefundPlan(operation="refund", amount=300, currency="EUR")
    first = await provider.refund(payment, plan, RefundReason.OTHER, key, "long")
    again = await provider.refund(payment, plan, RefundReason.OTHER, key, "long")
    assert first.psp_refund_id == again.psp_refund_id
    assert await adyen.refunds_made(payment.payment_id) == 1


async def test_a_dropped_answer_then_a_retry_with_the_same_key_refunds_once(
    adyen: AdyenHarness,
) -> None:
    provider = adapter(adyen)
    payment = await provider.fetch_payment(await adyen.paid(2500))
    plan = RefundPlan(operation="refund", amount=2500, currency="EUR")
    adyen.drop_next_refund_answer()
    with pytest.raises(ProviderUnavailable, match=r"^Adyen: no answer"):
        await provider.refund(payment, plan, RefundReason.OTHER, "refund-d1-refund", "d1")
    retried = await provider.refund(payment, plan, RefundReason.OTHER, "refund-d1-refund", "d1")
    assert retried.status is PspRefundStatus.PENDING
    assert await adyen.refunds_made(payment.payment_id) == 1


async def test_a_void_is_pending_until_the_cancellation(adyen: AdyenHarness) -> None:
    provider = adapter(adyen)
    payment = await provider.fetch_payment(await adyen.paid(900, captured=False))
    answer = await provider.void(payment, "refund-v1-void", "v1")
    assert (answer.status, answer.amount) == (PspRefundStatus.PENDING, 900)
    assert await settled(provider, answer.psp_refund_id) is PspRefundStatus.SUCCEEDED
    assert (await provider.fetch_payment(payment.payment_id)).state is PaymentState.CANCELED
    made = await adyen.book.modification(answer.psp_refund_id)
    assert made is not None and made.merchant_reference == "v1"


async def test_a_refused_key_says_which_setting_to_check(adyen: AdyenHarness) -> None:
    payment = await adyen.provider.fetch_payment(await adyen.paid(1000))
    plan = RefundPlan(operation="refund", amount=100, currency="EUR")
    with pytest.raises(ProviderAuthFailed, match=r"^Adyen: .*Unauthorized.*check ADYEN_API_KEY"):
        await adyen.with_bad_credentials().refund(
            payment, plan, RefundReason.OTHER, "refund-b1-refund", "b1"
        )


async def test_refunding_a_payment_adyen_does_not_know_is_payment_not_found(
    adyen: AdyenHarness,
) -> None:
    payment = await adyen.provider.fetch_payment(await adyen.paid(1000))
    ghost = payment.model_copy(update={"payment_id": "NOSUCHPAYMENT000"})
    plan = RefundPlan(operation="refund", amount=100, currency="EUR")
    with pytest.raises(PaymentNotFound, match="errorCode 167"):
        await adyen.provider.refund(ghost, plan, RefundReason.OTHER, "refund-g1-refund", "g1")


async def test_recording_the_same_notification_twice_changes_nothing(
    adyen: AdyenHarness,
) -> None:
    provider = adapter(adyen)
    payment_id = await adyen.paid(4000)
    refund = AdyenNotification(
        event_code="REFUND",
        psp_reference="MANUALREFUND0001",
        original_reference=payment_id,
        merchant_account="RefundsSandboxECOM",
        merchant_reference="manual",
        value=1000,
        currency="EUR",
        success=True,
    )
    await adyen.book.record(refund)
    await adyen.book.record(refund)
    assert (await provider.fetch_payment(payment_id)).amount_refunded == 1000
    reversed_ = AdyenNotification(**{**vars(refund), "event_code": "REFUNDED_REVERSED"})
    await adyen.book.record(reversed_)
    await adyen.book.record(refund)  # a late redelivery of the success does not undo it
    snapshot = await provider.fetch_payment(payment_id)
    assert snapshot.amount_refunded == 0
    made = await adyen.book.modification_by_reference(payment_id, "manual")
    assert made is not None and made.outcome == "failed"


@pytest.mark.parametrize(
    ("status", "error"), [(429, ProviderRateLimited), (500, ProviderUnavailable)]
)
async def test_busy_or_broken_adyen_is_retryable(
    adyen: AdyenHarness, status: int, error: type[RefundError]
) -> None:
    payment = await adyen.provider.fetch_payment(await adyen.paid(1000))
    adyen.sandbox.faults.script("/v72/payments/", "POST", fail_times=1, status=status)
    plan = RefundPlan(operation="refund", amount=100, currency="EUR")
    with pytest.raises(error) as raised:
        await adyen.provider.refund(payment, plan, RefundReason.OTHER, "refund-f1-refund", "f1")
    assert raised.value.retryable and raised.value.message.startswith("Adyen: ")
    assert await adyen.refunds_made(payment.payment_id) == 0


async def test_notifications_of_one_payment_at_once_all_count(adyen: AdyenHarness) -> None:
    """Adyen delivers in parallel: five refunds notified at once are five refunds in the book."""
    payment_id = await adyen.paid(5000)
    refunds = [
        AdyenNotification(
            event_code="REFUND",
            psp_reference=f"PARALLELREFUND{n:02d}",
            original_reference=payment_id,
            merchant_account="RefundsSandboxECOM",
            merchant_reference=f"parallel-{n}",
            value=100,
            currency="EUR",
            success=True,
        )
        for n in range(5)
    ]
    await asyncio.gather(*(adyen.book.record(item) for item in refunds))
    assert (await adyen.provider.fetch_payment(payment_id)).amount_refunded == 500


async def test_with_auto_capture_an_authorised_payment_is_captured(adyen: AdyenHarness) -> None:
    """Adyen's default account captures at authorisation and sends no CAPTURE notification."""
    held = await adyen.paid(700, "USD", captured=False)  # booked: AUTHORISATION only
    provider = AdyenProvider(
        "AQE_sandbox_key", "RefundsSandboxECOM", adyen.book, adyen.sandbox.base_url
    )
    snapshot = await provider.fetch_payment(held)
    assert snapshot.state is PaymentState.CAPTURED
    assert (snapshot.amount_captured, snapshot.amount_authorized) == (700, 0)


def test_a_live_checkout_base_names_the_accounts_live_prefix(ledger_db: asyncpg.Pool) -> None:
    base = "https://1797a841fbb37ca7-AdyenDemo-checkout-live.adyenpayments.com/checkout/v72"
    provider = AdyenProvider("key", "ShopECOM", AdyenPaymentBook(ledger_db), base)
    client = provider._adyen.client
    assert (client.platform, client.live_endpoint_prefix) == ("live", "1797a841fbb37ca7-AdyenDemo")
    # What the library sends to: the live base as configured, no "Please set your live suffix".
    assert client._determine_api_url("live", f"{base}/payments/X/refunds") == (
        f"{base}/payments/X/refunds"
    )


def test_a_request_the_library_refuses_to_send_is_not_retried() -> None:
    refused = AdyenEndpointInvalidFormat("Please set your live suffix")
    error = classify(refused)
    assert not error.retryable
    assert "check ADYEN_CHECKOUT_BASE" in error.message
