"""The Adyen notification endpoint: ``POST /webhooks/adyen``.

Adyen redelivers a notification until it is answered ``[accepted]``, so that answer is sent
only once every item has been verified (basic auth, then each item's HMAC), recorded in the
payment book, and handed to Temporal. Anything short of that is a 4xx (never retried usefully:
a forged or malformed batch) or a 5xx (the book or Temporal was unavailable: Adyen retries, and
both the book and the workflows drop the repeats).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from temporalio.client import Client
from temporalio.service import RPCError

from activities.adyen_notifications import notification_actions, verify_and_parse
from activities.adyen_payments import AdyenPaymentBook
from activities.errors import DatabaseUnavailable
from activities.webhook_actions import WebhookMalformed, WebhookRejected
from starters.http_errors import ApiError
from starters.webhooks import FraudWarningPolicy, apply_action
from workers.telemetry import webhook_rejected

log = logging.getLogger("refunds.webhooks.adyen")
ACCEPTED = "[accepted]"


def adyen_router(
    client: Client,
    task_queue: str,
    book: AdyenPaymentBook,
    hmac_keys: Sequence[str],
    basic_auth: tuple[str, str] | None,
    warnings: FraudWarningPolicy,
) -> APIRouter:
    router = APIRouter(tags=["webhooks"])

    @router.post(
        "/webhooks/adyen",
        summary="Adyen notifications (HMAC on every item; basic auth when configured)",
        response_class=PlainTextResponse,
    )
    async def adyen_notifications(request: Request) -> PlainTextResponse:
        body = await request.body()
        try:
            items = verify_and_parse(
                body, request.headers.get("Authorization"), hmac_keys, basic_auth
            )
        except WebhookRejected as exc:
            webhook_rejected("adyen")
            raise ApiError(401, f"Adyen notification refused: {exc}") from exc
        except WebhookMalformed as exc:
            raise ApiError(400, f"Adyen notification malformed: {exc}") from exc
        for item, action in zip(items, notification_actions(items), strict=True):
            try:
                await book.record(item)
                done = await apply_action(client, task_queue, warnings, action)
            except DatabaseUnavailable as exc:
                raise ApiError(503, f"{exc.message}; Adyen will deliver it again") from exc
            except RPCError as exc:
                raise ApiError(
                    503, f"Temporal did not take {item.notification_id}: {exc.message}"
                ) from exc
            log.info("Adyen %s %s: %s", item.event_code, item.psp_reference, done)
        return PlainTextResponse(ACCEPTED)

    return router
