"""The refund worker: polls the task queue and runs the workflow and its activities."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from temporalio.client import Client
from temporalio.worker import Worker

from activities.ledger import Ledger
from activities.providers import PaymentProvider
from activities.refund_activities import RefundActivities
from activities.stripe_provider import StripeProvider
from deploy.migrations import apply_migrations
from workers.client import connect
from workers.settings import Settings
from workflows.models import Psp
from workflows.refund import RefundWorkflow


def build_providers(settings: Settings) -> dict[Psp, PaymentProvider]:
    providers: dict[Psp, PaymentProvider] = {}
    if settings.stripe_api_key:
        providers[Psp.STRIPE] = StripeProvider(settings.stripe_api_key, settings.stripe_api_base)
    return providers


def refund_worker(
    client: Client,
    task_queue: str,
    activities: RefundActivities,
    extra_workflows: Sequence[type] = (),
    extra_activities: Sequence[Callable[..., Any]] = (),
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[RefundWorkflow, *extra_workflows],
        activities=[*activities.all(), *extra_activities],
        activity_executor=ThreadPoolExecutor(max_workers=8),
    )


@asynccontextmanager
async def ledger_pool(database_url: str, max_size: int = 10) -> AsyncIterator[asyncpg.Pool]:
    """A connection pool on a migrated database, closed on the way out."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=max_size)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn)
        yield pool
    finally:
        await pool.close()


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (or forever); activities in flight finish before it returns."""
    client = await connect(settings)
    async with ledger_pool(settings.require_database_url()) as pool:
        activities = RefundActivities(build_providers(settings), Ledger(pool))
        worker = refund_worker(client, settings.task_queue, activities)
        async with worker:
            await (stop or asyncio.Event()).wait()
