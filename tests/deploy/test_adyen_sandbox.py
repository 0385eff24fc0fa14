"""The Adyen sandbox over HTTP and through the Adyen library: answers, idempotency, errors,
signed notifications delivered with basic auth, the late-failure card, and faults."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from Adyen.exceptions import (  # type: ignore[import-untyped]
    AdyenAPIAuthenticationError,
    AdyenAPIUnprocessableEntity,
)
from aiohttp import web

from activities.adyen_notifications import verify_and_parse
from deploy.sandboxes.adyen_sandbox import AdyenSandbox
from deploy.sandboxes.adyen_shop import SANDBOX_API_KEY, adyen_checkout, shop_adyen
from deploy.sandboxes.adyen_state import LATE_FAILURE_CARD, REFUND_FAILS_CARD

HMAC_KEY = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
AUTH = ("adyen-notifier", "s3cret")


class Receiver:
    """A stand-in webhook endpoint that keeps what it verified (with the service's own check)."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.refuse_next = 0

    async def handle(self, request: web.Request) -> web.Response:
        if self.refuse_next:
            self.refuse_next -= 1
            return web.Response(status=500, text="busy")
        body = await request.read()
        items = verify_and_parse(body, request.headers.get("Authorization"), [HMAC_KEY], AUTH)
        self.items.extend(items)
        return web.Response(text="[accepted]")

    def codes(self, psp: str) -> list[tuple[str, bool]]:
        return [(i.event_code, i.success) for i in self.items if i.payment_reference == psp]


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    keeper = Receiver()
    app = web.Application()
    app.router.add_post("/webhooks/adyen", keeper.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield keeper, f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/adyen"
    finally:
        await runner.cleanup()


@pytest.fixture
async def adyen(receiver: tuple[Receiver, str]) -> AsyncIterator[AdyenSandbox]:
    box = AdyenSandbox(
        settle_after_seconds=0.05,
        late_failure_seconds=0.3,
        webhook_url=receiver[1],
        hmac_key=HMAC_KEY,
        webhook_auth=AUTH,
    )
    await box.start("127.0.0.1", 0)
    box.notifier.first_backoff = 0.05
    try:
        yield box
    finally:
        await box.stop()


@pytest.fixture
async def raw(adyen: AdyenSandbox) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"X-API-Key": SANDBOX_API_KEY}
    async with httpx.AsyncClient(base_url=adyen.base_url, headers=headers) as client:
        yield client


async def until(check: Callable[[], Awaitable[bool] | bool], seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while True:
            result = check()
            if await result if not isinstance(result, bool) else result:
                return
            await asyncio.sleep(0.02)


def refund_body(value: int, reference: str = "r1", currency: str = "EUR") -> dict[str, Any]:
    return {
        "merchantAccount": "RefundsSandboxECOM",
        "amount": {"value": value, "currency": currency},
        "reference": reference,
    }


async def test_a_refund_is_received_then_notified_signed_with_basic_auth(
    adyen: AdyenSandbox, raw: httpx.AsyncClient, receiver: tuple[Receiver, str]
) -> None:
    keeper, _ = receiver
    psp = await adyen_checkout(adyen.base_url, 2500, "eur", shopper_reference="shopper-9")
    answer = await raw.post(f"/payments/{psp}/refunds", json=refund_body(1000))
    assert answer.status_code == 201
    body = answer.json()
    assert body["status"] == "received"
    assert body["paymentPspReference"] == psp and len(body["pspReference"]) == 16
    assert body["amount"] == {"value": 1000, "currency": "EUR"}

    await until(lambda: ("REFUND", True) in keeper.codes(psp))
    assert keeper.codes(psp) == [("AUTHORISATION", True), ("CAPTURE", True), ("REFUND", True)]
    authorisation = keeper.items[0]
    assert authorisation.shopper_reference == "shopper-9"
    refund = keeper.items[-1]
    assert (refund.psp_reference, refund.merchant_reference, refund.value) == (
        body["pspReference"],
        "r1",
        1000,
    )
    control = adyen.base_url.rsplit("/", 1)[0]
    log = (await raw.get(f"{control}/_sandbox/notifications")).json()["data"]
    assert {entry["status"] for entry in log} == {"delivered"}


async def test_same_idempotency_key_answers_the_first_refund_again(
    adyen: AdyenSandbox, raw: httpx.AsyncClient
) -> None:
    psp = await adyen_checkout(adyen.base_url, 5000, "EUR")
    key = {"Idempotency-Key": "refund-r7-refund"}
    first = await raw.post(f"/payments/{psp}/refunds", json=refund_body(1200), headers=key)
    again = await raw.post(f"/payments/{psp}/refunds", json=refund_body(1200), headers=key)
    # Adyen compares keys, not bodies: another body under the same key is not carried out.
    other = await raw.post(f"/payments/{psp}/refunds", json=refund_body(99), headers=key)
    assert first.json() == again.json() == other.json()
    assert again.headers["Idempotency-Key"] == "refund-r7-refund"
    assert len(adyen.refunds_of(psp)) == 1

    too_long = {"Idempotency-Key": "k" * 65}
    refused = await raw.post(f"/payments/{psp}/refunds", json=refund_body(1), headers=too_long)
    assert refused.status_code == 422


async def test_errors_have_adyens_shape_through_the_library(adyen: AdyenSandbox) -> None:
    library = shop_adyen(adyen.base_url)
    modifications = library.checkout.modifications_api
    with pytest.raises(AdyenAPIUnprocessableEntity) as unknown:
        await asyncio.to_thread(
            modifications.refund_captured_payment, refund_body(100), "NOSUCHPAYMENT000"
        )
    assert unknown.value.error_code == "167"
    psp = await adyen_checkout(adyen.base_url, 1000, "EUR")
    with pytest.raises(AdyenAPIUnprocessableEntity) as bad_amount:
        await asyncio.to_thread(modifications.refund_captured_payment, refund_body(-5), psp)
    assert bad_amount.value.error_code == "137"

    refused = shop_adyen(adyen.base_url, api_key="wrong")
    with pytest.raises(AdyenAPIAuthenticationError) as auth:
        await asyncio.to_thread(
            refused.checkout.modifications_api.refund_captured_payment, refund_body(100), psp
        )
    assert auth.value.status_code == 401
    assert json.loads(auth.value.raw_response)["errorType"] == "security"


async def test_over_refund_and_the_refund_failing_card_fail_by_notification(
    adyen: AdyenSandbox, raw: httpx.AsyncClient, receiver: tuple[Receiver, str]
) -> None:
    keeper, _ = receiver
    psp = await adyen_checkout(adyen.base_url, 1000, "EUR")
    await until(lambda: ("CAPTURE", True) in keeper.codes(psp))
    over = await raw.post(f"/payments/{psp}/refunds", json=refund_body(1001))
    assert over.status_code == 201  # Adyen accepts it, then refuses it asynchronously
    await until(lambda: ("REFUND", False) in keeper.codes(psp))
    assert keeper.items[-1].reason == "Insufficient balance on payment"

    failing = await adyen_checkout(adyen.base_url, 1000, "EUR", card=REFUND_FAILS_CARD)
    await until(lambda: ("CAPTURE", True) in keeper.codes(failing))
    await raw.post(f"/payments/{failing}/refunds", json=refund_body(500))
    await until(lambda: ("REFUND", False) in keeper.codes(failing))


async def test_late_failure_card_refund_succeeds_then_fails(
    adyen: AdyenSandbox, raw: httpx.AsyncClient, receiver: tuple[Receiver, str]
) -> None:
    keeper, _ = receiver
    psp = await adyen_checkout(adyen.base_url, 3000, "EUR", card=LATE_FAILURE_CARD)
    await until(lambda: ("CAPTURE", True) in keeper.codes(psp))
    await raw.post(f"/payments/{psp}/refunds", json=refund_body(3000, "late-1"))
    await until(lambda: ("REFUND_FAILED", True) in keeper.codes(psp))
    assert keeper.codes(psp)[-2:] == [("REFUND", True), ("REFUND_FAILED", True)]
    assert adyen.state.payments[psp].refunded == 0


async def test_cancel_of_an_authorised_payment_and_a_chargeback(
    adyen: AdyenSandbox, raw: httpx.AsyncClient, receiver: tuple[Receiver, str]
) -> None:
    keeper, _ = receiver
    psp = await adyen_checkout(adyen.base_url, 800, "USD", capture=False)
    cancel = await raw.post(
        f"/payments/{psp}/cancels",
        json={"merchantAccount": "RefundsSandboxECOM", "reference": "void-1"},
    )
    assert cancel.status_code == 201 and "amount" not in cancel.json()
    await until(lambda: ("CANCELLATION", True) in keeper.codes(psp))
    assert ("CAPTURE", True) not in keeper.codes(psp)

    control = adyen.base_url.rsplit("/", 1)[0]
    disputed = await raw.post(f"{control}/_sandbox/chargebacks", json={"pspReference": psp})
    assert disputed.json()["eventCode"] == "NOTIFICATION_OF_CHARGEBACK"
    await until(lambda: ("NOTIFICATION_OF_CHARGEBACK", True) in keeper.codes(psp))


async def test_notifications_are_redelivered_until_accepted(
    adyen: AdyenSandbox, receiver: tuple[Receiver, str]
) -> None:
    keeper, _ = receiver
    keeper.refuse_next = 2
    psp = await adyen_checkout(adyen.base_url, 100, "EUR")
    await until(lambda: ("AUTHORISATION", True) in keeper.codes(psp))
    first = adyen.notifier.deliveries[0]
    assert (first.status, first.attempts) == ("delivered", 3)


async def test_a_dropped_refund_answer_still_made_the_refund_and_the_retry_replays_it(
    adyen: AdyenSandbox, raw: httpx.AsyncClient
) -> None:
    psp = await adyen_checkout(adyen.base_url, 4000, "EUR")
    adyen.faults.script(f"/v72/payments/{psp}/refunds", drop_times=1)
    key = {"Idempotency-Key": "refund-drop-refund"}
    with pytest.raises(httpx.RemoteProtocolError):
        await raw.post(f"/payments/{psp}/refunds", json=refund_body(700), headers=key)
    again = await raw.post(f"/payments/{psp}/refunds", json=refund_body(700), headers=key)
    assert again.status_code == 201
    assert [r.psp_reference for r in adyen.refunds_of(psp)] == [again.json()["pspReference"]]

    adyen.faults.script("/v72/payments", fail_times=1, status=429)
    busy = await raw.post(f"/payments/{psp}/refunds", json=refund_body(1))
    assert busy.status_code == 429 and busy.json()["status"] == 429


async def test_state_file_keeps_payments_across_a_restart(tmp_path: Any) -> None:
    state = tmp_path / "adyen.json"
    box = AdyenSandbox(state_file=state, settle_after_seconds=0.01)
    base = await box.start("127.0.0.1", 0)
    try:
        psp = await adyen_checkout(base, 100, "EUR")
        await until(lambda: box.state.payments[psp].captured == 100)
    finally:
        await box.stop()
    again = AdyenSandbox(state_file=state)
    await again.start("127.0.0.1", 0)
    try:
        assert again.state.payments[psp].captured == 100
    finally:
        await again.stop()
