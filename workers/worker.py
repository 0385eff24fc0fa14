"""The refund worker: polls the task queue and runs the workflow and its activities."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import asyncpg
from temporalio.client import Client
from temporalio.worker import Worker

from activities.disputes import DisputeActivities, DisputeRegistry
from activities.events import EventPublisher
from activities.ledger import Ledger
from activities.notifications import ReviewNotifications
from activities.providers import PaymentProvider
from activities.refund_activities import RefundActivities
from activities.risk import RiskActivities, RiskModel, RiskPolicy
from activities.stripe_provider import StripeProvider
from deploy.migrations import apply_migrations
from workers.client import connect
from workers.settings import Settings, SettingsError
from workflows.disputes import RecordDisputeWorkflow
from workflows.late_failure import RefundLateFailureWorkflow
from workflows.models import Psp
from workflows.refund import RefundWorkflow


def build_providers(settings: Settings, required: bool = False) -> dict[Psp, PaymentProvider]:
    """The provider adapters this worker can use; ``required``: at least one, or stop."""
    providers: dict[Psp, PaymentProvider] = {}
    if settings.stripe_api_key:
        providers[Psp.STRIPE] = StripeProvider(settings.stripe_api_key, settings.stripe_api_base)
    if required and not providers:
        raise SettingsError(
            "no payment provider is configured: set STRIPE_API_KEY (with STRIPE_API_BASE for "
            "a sandbox), or run `refunds dev`"
        )
    return providers


def worker_activities(
    providers: Mapping[Psp, PaymentProvider],
    pool: asyncpg.Pool,
    policy: RiskPolicy,
    model: RiskModel | None = None,
    publisher: EventPublisher | None = None,
) -> list[Callable[..., Any]]:
    """Every activity the refund workflow calls, over one ledger pool."""
    disputes = DisputeRegistry(pool)
    return [
        *RefundActivities(providers, Ledger(pool), disputes).all(),
        *DisputeActivities(disputes).all(),
        *RiskActivities(
            pool, policy, model, notify_outcomes=bool(publisher and publisher.subscribers)
        ).all(),
        *ReviewNotifications(publisher).all(),
    ]


def refund_worker(
    client: Client,
    task_queue: str,
    activities: Sequence[Callable[..., Any]],
    extra_workflows: Sequence[type] = (),
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[
            RefundWorkflow,
            RefundLateFailureWorkflow,
            RecordDisputeWorkflow,
            *extra_workflows,
        ],
        activities=list(activities),
        activity_executor=ThreadPoolExecutor(max_workers=8),
        # On SIGTERM, running activities get this long to finish before they are cancelled.
        graceful_shutdown_timeout=timedelta(seconds=60),
    )


@asynccontextmanager
async def ledger_pool(
    database_url: str, max_size: int = 10, migrate: bool = True
) -> AsyncIterator[asyncpg.Pool]:
    """A connection pool on the ledger, closed on the way out.

    ``migrate`` brings the schema up to date (workers, the local stack); readers such as
    ``refunds ledger verify`` pass False, so they never change the database they check.
    """
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=max_size)
    try:
        async with pool.acquire() as conn:
            if migrate:
                await apply_migrations(conn)
            elif await conn.fetchval("SELECT to_regclass('ledger_transfers')") is None:
                raise SettingsError(
                    "REFUNDS_DATABASE_URL points at a database with no ledger in it "
                    "(no ledger_transfers table)"
                )
        yield pool
    finally:
        await pool.close()


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (or forever); activities in flight finish before it returns."""
    client = await connect(settings)
    async with ledger_pool(settings.require_database_url()) as pool:
        model = RiskModel.load(settings.risk_model) if settings.risk_model else None
        publisher = EventPublisher(settings.event_subscribers, settings.events_secret)
        activities = worker_activities(
            build_providers(settings), pool, settings.risk_policy, model, publisher
        )
        worker = refund_worker(client, settings.task_queue, activities)
        async with worker:
            await (stop or asyncio.Event()).wait()
