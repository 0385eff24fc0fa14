"""Adyen's standard notifications: their format, their verification, what they ask of us.

Adyen posts ``{"live": "false", "notificationItems": [{"NotificationRequestItem": {...}}]}``
and expects the text ``[accepted]`` back. Each item carries its own HMAC-SHA256 signature in
``additionalData.hmacSignature`` (base64), over
``pspReference:originalReference:merchantAccountCode:merchantReference:value:currency:eventCode:success``
with the hex HMAC key. The Adyen library's helper checks only the first item of a batch, so a
forged second item would pass it: every item is checked here, against every configured key
(several keys during a rotation), in constant time. Basic auth, when configured, is checked
before anything is parsed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from activities.webhook_actions import (
    DisputeOpened,
    IgnoredEvent,
    RefundUpdateAction,
    WebhookAction,
    WebhookMalformed,
    WebhookRejected,
)
from workflows.models import ProviderRefundUpdate, Psp, PspRefundStatus

SIGNED_FIELDS = (
    "pspReference",
    "originalReference",
    "merchantAccountCode",
    "merchantReference",
    "value",
    "currency",
    "eventCode",
    "success",
)
CHARGEBACK_EVENTS = frozenset({"CHARGEBACK", "NOTIFICATION_OF_CHARGEBACK"})
# Adyen reports a refund that failed after it had succeeded with these (success "true").
REFUND_UNDONE_EVENTS = frozenset({"REFUND_FAILED", "REFUNDED_REVERSED"})


MAX_MINOR_UNITS = 2**63 - 1


@dataclass(frozen=True)
class AdyenNotification:
    """One verified NotificationRequestItem, as Adyen sent it (amounts in minor units)."""

    event_code: str
    psp_reference: str
    original_reference: str
    merchant_account: str
    merchant_reference: str
    value: int
    currency: str
    success: bool
    reason: str = ""
    event_date: datetime | None = None
    additional_data: Mapping[str, str] = field(default_factory=dict)
    live: bool = False

    @property
    def notification_id(self) -> str:
        """Adyen has no notification id; this triple identifies a delivery's item."""
        flag = "true" if self.success else "false"
        return f"adyen:{self.psp_reference}:{self.event_code}:{flag}"

    @property
    def payment_reference(self) -> str:
        """The payment the item is about: itself for AUTHORISATION, else the original."""
        return self.original_reference or self.psp_reference

    @property
    def shopper_reference(self) -> str | None:
        return self.additional_data.get("shopperReference") or None


def signing_string(item: Mapping[str, Any]) -> str:
    """Adyen's string to sign for one raw NotificationRequestItem (missing fields empty)."""
    raw_amount = item.get("amount")
    amount: Mapping[str, Any] = raw_amount if isinstance(raw_amount, dict) else {}
    values = {**item, "value": amount.get("value", ""), "currency": amount.get("currency", "")}
    return ":".join("" if values.get(name) is None else str(values[name]) for name in SIGNED_FIELDS)


