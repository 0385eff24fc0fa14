"""Stripe's event JSON read into provider-neutral actions (parsing only: no SDK here).

Verification happens first, in ``activities.stripe_provider``; this module never sees an
unverified body.
"""

from __future__ import annotations

import json
from typing import Any

from activities.webhook_actions import (
    DisputeOpened,
    EarlyFraudWarning,
    IgnoredEvent,
    RefundUpdateAction,
    WebhookAction,
    WebhookMalformed,
)
from workflows.models import ProviderRefundUpdate, PspRefundStatus

REFUND_STATES = {
    "succeeded": PspRefundStatus.SUCCEEDED,
    "failed": PspRefundStatus.FAILED,
    "canceled": PspRefundStatus.FAILED,
}
REFUND_EVENTS = frozenset({"refund.updated", "refund.failed", "charge.refund.updated"})


def stripe_event_actions(payload: bytes) -> list[WebhookAction]:
    try:
        event = json.loads(payload)
        event_id, event_type, item = event["id"], event["type"], event["data"]["object"]
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        raise WebhookMalformed(f"not a Stripe event: {exc}") from exc
    if event_type in REFUND_EVENTS and isinstance(item, dict):
        return _refund_update(str(event_id), item)
    if event_type == "radar.early_fraud_warning.created" and isinstance(item, dict):
        return _early_fraud_warning(str(event_id), item)
    if event_type == "charge.dispute.created" and isinstance(item, dict):
        dispute_id = _text(item, "id")
        ids = tuple(
            v for k in ("payment_intent", "charge") if (v := _text(item, k, required=False))
        )
        return [DisputeOpened(str(event_id), dispute_id, ids)]
    return [IgnoredEvent(str(event_id), str(event_type), "not an event this service acts on")]


def _text(item: dict[str, Any], key: str, required: bool = True) -> str:
    value = item.get(key)
    if isinstance(value, str) and value:
        return value
    if value is None and not required:
        return ""
    raise WebhookMalformed(f"the event's {key!r} is not a non-empty string")


def _refund_update(event_id: str, refund: dict[str, Any]) -> list[WebhookAction]:
    metadata = refund.get("metadata")
    request_id = metadata.get("refund_request_id") if isinstance(metadata, dict) else None
    status = REFUND_STATES.get(str(refund.get("status")))
    if not request_id or status is None:
        why = "not one of our refunds" if not request_id else "refund still pending"
        return [IgnoredEvent(event_id, "refund", why)]
    amount = refund.get("amount")
    if type(amount) is not int:  # no 12.9, true or Infinity: minor units are integers
        raise WebhookMalformed("the refund's 'amount' is not an integer")
    failure = refund.get("failure_reason")
    update = ProviderRefundUpdate(
        event_id=event_id,
        psp_refund_id=_text(refund, "id"),
        status=status,
        amount=amount,
        currency=_text(refund, "currency").upper(),
        failure_reason=failure if isinstance(failure, str) else None,
    )
    return [RefundUpdateAction(str(request_id), update)]


def _early_fraud_warning(event_id: str, warning: dict[str, Any]) -> list[WebhookAction]:
    payment_id = _text(warning, "payment_intent", required=False) or _text(
        warning, "charge", required=False
    )
    if warning.get("actionable") is not True or not payment_id:
        return [IgnoredEvent(event_id, "radar.early_fraud_warning", "not actionable")]
    return [EarlyFraudWarning(event_id, _text(warning, "id"), payment_id)]
