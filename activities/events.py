"""Our own signed events, sent to subscribers (``REFUNDS_EVENT_SUBSCRIBERS``).

Body ``{"id", "type", "created", "data"}``; header
``Refunds-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`` with
``REFUNDS_EVENTS_SECRET``. An event id is stable per refund and type, so a subscriber can
drop the repeats a retried activity sends.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from activities.errors import RefundError
from activities.webhook_actions import WebhookRejected

SIGNATURE_HEADER = "Refunds-Signature"


class SubscriberUnavailable(RefundError):
    """A subscriber did not take the event; the activity retries."""

    retryable = True


def sign(body: bytes, secret: str, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


class EventPublisher:
    def __init__(self, subscribers: Sequence[str], secret: str | None) -> None:
        if subscribers and not secret:
            raise ValueError("REFUNDS_EVENTS_SECRET must be set to sign events to subscribers")
        self.subscribers = tuple(subscribers)
        self._secret = secret or ""

    async def publish(self, event_id: str, event_type: str, data: Mapping[str, Any]) -> None:
        if not self.subscribers:
            return
        now = int(time.time())
        body = json.dumps(
            {"id": event_id, "type": event_type, "created": now, "data": data},
            separators=(",", ":"),
        ).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, self._secret, now),
        }
        async with httpx.AsyncClient(timeout=10) as http:
            for url in self.subscribers:
                try:
                    answer = await http.post(url, content=body, headers=headers)
                except httpx.HTTPError as exc:
                    raise SubscriberUnavailable(f"event subscriber {url}: {exc}") from exc
                if not answer.is_success:
                    raise SubscriberUnavailable(
                        f"event subscriber {url} answered {answer.status_code}"
                    )


def verify_signature(
    body: bytes, header: str | None, secrets: Sequence[str], tolerance_s: int = 300
) -> None:
    """Check a ``Refunds-Signature`` header against any of ``secrets`` (rotation).

    Several ``v1`` values may be sent while a secret rotates; one matching is enough. The
    timestamp must be within ``tolerance_s`` of now, either way.
    """
    if not secrets:
        raise WebhookRejected("no secret is configured for these events")
    if not header:
        raise WebhookRejected(f"no {SIGNATURE_HEADER} header")
    parts = [part.strip().partition("=") for part in header.split(",")]
    stamps = [value for key, _, value in parts if key == "t"]
    signatures = [value for key, _, value in parts if key == "v1"]
    if len(stamps) != 1 or not (stamps[0].isascii() and stamps[0].isdigit()) or not signatures:
        raise WebhookRejected(f"{SIGNATURE_HEADER} must be t=<unix seconds>,v1=<hex>")
    stamp = int(stamps[0])
    if abs(time.time() - stamp) > tolerance_s:
        raise WebhookRejected(f"{SIGNATURE_HEADER} timestamp is more than {tolerance_s}s off")
    for secret in secrets:
        expected = sign(body, secret, stamp).partition("v1=")[2]
        if any(hmac.compare_digest(expected, candidate) for candidate in signatures):
            return
    raise WebhookRejected(f"{SIGNATURE_HEADER} does not match")
