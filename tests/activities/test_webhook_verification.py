"""Webhook signatures: Stripe's scheme (checked with the stripe library) and our own."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
import stripe

from activities.events import sign, verify_signature
from activities.stripe_provider import stripe_webhook_actions
from activities.webhook_actions import (
    EarlyFraudWarning,
    IgnoredEvent,
    RefundUpdateAction,
    WebhookMalformed,
    WebhookRejected,
)
from workflows.models import PspRefundStatus

SECRET, OLD_SECRET = "whsec_current", "whsec_previous"


def stripe_signed(payload: bytes, secret: str = SECRET, at: int | None = None) -> str:
    stamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256)
    return f"t={stamp},v1={digest.hexdigest()}"


def refund_event(status: str = "succeeded", **metadata: str) -> bytes:
    return json.dumps(
        {
            "id": "evt_1",
            "object": "event",
            "type": "refund.updated",
            "data": {
                "object": {
                    "id": "re_1",
                    "object": "refund",
                    "amount": 1500,
                    "currency": "usd",
                    "status": status,
                    "metadata": metadata or {"refund_request_id": "rma-1"},
                    "failure_reason": None if status != "failed" else "expired_or_canceled_card",
                }
            },
        }
    ).encode()


def test_our_signature_is_stripes_own_scheme() -> None:
    payload = refund_event()
    header = stripe_signed(payload)
    event = stripe.Webhook.construct_event(payload, header, SECRET)  # the library agrees
    assert event["id"] == "evt_1"


def test_a_verified_refund_event_becomes_an_update_for_its_refund() -> None:
    payload = refund_event("failed")
    [action] = stripe_webhook_actions(payload, stripe_signed(payload), [SECRET])
    assert isinstance(action, RefundUpdateAction)
    assert action.request_id == "rma-1"
    assert action.update.status is PspRefundStatus.FAILED
    assert (action.update.amount, action.update.currency) == (1500, "USD")
    assert action.update.event_id == "evt_1"


def test_during_rotation_the_previous_secret_still_verifies() -> None:
    payload = refund_event()
    actions = stripe_webhook_actions(
        payload, stripe_signed(payload, OLD_SECRET), [SECRET, OLD_SECRET]
    )
    assert isinstance(actions[0], RefundUpdateAction)


@pytest.mark.parametrize(
    ("header", "words"),
    [
        (None, "no Stripe-Signature header"),
        ("t=1,v1=00", "not accepted"),
        ("garbage", "no timestamp"),
        ("wrong-secret", "not accepted"),
        ("too-old", "not accepted"),
        ("future", "in the future"),
    ],
)
def test_bad_signatures_are_refused_before_the_body_is_read(header: str | None, words: str) -> None:
    payload = b"{not even json"
    signed = {
        "wrong-secret": stripe_signed(payload, "whsec_other"),
        "too-old": stripe_signed(payload, at=int(time.time()) - 3600),
        "future": stripe_signed(payload, at=int(time.time()) + 3600),
    }.get(header or "", header)
    with pytest.raises(WebhookRejected, match=words):
        stripe_webhook_actions(payload, signed, [SECRET])


def test_signed_garbage_is_malformed_and_unknown_types_are_ignored() -> None:
    garbage = b"{not json"
    with pytest.raises(WebhookMalformed):
        stripe_webhook_actions(garbage, stripe_signed(garbage), [SECRET])
    other = json.dumps({"id": "evt_2", "type": "customer.created", "data": {"object": {}}}).encode()
    [action] = stripe_webhook_actions(other, stripe_signed(other), [SECRET])
    assert isinstance(action, IgnoredEvent)
    foreign = refund_event(other_system="x")
    [action] = stripe_webhook_actions(foreign, stripe_signed(foreign), [SECRET])
    assert isinstance(action, IgnoredEvent) and action.why == "not one of our refunds"


def test_our_own_scheme_with_several_v1_values_and_a_time_window() -> None:
    body = b'{"id":"evt_shop_1"}'
    now = int(time.time())
    current = sign(body, SECRET, now)
    rotating = f"{current},v1={sign(body, OLD_SECRET, now).partition('v1=')[2]}"
    verify_signature(body, current, [SECRET])
    verify_signature(body, rotating, [OLD_SECRET])
    with pytest.raises(WebhookRejected, match="does not match"):
        verify_signature(body + b" ", current, [SECRET])
    with pytest.raises(WebhookRejected, match="off"):
        verify_signature(body, sign(body, SECRET, now - 301), [SECRET])
    with pytest.raises(WebhookRejected, match="no Refunds-Signature"):
        verify_signature(body, None, [SECRET])


def test_an_actionable_early_fraud_warning_names_its_payment() -> None:
    def warning(actionable: bool) -> bytes:
        return json.dumps(
            {
                "id": "evt_w",
                "type": "radar.early_fraud_warning.created",
                "data": {
                    "object": {
                        "id": "issfr_1",
                        "actionable": actionable,
                        "charge": "ch_1",
                        "payment_intent": "pi_1",
                    }
                },
            }
        ).encode()

    [action] = stripe_webhook_actions(warning(True), stripe_signed(warning(True)), [SECRET])
    assert action == EarlyFraudWarning("evt_w", "issfr_1", "pi_1")
    [stale] = stripe_webhook_actions(warning(False), stripe_signed(warning(False)), [SECRET])
    assert isinstance(stale, IgnoredEvent)


@pytest.mark.parametrize(
    "item",
    [
        {
            "type": "refund.updated",
            "object": {
                "id": "re_1",
                "status": "failed",
                "currency": "usd",
                "amount": 12.9,
                "metadata": {"refund_request_id": "r"},
            },
        },
        {
            "type": "refund.updated",
            "object": {
                "id": "re_1",
                "status": "failed",
                "currency": "usd",
                "amount": True,
                "metadata": {"refund_request_id": "r"},
            },
        },
        {
            "type": "refund.updated",
            "object": {
                "id": 7,
                "status": "failed",
                "currency": "usd",
                "amount": 5,
                "metadata": {"refund_request_id": "r"},
            },
        },
        {
            "type": "radar.early_fraud_warning.created",
            "object": {"actionable": True, "charge": "ch_1"},
        },
        {"type": "charge.dispute.created", "object": {"charge": "ch_1"}},
    ],
    ids=[
        "fractional amount",
        "boolean amount",
        "numeric id",
        "warning without id",
        "dispute without id",
    ],
)
def test_signed_but_malformed_events_are_400_never_500(item: dict[str, object]) -> None:
    payload = json.dumps(
        {"id": "evt_x", "type": item["type"], "data": {"object": item["object"]}}
    ).encode()
    with pytest.raises(WebhookMalformed):
        stripe_webhook_actions(payload, stripe_signed(payload), [SECRET])


def test_odd_but_harmless_events_are_ignored() -> None:
    for obj in (
        {"id": "re_1", "status": "failed", "metadata": ["x"]},
        {"id": "re_1", "status": "failed", "metadata": "x"},
    ):
        payload = json.dumps(
            {"id": "evt_y", "type": "refund.updated", "data": {"object": obj}}
        ).encode()
        [action] = stripe_webhook_actions(payload, stripe_signed(payload), [SECRET])
        assert isinstance(action, IgnoredEvent)
    infinite = (
        b'{"id": "evt_z", "type": "refund.updated", "data": {"object": {"amount": Infinity}}}'
    )
    [action] = stripe_webhook_actions(infinite, stripe_signed(infinite), [SECRET])
    assert isinstance(action, IgnoredEvent)


def test_unreadable_signatures_are_401_not_500() -> None:
    with pytest.raises(WebhookRejected):
        stripe_webhook_actions(b"{}", "t=\xb2,v1=ab", [SECRET])
    with pytest.raises(WebhookRejected):
        stripe_webhook_actions(b"\xff", stripe_signed(b"\xff"), [SECRET])
    with pytest.raises(WebhookRejected):
        verify_signature(b"{}", "t=\xb2,v1=ab", [SECRET])
