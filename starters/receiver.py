"""The whole webhook receiver: Stripe, PayPal, Adyen and the shop, on one set of routes.

Each provider's route verifies its own signatures; all of them hand what a verified event
asks for to Temporal through ``starters.webhooks.apply_action``. Adyen's route also keeps the
payments its notifications describe (Adyen has no payment read API), so it needs PostgreSQL.
"""

from __future__ import annotations

import logging

import asyncpg
from fastapi import APIRouter
from temporalio.client import Client

from activities.adyen_payments import AdyenPaymentBook
from activities.orders import OrderBook
from starters.webhooks import FraudWarningPolicy, receiver_for
from starters.webhooks_adyen import adyen_router
from starters.webhooks_paypal import paypal_router, paypal_verifier
from workers.settings import Settings
from workers.worker import build_providers

log = logging.getLogger("refunds.webhooks")


def order_book_for(settings: Settings, pool: asyncpg.Pool | None) -> OrderBook | None:
    """The order store on ``pool`` (with REFUNDS_ORDER_SOURCE, if set); none without a pool."""
    return None if pool is None else OrderBook.configured(pool, settings.money.order_source)


def receiver_routers(
    client: Client,
    settings: Settings,
    pool: asyncpg.Pool | None,
    orders: OrderBook | None = None,
) -> list[APIRouter]:
    """Every webhook route; Adyen's only with a database to keep its payments in. The shop's
    order events go to ``orders`` (by default the order store on ``pool``)."""
    warnings = FraudWarningPolicy(settings.efw_policy, build_providers(settings, pool=pool))
    if orders is None:
        orders = order_book_for(settings, pool)
    if orders is None:
        log.warning("no REFUNDS_DATABASE_URL: the shop's order events are answered 503")
    routers = [
        receiver_for(client, settings, orders),
        paypal_router(client, settings.task_queue, paypal_verifier(settings), warnings),
    ]
    if pool is None:
        log.warning("no REFUNDS_DATABASE_URL: /webhooks/adyen is not served")
        return routers
    if not settings.adyen.hmac_keys:
        log.warning("ADYEN_HMAC_KEY is not set: /webhooks/adyen refuses every notification")
    routers.append(
        adyen_router(
            client,
            settings.task_queue,
            AdyenPaymentBook(pool),
            settings.adyen.hmac_keys,
            settings.adyen.basic_auth,
            warnings,
        )
    )
    return routers
