"""The PayPal adapter through paypalrestsdk against the sandbox: shapes, request ids, errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from activities.errors import (
    OverRefund,
    PaymentNotFound,
    PaymentNotRefundable,
    ProviderAuthFailed,
    ProviderRateLimited,
    ProviderUnavailable,
    RefundRefused,
)
from deploy.sandboxes.paypal_objects import EXPIRED_CAPTURE_CARD
from deploy.sandboxes.paypal_shop import paypal_checkout
from tests.support.harness import PENDING
from tests.support.paypal_harness import PayPalHarness, paypal_harness
from workflows.models import PaymentState, PspRefundStatus, RefundPlan, RefundReason

REASON = RefundReason.REQUESTED_BY_CUSTOMER


@pytest.fixture
async def paypal() -> AsyncIterator[PayPalHarness]:
    async with paypal_harness() as harness:
        yield harness


def plan(amount: int, currency: str = "EUR") -> RefundPlan:
    return RefundPlan(operation="refund", amount=amount, currency=currency)


async def test_a_capture_reads_as_captured_in_minor_units(paypal: PayPalHarness) -> None:
    capture_id = await paypal.paid(2599, "EUR")
    snapshot = await paypal.provider.fetch_payment(capture_id)
    assert snapshot.state is PaymentState.CAPTURED
    assert (snapshot.currency, snapshot.amount_captured, snapshot.amount_refunded) == (
        "EUR",
        2599,
        0,
    )
    assert snapshot.canonical_id == capture_id and snapshot.created is not None


async def test_zero_decimal_currency_keeps_its_amount(paypal: PayPalHarness) -> None:
    capture_id = await paypal.paid(3000, "JPY")
    snapshot = await paypal.provider.fetch_payment(capture_id)
    assert (snapshot.currency, snapshot.amount_captured) == ("JPY", 3000)
    refund = await paypal.provider.refund(snapshot, plan(1200, "JPY"), REASON, "k-jpy", "r-jpy")
    assert (refund.amount, refund.currency) == (1200, "JPY")
    assert (await paypal.provider.fetch_payment(capture_id)).amount_refunded == 1200


async def test_an_authorization_reads_as_held_and_voids_once(paypal: PayPalHarness) -> None:
    auth_id = await paypal.paid(700, "USD", captured=False)
    snapshot = await paypal.provider.fetch_payment(auth_id)
    assert snapshot.state is PaymentState.AUTHORIZED
    assert (snapshot.amount_authorized, snapshot.amount_captured) == (700, 0)

    voided = await paypal.provider.void(snapshot, "void-key")
    again = await paypal.provider.void(snapshot, "another-key")  # PREVIOUSLY_VOIDED: fine
    assert voided.status is again.status is PspRefundStatus.SUCCEEDED
    assert (await paypal.provider.fetch_payment(auth_id)).state is PaymentState.CANCELED


async def test_unknown_payment_is_not_found(paypal: PayPalHarness) -> None:
    for unknown in ("8MC585209K746392H", "../v1/oauth2/token"):
        with pytest.raises(PaymentNotFound, match="PayPal: "):
            await paypal.provider.fetch_payment(unknown)


async def test_partial_then_full_refund_and_then_nothing_left(paypal: PayPalHarness) -> None:
    capture_id = await paypal.paid(5000)
    payment = await paypal.provider.fetch_payment(capture_id)

    partial = await paypal.provider.refund(payment, plan(1500), REASON, "k1", "refund-1")
    assert (partial.status, partial.amount) == (PspRefundStatus.SUCCEEDED, 1500)
    assert (await paypal.provider.fetch_payment(capture_id)).amount_refunded == 1500
    found = await paypal.provider.find_refund(payment, "refund-1")
    assert found is not None and found.psp_refund_id == partial.psp_refund_id
    assert await paypal.provider.find_refund(payment, "refund-never") is None

    with pytest.raises(OverRefund, match="REFUND_AMOUNT_EXCEEDED"):
        await paypal.provider.refund(payment, plan(3501), REASON, "k2", "refund-2")
    rest = await paypal.provider.refund(payment, plan(3500), REASON, "k3", "refund-3")
    assert rest.status is PspRefundStatus.SUCCEEDED
    assert (await paypal.provider.fetch_payment(capture_id)).amount_refunded == 5000
    with pytest.raises(OverRefund, match="CAPTURE_FULLY_REFUNDED"):
        await paypal.provider.refund(payment, plan(1), REASON, "k4", "refund-4")


async def test_pending_refund_settles_as_completed(paypal: PayPalHarness) -> None:
    payment = await paypal.provider.fetch_payment(await paypal.paid(900, refunds=PENDING))
    refund = await paypal.provider.refund(payment, plan(900), REASON, "kp", "refund-p")
    assert refund.status is PspRefundStatus.PENDING
    await asyncio.sleep(0.5)
    settled = await paypal.provider.fetch_refund(refund.psp_refund_id)
    assert (settled.status, settled.amount) == (PspRefundStatus.SUCCEEDED, 900)


async def test_refusals_past_paypal_limits_end_not_refundable(paypal: PayPalHarness) -> None:
    old = await paypal_checkout(paypal.sandbox.base_url, 1000, "EUR", card=EXPIRED_CAPTURE_CARD)
    payment = await paypal.provider.fetch_payment(old)
    with pytest.raises(PaymentNotRefundable, match="REFUND_TIME_LIMIT_EXCEEDED"):
        await paypal.provider.refund(payment, plan(100), REASON, "k-old", "r-old")

    payment = await paypal.provider.fetch_payment(await paypal.paid(1000))
    for n in range(10):
        await paypal.provider.refund(payment, plan(10), REASON, f"k-{n}", f"r-{n}")
    with pytest.raises(PaymentNotRefundable, match="MAX_NUMBER_OF_REFUNDS_EXCEEDED"):
        await paypal.provider.refund(payment, plan(10), REASON, "k-11", "r-11")


async def test_bad_credentials_fail_clearly(paypal: PayPalHarness) -> None:
    capture_id = await paypal.paid(100)
    with pytest.raises(ProviderAuthFailed) as refused:
        await paypal.with_bad_credentials().fetch_payment(capture_id)
    assert refused.value.message == (
        "PayPal: Client Authentication failed (check PAYPAL_CLIENT_ID/PAYPAL_CLIENT_SECRET)"
    )
    assert not refused.value.retryable


async def test_a_lost_answer_retried_with_the_same_key_refunds_once(
    paypal: PayPalHarness,
) -> None:
    capture_id = await paypal.paid(2000)
    payment = await paypal.provider.fetch_payment(capture_id)
    paypal.drop_next_refund_answer()
    with pytest.raises(ProviderUnavailable):
        await paypal.provider.refund(payment, plan(2000), REASON, "same-key", "refund-x")
    retried = await paypal.provider.refund(payment, plan(2000), REASON, "same-key", "refund-x")
    assert retried.status is PspRefundStatus.SUCCEEDED
    assert await paypal.refunds_made(capture_id) == 1


async def test_server_errors_and_rate_limits_are_retryable(paypal: PayPalHarness) -> None:
    capture_id = await paypal.paid(100)
    paypal.sandbox.faults.script("/v2/payments/captures/", "GET", fail_times=1, status=503)
    with pytest.raises(ProviderUnavailable) as unavailable:
        await paypal.provider.fetch_payment(capture_id)
    paypal.sandbox.faults.script("/v2/payments/captures/", "GET", fail_times=1, status=429)
    with pytest.raises(ProviderRateLimited) as limited:
        await paypal.provider.fetch_payment(capture_id)
    assert unavailable.value.retryable and limited.value.retryable


async def test_the_sync_sdk_never_blocks_the_event_loop(paypal: PayPalHarness) -> None:
    capture_id = await paypal.paid(100)
    paypal.sandbox.faults.script("/v2/payments/captures/", "GET", latency="300ms")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    try:
        await paypal.provider.fetch_payment(capture_id)
    finally:
        ticker.cancel()
    assert time.monotonic() - started >= 0.3
    assert ticks >= 8  # the loop kept running while the SDK waited in its thread


async def test_a_fraction_of_a_currency_paypal_takes_whole_is_a_refusal(
    paypal: PayPalHarness,
) -> None:
    capture = await paypal.paid(300, "HUF")  # 3.00 HUF
    snapshot = await paypal.provider.fetch_payment(capture)
    plan = RefundPlan(operation="refund", amount=150, currency="HUF")  # 1.50 HUF
    with pytest.raises(RefundRefused, match="HUF amounts take no decimals") as refused:
        await paypal.provider.refund(snapshot, plan, RefundReason.OTHER, "refund-huf-refund", "huf")
    assert not refused.value.retryable
    assert await paypal.refunds_made(capture) == 0
