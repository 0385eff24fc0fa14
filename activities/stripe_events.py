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
    except (ValueError, KeyError, TypeError) as exc:
        raise WebhookMalformed(f"not a Stripe event: {exc}") from exc
    if event_type in REFUND_EVENTS and isinstance(item, dict):
        return _refund_update(str(event_id), item)
    if event_type == "radar.early_fraud_warning.created" and isinstance(item, dict):
        return _early_fraud_warning(str(event_id), item)
    if event_type == "charge.dispute.created" and isinstance(item, dict):
        ids = tuple(str(item[k]) for k in ("payment_intent", "charge") if item.get(k))
        return [DisputeOpened(str(event_id), str(item.get("id")), ids)]
    return [IgnoredEvent(str(event_id), str(event_type), "not an event this service acts on")]


def _refund_update(event_id: str, refund: dict[str, Any]) -> list[WebhookAction]:
    request_id = (refund.get("metadata") or {}).get("refund_request_id")
    status = REFUND_STATES.get(str(refund.get("status")))
    if not request_id or status is None:
        why = "not one of our refunds" if not request_id else "refund still pending"
        return [IgnoredEvent(event_id, "refund", why)]
    try:
        update = ProviderRefundUpdate(
            event_id=event_id,
            psp_refund_id=str(refund["id"]),
            status=status,
            amount=int(refund["amount"]),
            currency=str(refund["currency"]).upper(),
            failure_reason=refund.get("failure_reason"),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise WebhookMalformed(f"a refund event without {exc}") from exc
    return [RefundUpdateAction(str(request_id), update)]


def _early_fraud_warning(event_id: str, warning: dict[str, Any]) -> list[WebhookAction]:
    payment_id = warning.get("payment_intent") or warning.get("charge")
    if not warning.get("actionable") or not payment_id:
        return [IgnoredEvent(event_id, "radar.early_fraud_warning", "not actionable")]
    return [EarlyFraudWarning(event_id, str(warning["id"]), str(payment_id))]
