"""Test plumbing: workers on a task queue of their own over the real ledger and the sandboxes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import asyncpg
from temporalio.client import Client

from activities.events import EventPublisher
from activities.providers import PaymentProvider
from activities.reservations import Clock
from activities.risk import RiskPolicy
from activities.stripe_provider import StripeProvider
from workers.money_settings import MoneySettings
from workers.worker import refund_workers, running, worker_activities
from workflows.models import Psp

SANDBOX_KEY = "sk_test_sandbox"


@asynccontextmanager
async def running_worker(
    client: Client,
    pool: asyncpg.Pool,
    stripe_base: str | None,
    policy: RiskPolicy | None = None,
    publisher: EventPublisher | None = None,
    providers: Mapping[Psp, PaymentProvider] | None = None,
    task_queue: str | None = None,
    money: MoneySettings | None = None,
    now: Clock | None = None,
) -> AsyncIterator[str]:
    """Run the refund workers (workflows, each provider's queue) on a fresh task queue; yields
    the task queue. ``providers`` adds to (or replaces) the Stripe adapter on ``stripe_base``.
    """
    task_queue = task_queue or f"refunds-test-{uuid.uuid4().hex[:8]}"
    adapters: dict[Psp, PaymentProvider] = {}
    if stripe_base is not None:
        adapters[Psp.STRIPE] = StripeProvider(SANDBOX_KEY, stripe_base)
    adapters.update(providers or {})
    activities = worker_activities(
        adapters, pool, policy or RiskPolicy(), publisher=publisher, money=money, now=now
    )
    async with running(refund_workers(client, task_queue, activities, adapters)):
        yield task_queue