def item_signature(item: Mapping[str, Any], hex_key: str) -> str:
    """The base64 HMAC-SHA256 Adyen puts in ``additionalData.hmacSignature``."""
    digest = hmac.new(bytes.fromhex(hex_key), signing_string(item).encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


def verify_and_parse(
    payload: bytes,
    authorization_header: str | None,
    hmac_keys: Sequence[str],
    basic_auth: tuple[str, str] | None,
) -> list[AdyenNotification]:
    """The batch's items, once the basic auth (if configured) and EVERY item's HMAC hold.

    ``WebhookRejected`` (answer 401) for bad or missing credentials or signatures, or when no
    HMAC key is configured; ``WebhookMalformed`` (answer 400) for a body that is not
    Adyen's notification JSON.
    """
    if basic_auth is not None:
        _check_basic_auth(authorization_header, basic_auth)
    if not hmac_keys:
        raise WebhookRejected("no ADYEN_HMAC_KEY is configured")
    try:
        keys = [bytes.fromhex(key) for key in hmac_keys]
    except ValueError:
        raise WebhookRejected("ADYEN_HMAC_KEY is not hexadecimal") from None
    raw_items = _raw_items(payload)
    for index, item in enumerate(raw_items):
        _check_hmac(index, item, keys)
    live = _body(payload).get("live") in ("true", True)
    return [_notification(item, live) for item in raw_items]


def _check_basic_auth(header: str | None, expected: tuple[str, str]) -> None:
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise WebhookRejected("no basic auth credentials (ADYEN_WEBHOOK_USERNAME is set)")
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRejected("the basic auth credentials are not base64") from None
    wanted = f"{expected[0]}:{expected[1]}".encode()
    if not hmac.compare_digest(given, wanted):
        raise WebhookRejected("wrong basic auth credentials")


def _check_hmac(index: int, item: Mapping[str, Any], keys: Sequence[bytes]) -> None:
    additional = item.get("additionalData")
    given = additional.get("hmacSignature") if isinstance(additional, dict) else None
    if not isinstance(given, str) or not given:
        raise WebhookRejected(f"notification item {index} has no hmacSignature")
    message = signing_string(item).encode()
    for key in keys:
        expected = base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()
        if hmac.compare_digest(expected.encode(), given.encode()):
            return
    raise WebhookRejected(f"notification item {index}: the HMAC signature does not match")


def _body(payload: bytes) -> dict[str, Any]:
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookMalformed(f"not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise WebhookMalformed("an Adyen notification is a JSON object")
    return body


def _raw_items(payload: bytes) -> list[dict[str, Any]]:
    wrapped = _body(payload).get("notificationItems")
    if not isinstance(wrapped, list) or not wrapped:
        raise WebhookMalformed("no notificationItems in the notification")
    items = []
    for entry in wrapped:
        item = entry.get("NotificationRequestItem") if isinstance(entry, dict) else None
        if not isinstance(item, dict):
            raise WebhookMalformed("a notification item has no NotificationRequestItem")
        items.append(item)
    return items


def _text(item: Mapping[str, Any], name: str, required: bool = False) -> str:
    value = item.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise WebhookMalformed(f"the item's {name!r} is not a non-empty string")
    return value


def _notification(item: Mapping[str, Any], live: bool) -> AdyenNotification:
    amount = item.get("amount") or {}
    value = amount.get("value", 0) if isinstance(amount, dict) else None
    # Minor units: no 12.5, true, -1, or more than any store of money holds (2**63 - 1).
    if type(value) is not int or not 0 <= value <= MAX_MINOR_UNITS:
        raise WebhookMalformed("the item's amount.value is not a whole number of minor units")
    success = item.get("success")
    if success not in ("true", "false", True, False):
        raise WebhookMalformed("the item's 'success' is neither true nor false")
    additional = item.get("additionalData") or {}
    if not isinstance(additional, dict):
        raise WebhookMalformed("the item's additionalData is not an object")
    return AdyenNotification(
        event_code=_text(item, "eventCode", required=True),
        psp_reference=_text(item, "pspReference", required=True),
        original_reference=_text(item, "originalReference"),
        merchant_account=_text(item, "merchantAccountCode"),
        merchant_reference=_text(item, "merchantReference"),
        value=value,
        currency=_text(amount, "currency").upper(),
        success=success in ("true", True),
        reason=_text(item, "reason"),
        event_date=_event_date(_text(item, "eventDate")),
        additional_data={str(k): str(v) for k, v in additional.items() if k != "hmacSignature"},
        live=live,
    )


def _event_date(text: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise WebhookMalformed(f"the item's eventDate {text!r} is not an ISO 8601 time") from None


def notification_actions(items: Sequence[AdyenNotification]) -> list[WebhookAction]:
    """What each item asks of the service, one action per item, in order."""
    return [_action(item) for item in items]


def _action(item: AdyenNotification) -> WebhookAction:
    event_id = item.notification_id
    code = item.event_code
    if code in CHARGEBACK_EVENTS:
        return DisputeOpened(event_id, item.psp_reference, (item.payment_reference,), Psp.ADYEN)
    if code not in {"REFUND", "CANCELLATION"} | REFUND_UNDONE_EVENTS:
        return IgnoredEvent(event_id, code, "not an event this service acts on")
    if not item.merchant_reference:
        return IgnoredEvent(event_id, code, "no merchantReference: not one of our refunds")
    if code in REFUND_UNDONE_EVENTS and not item.success:
        return IgnoredEvent(event_id, code, "success is false: nothing was undone")
    succeeded = item.success and code not in REFUND_UNDONE_EVENTS
    failure = None if succeeded else (item.reason or f"Adyen {code}")
    update = ProviderRefundUpdate(
        event_id=event_id,
        psp_refund_id=item.psp_reference,
        status=PspRefundStatus.SUCCEEDED if succeeded else PspRefundStatus.FAILED,
        amount=item.value,
        currency=item.currency,
        failure_reason=failure,
    )
    return RefundUpdateAction(item.merchant_reference, update)
