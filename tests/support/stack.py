"""Test plumbing: a worker on its own task queue over the real ledger and the Stripe sandbox."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from temporalio.client import Client

from activities.events import EventPublisher
from activities.risk import RiskPolicy
from activities.stripe_provider import StripeProvider
from workers.worker import refund_worker, worker_activities
from workflows.models import Psp

SANDBOX_KEY = "sk_test_sandbox"


@asynccontextmanager
async def running_worker(
    client: Client,
    pool: asyncpg.Pool,
    stripe_base: str,
    policy: RiskPolicy | None = None,
    publisher: EventPublisher | None = None,
) -> AsyncIterator[str]:
    """Run a refund worker on a fresh task queue; yields the task queue."""
    task_queue = f"refunds-test-{uuid.uuid4().hex[:8]}"
    activities = worker_activities(
        {Psp.STRIPE: StripeProvider(SANDBOX_KEY, stripe_base)},
        pool,
        policy or RiskPolicy(),
        publisher=publisher,
    )
    async with refund_worker(client, task_queue, activities):
        yield task_queue
