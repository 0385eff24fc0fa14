"""The webhook receiver: verified provider and shop events become signals and starts.

Every endpoint checks the signature before it reads anything else, answers 2xx only after
Temporal accepted what the event asks (so a provider that got 2xx may stop retrying), and
is idempotent: a refund update carries the provider's event id (the workflow drops repeats),
and a start uses the refund's workflow ID policies. Bodies over 1 MiB are refused with 413
by the application's body limit before this code runs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from activities.errors import RefundError
from activities.events import SIGNATURE_HEADER, verify_signature
from activities.orders import OrderBook
from activities.providers import PaymentProvider
from activities.risk import REVIEW_REQUIRED_KEY
from activities.stripe_provider import stripe_webhook_actions
from activities.webhook_actions import (
    DisputeOpened,
    EarlyFraudWarning,
    IgnoredEvent,
    RefundUpdateAction,
    WebhookAction,
    WebhookMalformed,
    WebhookRejected,
)
from starters.cli_support import describe_validation_error
from starters.client import start_refund, workflow_id
from starters.http_errors import ApiError
from starters.webhooks_ended import after_the_refund_ended
from starters.webhooks_orders import ORDER_EVENTS, store_order_event
from workers.settings import Settings
from workers.telemetry import webhook_rejected
from workers.worker import build_providers
from workflows.disputes import RecordDisputeWorkflow
from workflows.models import (
    PaymentDisputed,
    Psp,
    RecordDispute,
    RefundReason,
    RefundRequest,
)
from workflows.refund import RefundWorkflow

log = logging.getLogger("refunds.webhooks")


@dataclass(frozen=True)
class FraudWarningPolicy:
    """REFUNDS_EFW_POLICY and what it needs: refund at once, refund after review, or ignore."""

    action: str = "refund"
    providers: Mapping[Psp, PaymentProvider] = field(default_factory=dict)


def webhook_router(
    client: Client,
    task_queue: str,
    stripe_secrets: Sequence[str],
    shop_secrets: Sequence[str],
    fraud_warnings: FraudWarningPolicy | None = None,
    orders: OrderBook | None = None,
) -> APIRouter:
    """The Stripe and shop routes; the shop's order events go to ``orders`` (the order
    store; without one they are answered 503 and stored nothing)."""
    router = APIRouter(tags=["webhooks"])
    warnings = fraud_warnings or FraudWarningPolicy()

    @router.post("/webhooks/stripe", summary="Stripe events (Stripe-Signature)")
    async def stripe_events(request: Request) -> dict[str, Any]:
        body = await request.body()
        actions = _verified(
            lambda: stripe_webhook_actions(
                body, request.headers.get("Stripe-Signature"), stripe_secrets
            ),
            "stripe",
        )
        done = [await apply_action(client, task_queue, warnings, action) for action in actions]
        return {"received": True, "done": done}

    @router.post("/webhooks/shop", summary="Shop and ERP events (Refunds-Signature)")
    async def shop_events(request: Request) -> dict[str, Any]:
        body = await request.body()
        _verified(
            lambda: verify_signature(body, request.headers.get(SIGNATURE_HEADER), shop_secrets),
            "shop",
        )
        event = _shop_event(body)
        if event["type"] in ORDER_EVENTS:
            return {"received": True, "done": [await store_order_event(orders, event)]}
        if event["type"] != "refund.requested":
            log.info("shop event %s of type %s: nothing to do", event["id"], event["type"])
            return {"received": True, "done": [f"ignored {event['type']}"]}
        data = dict(event["data"]) if isinstance(event["data"], dict) else {}
        data.setdefault("request_id", event["id"])
        try:
            refund = RefundRequest.model_validate(data)
        except ValidationError as exc:
            raise ApiError(400, f"refund.requested: {describe_validation_error(exc)}") from exc
        handle = await start_refund(client, refund, task_queue)
        return {"received": True, "done": [f"started {handle.id}"]}

    return router


def _verified(check: Any, sender: str) -> Any:
    try:
        return check()
    except WebhookRejected as exc:
        webhook_rejected(sender)
        raise ApiError(401, str(exc)) from exc
    except WebhookMalformed as exc:
        raise ApiError(400, str(exc)) from exc


def _shop_event(body: bytes) -> dict[str, Any]:
    try:
        event = json.loads(body)
    except ValueError as exc:
        raise ApiError(400, f"malformed JSON: {exc}") from exc
    if not isinstance(event, dict) or not {"id", "type", "data"} <= event.keys():
        raise ApiError(400, 'a shop event is {"id", "type", "created", "data"}')
    return event


async def apply_action(
    client: Client, task_queue: str, warnings: FraudWarningPolicy, action: WebhookAction
) -> str:
    if isinstance(action, IgnoredEvent):
        log.info("event %s (%s) ignored: %s", action.event_id, action.event_type, action.why)
        return f"ignored {action.event_id}: {action.why}"
    if isinstance(action, EarlyFraudWarning):
        return await _refund_fraud_warning(client, task_queue, warnings, action)
    if isinstance(action, DisputeOpened):
        return await _tell_refunds_in_review(client, task_queue, action)
    assert isinstance(action, RefundUpdateAction)
    handle = client.get_workflow_handle(workflow_id(action.request_id))
    try:
        await handle.signal(RefundWorkflow.provider_update, action.update)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise  # Temporal did not take it: answer 5xx so the provider retries
        return await after_the_refund_ended(client, task_queue, action)
    return f"told {handle.id}: {action.update.status.value}"


def receiver_for(client: Client, settings: Settings, orders: OrderBook | None = None) -> APIRouter:
    """The receiver with the configured secrets; an endpoint without one refuses every event.
    The shop's order events are kept in ``orders``."""
    for name, configured in (
        ("STRIPE_WEBHOOK_SECRET", settings.stripe_webhook_secrets),
        ("REFUNDS_SHOP_WEBHOOK_SECRET", settings.shop_webhook_secrets),
    ):
        if not configured:
            log.warning("%s is not set: its webhook endpoint refuses every event", name)
    return webhook_router(
        client,
        settings.task_queue,
        settings.stripe_webhook_secrets,
        settings.shop_webhook_secrets,
        FraudWarningPolicy(settings.efw_policy, build_providers(settings)),
        orders,
    )


