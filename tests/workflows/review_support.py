"""Shared steps of the review tests: a payment, a refund started, waiting for a status."""

from __future__ import annotations

import asyncio

from deploy.sandboxes.stripe_shop import create_payment, shop_client
from starters.client import RefundHandle
from tests.support.stack import SANDBOX_KEY
from workflows.models import RefundStatus, RefundView
from workflows.refund import RefundWorkflow


async def paid(stripe_base: str, amount: int, capture: bool = True) -> str:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    return await create_payment(
        shop, amount=amount, currency="usd", customer="cus_review", capture=capture
    )


async def refunds_at_provider(stripe_base: str, payment: str) -> list[int]:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    listed = await shop.v1.refunds.list_async({"payment_intent": payment})
    return [refund.amount for refund in listed.data]


async def reach(handle: RefundHandle, status: RefundStatus) -> RefundView:
    """Poll the status query (which does not skip time) until the refund reaches ``status``."""
    async with asyncio.timeout(20):
        while True:
            view = await handle.query(RefundWorkflow.status)
            if view.status is status:
                return view
            await asyncio.sleep(0.05)
