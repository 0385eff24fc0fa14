"""The Stripe adapter through the real SDK against the sandbox: shapes, keys and error mapping."""

from __future__ import annotations

import pytest

from activities.errors import (
    OverRefund,
    PaymentNotFound,
    ProviderAuthFailed,
    ProviderRateLimited,
    ProviderUnavailable,
)
from activities.stripe_provider import StripeProvider
from deploy.sandboxes.stripe_sandbox import StripeSandbox
from deploy.sandboxes.stripe_shop import create_payment, shop_client
from tests.support.stack import SANDBOX_KEY
from workflows.models import PaymentState, PspRefundStatus, RefundPlan, RefundReason


async def test_payment_intent_and_its_charge_describe_the_same_payment(stripe_base: str) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(shop, amount=2599, currency="eur", customer="cus_3")
    provider = StripeProvider(SANDBOX_KEY, stripe_base)

    by_intent = await provider.fetch_payment(payment)
    charge_id = str((await shop.v1.payment_intents.retrieve_async(payment)).latest_charge)
    by_charge = await provider.fetch_payment(charge_id)

    for snapshot in (by_intent, by_charge):
        assert snapshot.state is PaymentState.CAPTURED
        assert (snapshot.currency, snapshot.amount_captured, snapshot.amount_refunded) == (
            "EUR",
            2599,
            0,
        )
        assert snapshot.customer == "cus_3"
        assert not snapshot.disputed


async def test_authorised_payment_reports_what_is_held(stripe_base: str) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(
        shop, amount=700, currency="usd", customer="cus_3", capture=False
    )
    snapshot = await StripeProvider(SANDBOX_KEY, stripe_base).fetch_payment(payment)
    assert snapshot.state is PaymentState.AUTHORIZED
    assert (snapshot.amount_authorized, snapshot.amount_captured) == (700, 0)


async def test_same_idempotency_key_never_refunds_twice(stripe_base: str) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(shop, amount=5000, currency="usd", customer="cus_3")
    provider = StripeProvider(SANDBOX_KEY, stripe_base)
    snapshot = await provider.fetch_payment(payment)
    plan = RefundPlan(operation="refund", amount=1200, currency="USD")

    first = await provider.refund(snapshot, plan, RefundReason.DUPLICATE, "refund-r1-refund", "r1")
    again = await provider.refund(snapshot, plan, RefundReason.DUPLICATE, "refund-r1-refund", "r1")

    assert first == again
    assert first.status is PspRefundStatus.SUCCEEDED
    refunds = await shop.v1.refunds.list_async({"payment_intent": payment})
    assert len(refunds.data) == 1
    assert refunds.data[0].reason == "duplicate"
    assert refunds.data[0].metadata["refund_request_id"] == "r1"


async def test_refund_beyond_the_remainder_is_an_over_refund(stripe_base: str) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(shop, amount=1000, currency="usd", customer="cus_3")
    provider = StripeProvider(SANDBOX_KEY, stripe_base)
    snapshot = await provider.fetch_payment(payment)
    with pytest.raises(OverRefund, match="greater than unrefunded amount"):
        await provider.refund(
            snapshot,
            RefundPlan(operation="refund", amount=1001, currency="USD"),
            RefundReason.OTHER,
            "refund-r2-refund",
            "r2",
        )


async def test_unknown_and_malformed_payment_ids_are_not_found(stripe_base: str) -> None:
    provider = StripeProvider(SANDBOX_KEY, stripe_base)
    with pytest.raises(PaymentNotFound, match="No such payment_intent"):
        await provider.fetch_payment("pi_nothinghere")
    with pytest.raises(PaymentNotFound, match="expected a PaymentIntent"):
        await provider.fetch_payment("order-1234")


async def test_provider_trouble_maps_to_retryable_errors(
    stripe_sandbox: StripeSandbox, stripe_base: str
) -> None:
    provider = StripeProvider(SANDBOX_KEY, stripe_base)
    stripe_sandbox.faults.script("/v1/payment_intents", "GET", fail_times=1, status=500)
    with pytest.raises(ProviderUnavailable) as unavailable:
        await provider.fetch_payment("pi_anything")
    assert unavailable.value.retryable
    stripe_sandbox.faults.script("/v1/payment_intents", "GET", fail_times=1, status=429)
    with pytest.raises(ProviderRateLimited):
        await provider.fetch_payment("pi_anything")


async def test_a_bad_key_is_an_auth_failure_that_is_not_retried(stripe_base: str) -> None:
    with pytest.raises(ProviderAuthFailed) as failed:
        await StripeProvider("sk_live_wrong", stripe_base).fetch_payment("pi_anything")
    assert not failed.value.retryable


async def test_a_refund_already_made_is_found_by_its_request_id(stripe_base: str) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(shop, amount=3000, currency="usd", customer="cus_3")
    provider = StripeProvider(SANDBOX_KEY, stripe_base)
    snapshot = await provider.fetch_payment(payment)
    plan = RefundPlan(operation="refund", amount=900, currency="USD")
    assert await provider.find_refund(snapshot, "r9") is None
    made = await provider.refund(snapshot, plan, RefundReason.OTHER, "refund-r9-refund", "r9")
    assert await provider.find_refund(snapshot, "r9") == made
    assert await provider.find_refund(snapshot, "someone-else") is None


async def test_voiding_twice_with_a_forgotten_key_still_reports_the_hold_released(
    stripe_base: str,
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(
        shop, amount=800, currency="usd", customer="cus_3", capture=False
    )
    provider = StripeProvider(SANDBOX_KEY, stripe_base)
    snapshot = await provider.fetch_payment(payment)
    first = await provider.void(snapshot, "refund-v1-void")
    again = await provider.void(snapshot, "refund-v1-void-after-24h")
    assert first.status is again.status is PspRefundStatus.SUCCEEDED


async def test_a_charge_and_its_payment_intent_share_one_ledger_key(stripe_base: str) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(shop, amount=1500, currency="usd", customer="cus_3")
    provider = StripeProvider(SANDBOX_KEY, stripe_base)
    charge_id = str((await shop.v1.payment_intents.retrieve_async(payment)).latest_charge)
    by_charge = await provider.fetch_payment(charge_id)
    assert by_charge.payment_key == (await provider.fetch_payment(payment)).payment_key
    assert by_charge.payment_key == f"stripe:{payment}"