async def _refund_fraud_warning(
    client: Client, task_queue: str, policy: FraudWarningPolicy, warning: EarlyFraudWarning
) -> str:
    """Refund what is still refundable on a flagged payment, keyed by the warning id, so a
    chargeback (and its fee) never comes; under the review policy a human approves first."""
    if policy.action == "ignore":
        log.info("early fraud warning %s ignored (REFUNDS_EFW_POLICY=ignore)", warning.warning_id)
        return f"ignored {warning.warning_id}: REFUNDS_EFW_POLICY=ignore"
    provider = policy.providers.get(Psp.STRIPE)
    if provider is None:  # a 5xx would have Stripe retry for days and disable the endpoint
        log.error("early fraud warning %s: no Stripe adapter configured", warning.warning_id)
        return f"ignored {warning.warning_id}: no Stripe adapter configured (STRIPE_API_KEY)"
    try:
        payment = await provider.fetch_payment(warning.payment_id)
    except RefundError as exc:
        if exc.retryable:
            raise ApiError(503, f"early fraud warning: {exc.message}") from exc
        log.warning("early fraud warning %s: %s", warning.warning_id, exc.message)
        return f"ignored {warning.warning_id}: {exc.message}"
    metadata = {"early_fraud_warning": warning.warning_id}
    if policy.action == "review":
        metadata[REVIEW_REQUIRED_KEY] = "REFUNDS_EFW_POLICY=review"
    request = RefundRequest(
        request_id=warning.warning_id,
        psp=Psp.STRIPE,
        payment_id=warning.payment_id,
        currency=payment.currency,
        reason=RefundReason.FRAUDULENT,
        customer_id=payment.customer or f"unknown-customer-of-{warning.payment_id}",
        requested_by="stripe-radar",
        metadata=metadata,
    )
    handle = await start_refund(client, request, task_queue)
    return f"started {handle.id} for early fraud warning {warning.warning_id}"


async def _tell_refunds_in_review(client: Client, task_queue: str, dispute: DisputeOpened) -> str:
    """Mark the payment disputed (no new refund of it is reserved) and end its refunds still in
    review as REJECTED: the dispute decides its money."""
    if not dispute.payment_ids:
        return f"ignored {dispute.event_id}: a dispute without a payment"
    mark = RecordDispute(
        dispute_id=dispute.dispute_id,
        payment_keys=[f"{dispute.psp.value}:{payment_id}" for payment_id in dispute.payment_ids],
    )
    await client.start_workflow(  # one per dispute: a repeated webhook joins it
        RecordDisputeWorkflow.run,
        mark,
        id=f"payment-dispute-{dispute.dispute_id}",
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )
    ids = ", ".join(json.dumps(payment_id) for payment_id in dispute.payment_ids)
    query = f'PaymentId IN ({ids}) AND RefundStatus = "AWAITING_REVIEW"'
    told = []
    async for execution in client.list_workflows(query):
        handle = client.get_workflow_handle(execution.id)
        await handle.signal(
            RefundWorkflow.payment_disputed,
            PaymentDisputed(event_id=dispute.event_id, dispute_id=dispute.dispute_id),
        )
        told.append(execution.id)
    return f"dispute {dispute.dispute_id}: told {', '.join(told) or 'no refund in review'}"
