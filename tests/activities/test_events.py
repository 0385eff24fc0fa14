"""Escalation notices: a log line, and a signed event every subscriber can verify."""

from __future__ import annotations

import hashlib
import hmac
import json

import asyncpg
import pytest
from aiohttp import web
from temporalio.testing import WorkflowEnvironment

from activities.events import SIGNATURE_HEADER, EventPublisher
from activities.notifications import ReviewNotifications
from starters.client import start_refund
from tests.support.stack import running_worker
from tests.workflows.review_support import paid
from tests.workflows.test_refund_paths import refund_request
from workflows.review_models import EscalateReview

SECRET = "whsec_test_events"
NOTICE = EscalateReview(
    request_id="rma-77",
    customer_id="cus_7",
    amount=90_000,
    currency="USD",
    score=45,
    waiting_s=14_400,
)


def verify(header: str, body: bytes) -> bool:
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(SECRET.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), parts["v1"])


async def test_escalation_sends_a_signed_review_required_event(
    subscriber: tuple[str, list[web.Request], list[bytes]], caplog: pytest.LogCaptureFixture
) -> None:
    base, requests, bodies = subscriber
    notices = ReviewNotifications(EventPublisher([f"{base}/hooks"], SECRET))
    await notices.escalate_review(NOTICE)

    assert len(requests) == 1
    assert verify(requests[0].headers[SIGNATURE_HEADER], bodies[0])
    event = json.loads(bodies[0])
    assert (event["id"], event["type"]) == ("evt_rma-77_review_escalated", "review.required")
    assert event["data"]["request_id"] == "rma-77" and event["data"]["escalated"] is True
    assert "review overdue: refund rma-77 (900.00 USD, risk 45" in caplog.text


async def test_a_subscriber_that_fails_makes_the_notice_retry(
    subscriber: tuple[str, list[web.Request], list[bytes]],
) -> None:
    base, _, _ = subscriber
    notices = ReviewNotifications(EventPublisher([f"{base}/down"], SECRET))
    with pytest.raises(Exception, match="answered 503") as failed:
        await notices.escalate_review(NOTICE)
    assert getattr(failed.value, "non_retryable", True) is False


def test_subscribers_without_a_secret_are_refused() -> None:
    with pytest.raises(ValueError, match="REFUNDS_EVENTS_SECRET"):
        EventPublisher(["http://127.0.0.1:1/hooks"], None)


async def test_refund_outcomes_reach_subscribers_signed(
    subscriber: tuple[str, list[web.Request], list[bytes]],
    time_skipping_env: WorkflowEnvironment,
    ledger_db: asyncpg.Pool,
    stripe_base: str,
) -> None:
    base, requests, bodies = subscriber
    publisher = EventPublisher([f"{base}/hooks"], SECRET)
    payment = await paid(stripe_base, 3000)
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base, publisher=publisher) as queue:
        ok = await (
            await start_refund(client, refund_request(payment, amount=1000), queue)
        ).result()
        refused = await (
            await start_refund(client, refund_request(payment, amount=0), queue)
        ).result()

    events = [json.loads(body) for body in bodies]
    assert all(
        verify(r.headers[SIGNATURE_HEADER], b) for r, b in zip(requests, bodies, strict=True)
    )
    assert [(e["type"], e["data"]["request_id"]) for e in events] == [
        ("refund.succeeded", ok.request_id),
        ("refund.rejected", refused.request_id),
    ]
    assert events[0]["data"]["amount_refunded"] == 1000
    assert events[1]["data"]["reason"] == refused.reason
