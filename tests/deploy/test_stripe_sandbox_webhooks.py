"""The Stripe sandbox's webhooks, received and verified as the refund service receives them.

Each test runs a tiny aiohttp receiver on a free port that checks every delivery with the
stripe library's own `stripe.Webhook.construct_event`, so what passes here passes the real
receiver's verification too.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import stripe
from aiohttp import web

from deploy.sandboxes.stripe_sandbox import StripeSandbox
from deploy.sandboxes.stripe_shop import create_payment, shop_client

SECRET = "whsec_sandbox_webhook_tests"
Event = dict[str, Any]


@dataclass
class Receiver:
    """Answers 2xx to every verified event unless `answers[type]` scripts other statuses;
    `hold`, when set to an Event, keeps every answer waiting until it is set."""

    url: str = ""
    events: list[Event] = field(default_factory=list)  # verified and accepted
    posts: list[tuple[bytes, str]] = field(default_factory=list)  # every attempt
    rejected: list[str] = field(default_factory=list)
    answers: dict[str, list[int]] = field(default_factory=dict)
    hold: asyncio.Event | None = None

    async def handle(self, request: web.Request) -> web.Response:
        payload, header = await request.read(), request.headers.get("Stripe-Signature", "")
        self.posts.append((payload, header))
        if self.hold is not None:
            await self.hold.wait()
        try:
            verified = stripe.Webhook.construct_event(payload.decode(), header, SECRET)
        except (stripe.SignatureVerificationError, ValueError) as problem:
            self.rejected.append(str(problem))
            return web.Response(status=400)
        scripted = self.answers.get(verified.type, [])
        status = scripted.pop(0) if scripted else 200
        if status < 300:
            self.events.append(json.loads(payload))
        return web.Response(status=status)

    async def wait_for(self, event_type: str, object_id: str | None = None) -> Event:
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            for event in self.events:
                if event["type"] == event_type and object_id in (None, self.about(event)):
                    return event
            await asyncio.sleep(0.02)
        seen = [(e["type"], self.about(e)) for e in self.events]
        raise AssertionError(f"no {event_type} for {object_id} arrived; got {seen}")

    def types_for(self, object_id: str) -> list[str]:
        return [e["type"] for e in self.events if self.about(e) == object_id]

    def amounts_refunded(self, charge_id: str) -> list[int]:
        """`amount_refunded` in each charge.refunded event for the charge, as they arrived."""
        charges = [e["data"]["object"] for e in self.events if e["type"] == "charge.refunded"]
        return [c["amount_refunded"] for c in charges if c["id"] == charge_id]

    @staticmethod
    def about(event: Event) -> str:
        return str(event["data"]["object"]["id"])


async def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5.0
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)


@dataclass
class Hooked:
    box: StripeSandbox
    shop: stripe.StripeClient
    raw: httpx.AsyncClient

    async def log(self, event_type: str | None = None, *, settled: bool = True) -> list[Event]:
        """`GET /_sandbox/webhooks`; once no delivery is pending unless `settled` is False (a
        receiver has the event a moment before the sandbox has its answer)."""
        webhooks = self.box.webhooks
        if settled:
            await until(lambda: all(d.status != "pending" for d in webhooks.deliveries))
        params = {"type": event_type} if event_type else {}
        answer = await self.raw.get("/_sandbox/webhooks", params=params)
        assert answer.status_code == 200
        return list(answer.json()["data"])


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """The receiver on a free port, stopped even when the test fails."""
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/webhooks/stripe", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        rec.url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/stripe"
        yield rec
    finally:
        if rec.hold is not None:
            rec.hold.set()
        await runner.cleanup()
    assert rec.rejected == []  # every delivery carried a valid Stripe signature


@asynccontextmanager
async def running(
    receiver: Receiver | None, http_client: stripe.HTTPXClient, **options: Any
) -> AsyncIterator[Hooked]:
    """A sandbox sending to `receiver` (none: no webhooks at all), stopped even on failure."""
    if receiver is not None:
        options.update(webhook_url=receiver.url, webhook_secret=SECRET)
    box = StripeSandbox(**options)
    await box.start("127.0.0.1", 0)
    try:
        headers = {"Authorization": "Bearer sk_test_webhooks"}
        async with httpx.AsyncClient(base_url=box.base_url, headers=headers) as raw:
            yield Hooked(box, shop_client(box.base_url, http_client=http_client), raw)
    finally:
        await box.stop()


@pytest.fixture
async def hooked(receiver: Receiver, http_client: stripe.HTTPXClient) -> AsyncIterator[Hooked]:
    async with running(receiver, http_client, pending_refund_seconds=30) as sandbox:
        yield sandbox


async def pay(shop: stripe.StripeClient, method: str = "pm_card_visa") -> tuple[str, str]:
    """A captured 10.00 USD payment: (payment intent id, charge id)."""
    intent_id = await create_payment(
        shop, amount=1000, currency="usd", customer="cus_hooks", payment_method=method
    )
    intent = await shop.v1.payment_intents.retrieve_async(intent_id)
    return intent_id, str(intent.latest_charge)


async def test_a_refund_is_announced_signed_and_naming_its_request(
    hooked: Hooked, receiver: Receiver
) -> None:
    intent_id, charge_id = await pay(hooked.shop)
    refund = await hooked.shop.v1.refunds.create_async(
        {"payment_intent": intent_id, "amount": 300, "metadata": {"refund_request_id": "rr-1"}},
        {"idempotency_key": "hooks-key-1"},
    )
    created = await receiver.wait_for("refund.created", refund.id)
    assert created["id"].startswith("evt_") and created["object"] == "event"
    assert (created["livemode"], created["pending_webhooks"]) == (False, 1)
    assert created["api_version"] == stripe.api_version
    assert isinstance(created["created"], int)
    assert refund.last_response is not None
    assert created["request"] == {
        "id": refund.last_response.request_id,
        "idempotency_key": "hooks-key-1",
    }
    as_fetched = (await hooked.raw.get(f"/v1/refunds/{refund.id}")).json()
    assert created["data"] == {"object": as_fetched}

    refunded = await receiver.wait_for("charge.refunded", charge_id)
    charge = refunded["data"]["object"]
    assert (charge["object"], charge["amount_refunded"], charge["refunded"]) == (
        "charge",
        300,
        False,
    )
    assert refunded["data"]["previous_attributes"] == {"amount_refunded": 0}

    # The stripe library refuses the same bytes under another secret, or other bytes.
    payload, header = receiver.posts[0]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload.decode(), header, "whsec_someone_else")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload.decode() + " ", header, SECRET)

    log = await hooked.log()
    assert sorted(entry["type"] for entry in log) == ["charge.refunded", "refund.created"]
    assert {(entry["status"], entry["attempts"], entry["last_status"]) for entry in log} == {
        ("delivered", 1, 200)
    }
    assert [entry["object_id"] for entry in await hooked.log("refund.created")] == [refund.id]


async def test_the_settle_endpoint_announces_success_and_failure(
    hooked: Hooked, receiver: Receiver
) -> None:
    intent_id, charge_id = await pay(hooked.shop, "pm_card_pendingRefund")
    good = await hooked.shop.v1.refunds.create_async({"payment_intent": intent_id, "amount": 100})
    bad = await hooked.shop.v1.refunds.create_async({"payment_intent": intent_id, "amount": 200})
    pending = await receiver.wait_for("refund.created", good.id)
    assert pending["data"]["object"]["status"] == "pending"

    settled = await hooked.raw.post(
        f"/_sandbox/refunds/{good.id}/settle", json={"status": "succeeded"}
    )
    assert settled.status_code == 200
    updated = await receiver.wait_for("refund.updated", good.id)
    assert updated["data"]["object"]["status"] == "succeeded"
    assert updated["data"]["previous_attributes"] == {
        "status": "pending",
        "pending_reason": "processing",
    }
    assert updated["request"] == {"id": None, "idempotency_key": None}  # the network did it

    await hooked.raw.post(
        f"/_sandbox/refunds/{bad.id}/settle", json={"status": "failed", "failure_reason": "lost"}
    )
    failed = await receiver.wait_for("refund.updated", bad.id)
    assert (failed["data"]["object"]["status"], failed["data"]["object"]["failure_reason"]) == (
        "failed",
        "lost",
    )
    await receiver.wait_for("refund.failed", bad.id)
    assert receiver.types_for(good.id) == ["refund.created", "refund.updated"]
    assert receiver.types_for(bad.id) == ["refund.created", "refund.updated", "refund.failed"]
    await until(lambda: len(receiver.types_for(charge_id)) == 3)
    assert receiver.amounts_refunded(charge_id) == [100, 300, 100]  # the failed 200 came back


async def test_a_refund_fail_card_fails_on_its_own_and_says_so(
    hooked: Hooked, receiver: Receiver
) -> None:
    intent_id, charge_id = await pay(hooked.shop, "pm_card_refundFail")
    refund = await hooked.shop.v1.refunds.create_async({"payment_intent": intent_id, "amount": 400})
    assert refund.status == "pending"
    failed = await receiver.wait_for("refund.failed", refund.id)  # nobody asked about it
    assert failed["data"]["object"]["failure_reason"] == "expired_or_canceled_card"
    assert receiver.types_for(refund.id) == ["refund.created", "refund.updated", "refund.failed"]
    updated = await receiver.wait_for("refund.updated", refund.id)
    assert updated["data"]["object"]["status"] == "failed"
    assert hooked.box.state.refunds[refund.id].status == "failed"  # settled without a request
    await until(lambda: len(receiver.types_for(charge_id)) == 2)
    assert receiver.amounts_refunded(charge_id) == [400, 0]  # refunded, then it came back
    assert (await hooked.shop.v1.refunds.retrieve_async(refund.id)).status == "failed"


async def test_a_pending_refund_nobody_polls_settles_on_time(
    receiver: Receiver, http_client: stripe.HTTPXClient
) -> None:
    async with running(receiver, http_client, pending_refund_seconds=0.3) as sandbox:
        intent_id, _ = await pay(sandbox.shop, "pm_card_pendingRefund")
        started = time.monotonic()
        refund = await sandbox.shop.v1.refunds.create_async({"payment_intent": intent_id})
        updated = await receiver.wait_for("refund.updated", refund.id)
        assert time.monotonic() - started >= 0.3
        assert updated["data"]["object"]["status"] == "succeeded"
        assert sandbox.box.state.refunds[refund.id].status == "succeeded"
        fetched = await sandbox.shop.v1.refunds.retrieve_async(refund.id)
        assert fetched.status == "succeeded"
        assert receiver.types_for(refund.id) == ["refund.created", "refund.updated"]


async def test_a_failing_receiver_gets_the_event_on_the_third_try(
    hooked: Hooked, receiver: Receiver
) -> None:
    receiver.answers["refund.created"] = [500, 500]
    intent_id, _ = await pay(hooked.shop)
    refund = await hooked.shop.v1.refunds.create_async({"payment_intent": intent_id})
    event = await receiver.wait_for("refund.created", refund.id)
    tries = [p for p, _ in receiver.posts if json.loads(p)["id"] == event["id"]]
    assert len(tries) == 3 and len(set(tries)) == 1  # the same event each time, freshly signed
    [entry] = await hooked.log("refund.created")
    assert (entry["status"], entry["attempts"], entry["last_status"]) == ("delivered", 3, 200)
    assert entry["id"] == event["id"] and entry["event"] == event


async def test_a_receiver_that_never_accepts_is_given_up_on_and_order_is_kept(
    hooked: Hooked, receiver: Receiver
) -> None:
    hooked.box.webhooks.first_backoff = 0.01
    receiver.answers["refund.created"] = [503] * 5
    intent_id, _ = await pay(hooked.shop, "pm_card_pendingRefund")
    refund = await hooked.shop.v1.refunds.create_async({"payment_intent": intent_id})
    await hooked.raw.post(f"/_sandbox/refunds/{refund.id}/settle", json={"status": "succeeded"})
    await receiver.wait_for("refund.updated", refund.id)  # sent after the first was given up
    [entry] = await hooked.log("refund.created")
    assert (entry["status"], entry["attempts"], entry["last_status"]) == ("failed", 5, 503)
    assert entry["last_error"] == "answered HTTP 503"


async def test_an_unreachable_receiver_is_retried_then_given_up(
    http_client: stripe.HTTPXClient,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free once closed: nobody listens there
    closed = Receiver(url=f"http://127.0.0.1:{port}/webhooks/stripe")
    async with running(closed, http_client) as sandbox:
        sandbox.box.webhooks.first_backoff = 0.01
        intent_id, _ = await pay(sandbox.shop)
        await sandbox.shop.v1.refunds.create_async({"payment_intent": intent_id})
        log = await sandbox.log()
        assert len(log) == 2
        assert {(e["status"], e["attempts"], e["last_status"]) for e in log} == {
            ("failed", 5, None)
        }
        assert all("ConnectError" in e["last_error"] for e in log)


async def test_the_api_never_waits_for_the_receiver_and_stop_does_not_hang(
    receiver: Receiver, http_client: stripe.HTTPXClient
) -> None:
    receiver.hold = asyncio.Event()  # the receiver answers nothing until told
    async with running(receiver, http_client) as sandbox:
        intent_id, _ = await pay(sandbox.shop)
        started = time.monotonic()
        await sandbox.shop.v1.refunds.create_async({"payment_intent": intent_id})
        assert time.monotonic() - started < 0.5
        await until(lambda: len(receiver.posts) == 2)  # both deliveries under way, stuck
        assert {e["status"] for e in await sandbox.log(settled=False)} == {"pending"}
        started = time.monotonic()
        await sandbox.box.stop()
        assert time.monotonic() - started < 3
        stopped = list(sandbox.box.webhooks.deliveries)
        assert {(d.status, d.last_error) for d in stopped} == {("failed", "the sandbox stopped")}


async def test_faults_touch_the_api_never_the_webhooks(hooked: Hooked, receiver: Receiver) -> None:
    intent_id, _ = await pay(hooked.shop, "pm_card_pendingRefund")
    hooked.box.faults.script("/v1/refunds", "POST", drop_times=1)
    with pytest.raises(stripe.APIConnectionError):
        await hooked.shop.v1.refunds.create_async({"payment_intent": intent_id})
    [refund] = hooked.box.state.refunds.values()  # made, answer lost: still announced
    await receiver.wait_for("refund.created", refund.id)
    hooked.box.faults.configure("error_rate=1")
    await hooked.raw.post(f"/_sandbox/refunds/{refund.id}/settle", json={"status": "succeeded"})
    await receiver.wait_for("refund.updated", refund.id)
    hooked.box.faults.clear()


async def test_a_disputed_payment_is_announced(hooked: Hooked, receiver: Receiver) -> None:
    intent_id, charge_id = await pay(hooked.shop, "pm_card_createDispute")
    charge = await hooked.shop.v1.charges.retrieve_async(charge_id)
    dispute_id = str(charge["dispute"])
    event = await receiver.wait_for("charge.dispute.created", dispute_id)
    dispute = event["data"]["object"]
    assert dispute_id.startswith("dp_") and dispute["object"] == "dispute"
    assert (dispute["amount"], dispute["currency"], dispute["charge"]) == (1000, "usd", charge_id)
    assert (dispute["payment_intent"], dispute["reason"], dispute["status"]) == (
        intent_id,
        "fraudulent",
        "needs_response",
    )
    assert event["request"] == {"id": None, "idempotency_key": None}


async def test_an_early_fraud_warning_is_announced(hooked: Hooked, receiver: Receiver) -> None:
    intent_id, charge_id = await pay(hooked.shop)
    answer = await hooked.raw.post("/_sandbox/early_fraud_warnings", json={"charge": charge_id})
    assert answer.status_code == 200
    warning = answer.json()
    assert warning["id"].startswith("issfr_") and warning["object"] == "radar.early_fraud_warning"
    assert (warning["actionable"], warning["charge"], warning["payment_intent"]) == (
        True,
        charge_id,
        intent_id,
    )
    assert (warning["fraud_type"], warning["livemode"]) == ("misc", False)
    event = await receiver.wait_for("radar.early_fraud_warning.created", warning["id"])
    assert event["data"] == {"object": warning}

    await hooked.shop.v1.refunds.create_async({"payment_intent": intent_id})
    refunded = await hooked.raw.post("/_sandbox/early_fraud_warnings", json={"charge": charge_id})
    assert refunded.json()["actionable"] is False  # nothing left to refund: Stripe says so too
    unknown = await hooked.raw.post("/_sandbox/early_fraud_warnings", json={"charge": "ch_nope"})
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "resource_missing")
    for bad in ({}, {"charge": charge_id, "fraud_type": "aliens"}, ["ch_x"]):
        answer = await hooked.raw.post("/_sandbox/early_fraud_warnings", json=bad)
        assert answer.status_code == 400
    garbage = await hooked.raw.post("/_sandbox/early_fraud_warnings", content=b"{nope")
    assert garbage.status_code == 400


async def test_without_a_webhook_url_nothing_is_sent(
    receiver: Receiver, http_client: stripe.HTTPXClient
) -> None:
    async with running(None, http_client, pending_refund_seconds=0.1) as sandbox:
        intent_id, charge_id = await pay(sandbox.shop, "pm_card_pendingRefund")
        await sandbox.shop.v1.refunds.create_async({"payment_intent": intent_id})
        await pay(sandbox.shop, "pm_card_createDispute")
        answer = await sandbox.raw.post(
            "/_sandbox/early_fraud_warnings", json={"charge": charge_id}
        )
        assert answer.status_code == 200
        await asyncio.sleep(0.7)  # past the settlement and a settle tick
        assert await sandbox.log() == []
        assert (await sandbox.raw.get("/_sandbox/webhooks")).json()["webhook_url"] is None
    assert receiver.posts == []


def test_a_webhook_url_needs_a_secret_to_sign_with() -> None:
    with pytest.raises(ValueError, match="webhook_secret"):
        StripeSandbox(webhook_url="http://127.0.0.1:8000/webhooks/stripe")
    with pytest.raises(ValueError, match="http"):
        StripeSandbox(webhook_url="ftp://example.test/hooks", webhook_secret=SECRET)
