"""`POST /webhooks/paypal`: PayPal's events, verified, become signals and starts.

The same contract as the Stripe route in ``starters.webhooks``: the transmission signature is
checked before anything else (401 when missing or wrong, 400 for a signed body that is not an
event), and 2xx is answered only once Temporal took every action, so PayPal may stop
retrying. A refund update carries PayPal's event id, so a repeated delivery changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from temporalio.client import Client

from activities.paypal_provider import PayPalProvider
from activities.paypal_webhooks import PayPalWebhookVerifier
from activities.webhook_actions import WebhookMalformed, WebhookRejected
from starters.http_errors import ApiError
from starters.webhooks import FraudWarningPolicy, apply_action
from workers.settings import Settings
from workers.telemetry import webhook_rejected

log = logging.getLogger("refunds.webhooks")


def paypal_router(
    client: Client,
    task_queue: str,
    verifier: PayPalWebhookVerifier,
    warnings: FraudWarningPolicy,
) -> APIRouter:
    router = APIRouter(tags=["webhooks"])

    @router.post("/webhooks/paypal", summary="PayPal events (PAYPAL-TRANSMISSION-SIG)")
    async def paypal_events(request: Request) -> dict[str, Any]:
        body = await request.body()
        try:
            actions = await verifier.actions(body, request.headers)
        except WebhookRejected as exc:
            webhook_rejected("paypal")
            raise ApiError(401, str(exc)) from exc
        except WebhookMalformed as exc:
            raise ApiError(400, str(exc)) from exc
        done = [await apply_action(client, task_queue, warnings, action) for action in actions]
        return {"received": True, "done": done}

    return router


def paypal_verifier(settings: Settings) -> PayPalWebhookVerifier:
    """The verifier ``settings.paypal`` asks for (PAYPAL_WEBHOOK_ID, PAYPAL_WEBHOOK_VERIFY,
    PAYPAL_WEBHOOK_CERT_FILE, PAYPAL_MODE); without a webhook id it refuses every event."""
    paypal = settings.paypal
    if not paypal.webhook_id:
        log.warning("PAYPAL_WEBHOOK_ID is not set: /webhooks/paypal refuses every event")
    certificate = paypal.webhook_cert_file.read_bytes() if paypal.webhook_cert_file else None
    api = None
    if paypal.webhook_verify == "api" and paypal.client_id and paypal.client_secret:
        api = PayPalProvider(paypal.client_id, paypal.client_secret, paypal.api_base, paypal.mode)
    if paypal.webhook_verify == "api" and api is None:
        raise ValueError(
            "PAYPAL_WEBHOOK_VERIFY=api needs PAYPAL_CLIENT_ID and PAYPAL_CLIENT_SECRET"
        )
    return PayPalWebhookVerifier(
        paypal.webhook_id,
        mode=paypal.webhook_verify,
        paypal_mode=paypal.mode,  # whose certificate hosts PAYPAL-CERT-URL may name
        certificate_pem=certificate,
        api=api,
    )
