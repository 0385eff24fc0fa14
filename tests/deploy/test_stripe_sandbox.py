"""The Stripe sandbox, driven through the real `stripe` SDK as the refund service drives Stripe."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import stripe

from deploy.sandboxes.stripe_sandbox import StripeSandbox
from deploy.sandboxes.stripe_shop import capture_payment, create_payment, shop_client


async def pay(
    shop: stripe.StripeClient,
    amount: int = 1000,
    *,
    capture: bool = True,
    method: str = "pm_card_visa",
) -> str:
    return await create_payment(
        shop,
        amount=amount,
        currency="usd",
        customer="cus_test",
        capture=capture,
        payment_method=method,
    )


async def charge_of(shop: stripe.StripeClient, intent_id: str) -> stripe.Charge:
    intent = await shop.v1.payment_intents.retrieve_async(intent_id, {"expand": ["latest_charge"]})
    assert isinstance(intent.latest_charge, stripe.Charge)
    return intent.latest_charge


async def test_a_confirmed_payment_is_captured_with_stripes_fields(
    shop: stripe.StripeClient,
) -> None:
    intent_id = await create_payment(
        shop, amount=4200, currency="EUR", customer="cus_1", metadata={"order": "A-17"}
    )
    intent = await shop.v1.payment_intents.retrieve_async(intent_id)
    assert intent_id.startswith("pi_") and intent.object == "payment_intent"
    assert (intent.status, intent.amount, intent.amount_received) == ("succeeded", 4200, 4200)
    assert (intent.amount_capturable, intent.currency, intent.livemode) == (0, "eur", False)
    assert intent.customer == "cus_1" and intent.metadata.to_dict() == {"order": "A-17"}
    assert isinstance(intent.latest_charge, str) and intent.latest_charge.startswith("ch_")

    charge = await shop.v1.charges.retrieve_async(intent.latest_charge)
    assert charge.object == "charge" and charge.payment_intent == intent_id
    assert (charge.amount, charge.amount_captured, charge.amount_refunded) == (4200, 4200, 0)
    assert (charge.captured, charge.paid, charge.refunded, charge.status) == (
        True,
        True,
        False,
        "succeeded",
    )
    assert (charge.disputed, charge["dispute"], charge.customer) == (False, None, "cus_1")
    expanded = await charge_of(shop, intent_id)
    assert expanded.id == charge.id


async def test_manual_capture_waits_and_cancel_releases_it(shop: stripe.StripeClient) -> None:
    intent_id = await pay(shop, 2500, capture=False)
    intent = await shop.v1.payment_intents.retrieve_async(intent_id)
    assert (intent.status, intent.capture_method) == ("requires_capture", "manual")
    assert (intent.amount_capturable, intent.amount_received) == (2500, 0)
    assert (await charge_of(shop, intent_id)).captured is False

    canceled = await shop.v1.payment_intents.cancel_async(
        intent_id, {"cancellation_reason": "requested_by_customer"}
    )
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "requested_by_customer")
    assert canceled.canceled_at is not None and canceled.amount_capturable == 0
    charge = await charge_of(shop, intent_id)
    assert (charge.amount_refunded, charge.refunded, charge.amount_captured) == (2500, True, 0)


async def test_a_partial_capture_releases_the_rest(shop: stripe.StripeClient) -> None:
    intent_id = await pay(shop, 1000, capture=False)
    await capture_payment(shop, intent_id, amount=600)
    intent = await shop.v1.payment_intents.retrieve_async(intent_id)
    assert (intent.status, intent.amount_received) == ("succeeded", 600)
    charge = await charge_of(shop, intent_id)
    assert (charge.amount, charge.amount_captured, charge.amount_refunded) == (1000, 600, 400)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await shop.v1.refunds.create_async({"payment_intent": intent_id, "amount": 601})
    assert refused.value.code == "amount_too_large"
    refund = await shop.v1.refunds.create_async({"payment_intent": intent_id})
    assert refund.amount == 600


async def test_refunds_full_partial_and_the_remainder_refused(shop: stripe.StripeClient) -> None:
    intent_id = await pay(shop, 1000)
    first = await shop.v1.refunds.create_async(
        {
            "payment_intent": intent_id,
            "amount": 300,
            "reason": "requested_by_customer",
            "metadata": {"refund_request_id": "rr-1"},
        }
    )
    assert first.id.startswith("re_") and first.object == "refund"
    assert (first.status, first.amount, first.currency, first.reason) == (
        "succeeded",
        300,
        "usd",
        "requested_by_customer",
    )
    assert first.payment_intent == intent_id and first.metadata is not None
    assert first.metadata.to_dict() == {"refund_request_id": "rr-1"}
    assert (await charge_of(shop, intent_id)).amount_refunded == 300

    with pytest.raises(stripe.InvalidRequestError) as too_much:
        await shop.v1.refunds.create_async({"payment_intent": intent_id, "amount": 800})
    assert (too_much.value.code, too_much.value.http_status, too_much.value.param) == (
        "amount_too_large",
        400,
        "amount",
    )
    assert too_much.value.user_message == (
        "Refund amount ($8.00) is greater than unrefunded amount on charge ($7.00)"
    )

    # No amount: all that is left.
    rest = await shop.v1.refunds.create_async({"charge": str(first.charge)})
    assert rest.amount == 700
    charge = await charge_of(shop, intent_id)
    assert (charge.amount_refunded, charge.refunded) == (1000, True)
    with pytest.raises(stripe.InvalidRequestError) as again:
        await shop.v1.refunds.create_async({"payment_intent": intent_id})
    assert again.value.code == "charge_already_refunded"

    listed = await shop.v1.refunds.list_async({"payment_intent": intent_id})
    assert [r.id for r in listed.data] == [rest.id, first.id]  # newest first, as Stripe lists
    assert (listed.to_dict()["object"], listed.has_more, listed.url) == (
        "list",
        False,
        "/v1/refunds",
    )
    fetched = await shop.v1.refunds.retrieve_async(first.id)
    assert fetched.to_dict() == first.to_dict()


async def test_refusals_stripe_makes(shop: stripe.StripeClient) -> None:
    held = await pay(shop, 500, capture=False)
    with pytest.raises(stripe.InvalidRequestError) as uncaptured:
        await shop.v1.refunds.create_async({"payment_intent": held})
    assert "cancel the PaymentIntent" in (uncaptured.value.user_message or "")

    paid = await pay(shop, 500)
    with pytest.raises(stripe.InvalidRequestError) as cancel:
        await shop.v1.payment_intents.cancel_async(paid)
    assert cancel.value.code == "payment_intent_unexpected_state"

    with pytest.raises(stripe.InvalidRequestError) as zero:
        await shop.v1.refunds.create_async({"payment_intent": paid, "amount": 0})
    assert (zero.value.code, zero.value.param) == ("parameter_invalid_integer", "amount")
    with pytest.raises(stripe.InvalidRequestError) as no_amount:
        await pay(shop, 0)
    assert no_amount.value.code == "parameter_invalid_integer"
    with pytest.raises(stripe.InvalidRequestError) as currency:
        await create_payment(shop, amount=100, currency="xyz", customer="cus_1")
    assert currency.value.param == "currency"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        await shop.v1.payment_intents.retrieve_async("pi_doesnotexist")
    assert (unknown.value.http_status, unknown.value.code) == (404, "resource_missing")
    assert unknown.value.user_message == "No such payment_intent: 'pi_doesnotexist'"
    with pytest.raises(stripe.InvalidRequestError) as unknown_refund:
        await shop.v1.refunds.create_async({"charge": "ch_nope"})
    assert (unknown_refund.value.http_status, unknown_refund.value.param) == (404, "charge")


async def test_a_declined_card_is_a_card_error(shop: stripe.StripeClient) -> None:
    with pytest.raises(stripe.CardError) as declined:
        await pay(shop, method="pm_card_chargeDeclined")
    error = declined.value
    assert (error.http_status, error.code) == (402, "card_declined")
    assert error.error is not None and error.error.decline_code == "generic_decline"
    intent = error.error.payment_intent
    assert intent is not None and intent.status == "requires_payment_method"
    charge = await shop.v1.charges.retrieve_async(str(error.error.charge))
    assert (charge.status, charge.paid, charge.failure_code) == ("failed", False, "card_declined")


async def test_a_disputed_payment_cannot_be_refunded(shop: stripe.StripeClient) -> None:
    intent_id = await pay(shop, method="pm_card_createDispute")
    charge = await charge_of(shop, intent_id)
    assert charge.disputed is True and str(charge["dispute"]).startswith("dp_")
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await shop.v1.refunds.create_async({"payment_intent": intent_id})
    assert refused.value.code == "charge_disputed"


async def test_refund_fail_card_fails_after_being_pending(shop: stripe.StripeClient) -> None:
    intent_id = await pay(shop, method="pm_card_refundFail")
    refund = await shop.v1.refunds.create_async({"payment_intent": intent_id, "amount": 400})
    assert (refund.status, refund.failure_reason) == ("pending", None)
    later = await shop.v1.refunds.retrieve_async(refund.id)
    assert (later.status, later.failure_reason) == ("failed", "expired_or_canceled_card")
    assert (await charge_of(shop, intent_id)).amount_refunded == 0  # the money came back


async def test_pending_refund_card_settles_later_or_when_told(
    shop: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    intent_id = await pay(shop, method="pm_card_pendingRefund")
    slow = await shop.v1.refunds.create_async({"payment_intent": intent_id, "amount": 100})
    told = await shop.v1.refunds.create_async({"payment_intent": intent_id, "amount": 200})
    assert (slow.status, told.status) == ("pending", "pending")
    settled = await raw.post(f"/_sandbox/refunds/{told.id}/settle", json={"status": "succeeded"})
    assert settled.status_code == 200 and settled.json()["status"] == "succeeded"
    assert (await shop.v1.refunds.retrieve_async(slow.id)).status == "pending"
    await asyncio.sleep(0.35)  # the fixture's pending_refund_seconds
    assert (await shop.v1.refunds.retrieve_async(slow.id)).status == "succeeded"


async def test_idempotent_replay_is_byte_for_byte(
    shop: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    intent_id = await pay(shop)
    form = {"payment_intent": intent_id, "amount": "100"}
    headers = {"Idempotency-Key": "refund-rr-9"}
    first = await raw.post("/v1/refunds", data=form, headers=headers)
    again = await raw.post("/v1/refunds", data=form, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Request-Id"] == first.headers["Request-Id"]

    other = await raw.post("/v1/refunds", data={**form, "amount": "200"}, headers=headers)
    assert other.status_code == 400 and other.json()["error"]["type"] == "idempotency_error"
    elsewhere = await raw.post(f"/v1/payment_intents/{intent_id}/cancel", headers=headers)
    assert elsewhere.json()["error"]["type"] == "idempotency_error"

    options: stripe.RequestOptions = {"idempotency_key": "sdk-key-1"}
    one = await shop.v1.refunds.create_async({"payment_intent": intent_id, "amount": 50}, options)
    two = await shop.v1.refunds.create_async({"payment_intent": intent_id, "amount": 50}, options)
    assert one.id == two.id
    with pytest.raises(stripe.IdempotencyError):
        await shop.v1.refunds.create_async({"payment_intent": intent_id, "amount": 51}, options)
    listed = await shop.v1.refunds.list_async({"payment_intent": intent_id})
    assert len(listed.data) == 2


async def test_keys_are_checked(
    sandbox: StripeSandbox, http_client: stripe.HTTPXClient, raw: httpx.AsyncClient
) -> None:
    live = shop_client(sandbox.base_url, "sk_live_notasandboxkey", http_client=http_client)
    with pytest.raises(stripe.AuthenticationError):
        await live.v1.refunds.list_async()
    async with httpx.AsyncClient(base_url=sandbox.base_url) as anonymous:
        answer = await anonymous.get("/v1/refunds")
    assert answer.status_code == 401
    assert "You did not provide an API key" in answer.json()["error"]["message"]
    assert (await raw.get("/v1/nothing_here")).status_code == 404


async def test_curl_style_parameters_and_basic_auth(sandbox: StripeSandbox) -> None:
    """What someone poking the sandbox with curl sends: `-u key:`, `expand[]`, `metadata[k]`."""
    form = {
        "amount": "700",
        "currency": "gbp",
        "payment_method": "pm_card_mastercard",
        "confirm": "true",
        "metadata[order]": "B-2",
        "expand[]": "latest_charge",
    }
    async with httpx.AsyncClient(base_url=sandbox.base_url, auth=("sk_test_curl", "")) as curl:
        created = (await curl.post("/v1/payment_intents", data=form)).json()
        assert created["metadata"] == {"order": "B-2"}
        assert created["latest_charge"]["object"] == "charge"
        fetched = await curl.get(
            f"/v1/payment_intents/{created['id']}", params={"expand[]": "latest_charge"}
        )
        assert fetched.json()["latest_charge"]["amount_captured"] == 700
        unknown = await curl.post("/v1/refunds", data={"payment_intent": created["id"], "x": "1"})
        assert unknown.json()["error"]["code"] == "parameter_unknown"
