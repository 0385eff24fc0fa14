"""Each provider's calls run on a task queue of their own: a worker may poll a chosen few."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from temporalio.testing import WorkflowEnvironment

from activities.risk import RiskPolicy
from activities.stripe_provider import StripeProvider
from deploy.sandboxes.stripe_shop import create_payment, shop_client
from starters.client import start_refund
from tests.support.paypal_harness import paypal_harness
from tests.support.stack import SANDBOX_KEY
from tests.workflows.test_refund_paths import refund_request
from workers.worker import refund_workers, running, worker_activities
from workflows.models import Psp, RefundStatus
from workflows.refund import RefundWorkflow


async def test_a_refund_waits_for_a_worker_on_its_providers_queue(
    dev_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(shop, amount=2500, currency="usd", customer="cus_42")
    client, queue = dev_env.client, f"refunds-queues-{uuid.uuid4().hex[:8]}"
    providers = {Psp.STRIPE: StripeProvider(SANDBOX_KEY, stripe_base)}
    activities = worker_activities(providers, ledger_db, RiskPolicy())

    workflows_only = refund_workers(client, queue, activities, providers, queues=("refunds",))
    async with running(workflows_only):
        handle = await start_refund(client, refund_request(payment), queue)
        for _ in range(100):  # validated, reserved, scored: now at the provider's queue
            view = await handle.query(RefundWorkflow.status)
            if view.status is RefundStatus.REFUNDING:
                break
            await asyncio.sleep(0.05)
        assert view.status is RefundStatus.REFUNDING
        await asyncio.sleep(1.0)
        intent = await shop.v1.payment_intents.retrieve_async(
            payment, {"expand": ["latest_charge"]}
        )
        assert intent.latest_charge.amount_refunded == 0  # type: ignore[union-attr]
        assert (await handle.query(RefundWorkflow.status)).status is RefundStatus.REFUNDING

        stripe_only = refund_workers(client, queue, activities, providers, queues=("stripe",))
        assert [w.task_queue for w in stripe_only] == [f"{queue}-stripe"]
        async with running(stripe_only):
            result = await asyncio.wait_for(handle.result(), timeout=30)

    assert result.status is RefundStatus.SUCCEEDED
    intent = await shop.v1.payment_intents.retrieve_async(payment, {"expand": ["latest_charge"]})
    assert intent.latest_charge.amount_refunded == 2500  # type: ignore[union-attr]


async def test_a_throttled_provider_holds_up_only_its_own_refunds(
    dev_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    client, queue = dev_env.client, f"refunds-limits-{uuid.uuid4().hex[:8]}"
    async with paypal_harness() as paypal:
        paypal_payments = [await paypal.paid(1000) for _ in range(4)]
        stripe_payment = await create_payment(shop, amount=900, currency="usd", customer="c")
        providers = {
            Psp.STRIPE: StripeProvider(SANDBOX_KEY, stripe_base),
            Psp.PAYPAL: paypal.provider,
        }
        activities = worker_activities(providers, ledger_db, RiskPolicy())
        # PayPal's queue hands out one call a second, Stripe's fifty.
        limits = {Psp.STRIPE: 50.0, Psp.PAYPAL: 1.0}
        async with running(
            refund_workers(client, queue, activities, providers, rate_limits=limits)
        ):
            paypal_refunds = [
                await start_refund(client, refund_request(p, psp=Psp.PAYPAL, currency="EUR"), queue)
                for p in paypal_payments
            ]
            stripe_refund = await start_refund(client, refund_request(stripe_payment), queue)
            stripe_result = await asyncio.wait_for(stripe_refund.result(), timeout=30)
            waiting = [(await h.query(RefundWorkflow.status)).status for h in paypal_refunds].count(
                RefundStatus.REFUNDING
            )
            paypal_results = await asyncio.wait_for(
                asyncio.gather(*(h.result() for h in paypal_refunds)), timeout=60
            )

    assert stripe_result.status is RefundStatus.SUCCEEDED
    assert waiting >= 2, "the PayPal refunds were not held back by their queue's rate limit"
    assert [r.status for r in paypal_results] == [RefundStatus.SUCCEEDED] * 4
