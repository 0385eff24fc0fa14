"""Adyen notification verification: every item's HMAC, key rotation, basic auth, bad bodies,
and what each event code asks of the service."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from activities.adyen_notifications import notification_actions, verify_and_parse
from activities.webhook_actions import (
    DisputeOpened,
    IgnoredEvent,
    RefundUpdateAction,
    WebhookMalformed,
    WebhookRejected,
)
from deploy.sandboxes.adyen_notifier import notification_item, sign_item
from workflows.models import Psp, PspRefundStatus

KEY = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
OLD_KEY = "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
AUTH = ("adyen", "pw")


def item(code: str = "REFUND", success: bool = True, **fields: Any) -> dict[str, Any]:
    made = notification_item(
        code,
        fields.pop("psp", "MOD0000000000001"),
        "RefundsSandboxECOM",
        fields.pop("reference", "req-1"),
        fields.pop("value", 1500),
        "EUR",
        success,
        original_reference=fields.pop("original", "PAY0000000000001"),
        reason=fields.pop("reason", ""),
    )
    return {**made, **fields}


def batch(*items: dict[str, Any], key: str = KEY) -> bytes:
    wrapped = [{"NotificationRequestItem": sign_item(one, key)} for one in items]
    return json.dumps({"live": "false", "notificationItems": wrapped}).encode()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_a_signed_batch_is_parsed_item_by_item() -> None:
    parsed = verify_and_parse(
        batch(item(), item("CAPTURE", psp="CAP0000000000001")), None, [KEY], None
    )
    assert [(n.event_code, n.psp_reference, n.value, n.currency) for n in parsed] == [
        ("REFUND", "MOD0000000000001", 1500, "EUR"),
        ("CAPTURE", "CAP0000000000001", 1500, "EUR"),
    ]
    assert parsed[0].payment_reference == "PAY0000000000001"
    assert parsed[0].notification_id == "adyen:MOD0000000000001:REFUND:true"


def test_a_forged_second_item_rejects_the_whole_batch() -> None:
    body = json.loads(batch(item(), item(psp="MOD0000000000002")))
    body["notificationItems"][1]["NotificationRequestItem"]["amount"]["value"] = 999999
    with pytest.raises(WebhookRejected, match="item 1"):
        verify_and_parse(json.dumps(body).encode(), None, [KEY], None)


def test_an_item_without_signature_is_rejected() -> None:
    raw = {"live": "false", "notificationItems": [{"NotificationRequestItem": item()}]}
    with pytest.raises(WebhookRejected, match="no hmacSignature"):
        verify_and_parse(json.dumps(raw).encode(), None, [KEY], None)


def test_during_a_rotation_either_key_verifies() -> None:
    signed_with_old = batch(item(), key=OLD_KEY)
    assert verify_and_parse(signed_with_old, None, [KEY, OLD_KEY], None)
    with pytest.raises(WebhookRejected, match="does not match"):
        verify_and_parse(signed_with_old, None, [KEY], None)


def test_no_key_configured_refuses_everything() -> None:
    with pytest.raises(WebhookRejected, match="ADYEN_HMAC_KEY"):
        verify_and_parse(batch(item()), None, [], None)


@pytest.mark.parametrize(
    "header", [None, "Bearer x", basic("adyen", "wrong"), basic("other", "pw"), "Basic !!!"]
)
def test_basic_auth_is_checked_first(header: str | None) -> None:
    with pytest.raises(WebhookRejected):
        verify_and_parse(batch(item()), header, [KEY], AUTH)


def test_right_basic_auth_passes() -> None:
    assert verify_and_parse(batch(item()), basic(*AUTH), [KEY], AUTH)


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"[]", b'{"live": "false"}', b'{"notificationItems": [{"x": 1}]}'],
)
def test_malformed_bodies(payload: bytes) -> None:
    with pytest.raises(WebhookMalformed):
        verify_and_parse(payload, None, [KEY], None)


def test_a_signed_item_with_a_fractional_amount_is_malformed() -> None:
    odd = item()
    odd["amount"]["value"] = 12.5
    with pytest.raises(WebhookMalformed, match="minor units"):
        verify_and_parse(batch(odd), None, [KEY], None)


def test_a_signed_item_with_an_amount_beyond_any_store_of_money_is_malformed() -> None:
    huge = item(value=2**70)  # signed as sent: the HMAC holds, the amount does not
    with pytest.raises(WebhookMalformed, match="minor units"):
        verify_and_parse(batch(huge), None, [KEY], None)


def test_refund_outcomes_become_refund_updates() -> None:
    parsed = verify_and_parse(
        batch(
            item(),
            item(success=False, psp="MOD0000000000002", reason="Insufficient balance on payment"),
            item("REFUND_FAILED", psp="MOD0000000000003"),
            item("REFUNDED_REVERSED", psp="MOD0000000000004"),
            item("CANCELLATION", psp="CAN0000000000001", reference="req-void"),
        ),
        None,
        [KEY],
        None,
    )
    actions = notification_actions(parsed)
    assert all(isinstance(a, RefundUpdateAction) for a in actions)
    updates = [a.update for a in actions if isinstance(a, RefundUpdateAction)]
    assert [u.status for u in updates] == [
        PspRefundStatus.SUCCEEDED,
        PspRefundStatus.FAILED,
        PspRefundStatus.FAILED,
        PspRefundStatus.FAILED,
        PspRefundStatus.SUCCEEDED,
    ]
    assert updates[0].event_id == "adyen:MOD0000000000001:REFUND:true"
    assert (updates[0].psp_refund_id, updates[0].amount, updates[0].currency) == (
        "MOD0000000000001",
        1500,
        "EUR",
    )
    assert updates[1].failure_reason == "Insufficient balance on payment"
    assert isinstance(actions[4], RefundUpdateAction) and actions[4].request_id == "req-void"


def test_chargebacks_open_disputes_and_the_rest_is_ignored() -> None:
    parsed = verify_and_parse(
        batch(
            item("NOTIFICATION_OF_CHARGEBACK", psp="DSP0000000000001"),
            item("AUTHORISATION", original=""),
            item("REFUND", reference=""),
        ),
        None,
        [KEY],
        None,
    )
    dispute, authorisation, foreign_refund = notification_actions(parsed)
    assert dispute == DisputeOpened(
        "adyen:DSP0000000000001:NOTIFICATION_OF_CHARGEBACK:true",
        "DSP0000000000001",
        ("PAY0000000000001",),
        Psp.ADYEN,
    )
    assert isinstance(authorisation, IgnoredEvent)
    assert isinstance(foreign_refund, IgnoredEvent)
