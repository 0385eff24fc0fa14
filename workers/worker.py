"""The refund worker: polls the task queues and runs the workflows and their activities.

One worker process polls ``refunds`` (workflows, the ledger, risk, notices) and each
configured provider's own queue (``refunds-stripe``, ``refunds-paypal``, ``refunds-adyen``),
where the calls that move money run under a server-side rate limit per provider. A worker may
poll all of them or a chosen few (``REFUNDS_WORKER_QUEUES``, ``refunds worker --queues``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from typing import Any

import asyncpg
from temporalio.client import Client
from temporalio.worker import Worker

from activities.disputes import DisputeActivities, DisputeRegistry
from activities.events import EventPublisher
from activities.fx import FxBook
from activities.ledger import Ledger
from activities.notifications import ReviewNotifications
from activities.order_activities import OrderActivities
from activities.orders import OrderBook
from activities.providers import PaymentProvider
from activities.refund_activities import RefundActivities
from activities.reservations import Clock
from activities.risk import RiskActivities, RiskModel, RiskPolicy
from activities.stripe_provider import StripeProvider
from deploy.migrations import apply_migrations
from workers.client import connect
from workers.money_settings import MoneySettings
from workers.provider_settings import DEFAULT_RATE_LIMITS, WORKER_QUEUE_NAMES
from workers.settings import Settings, SettingsError
from workflows.disputes import RecordDisputeWorkflow
from workflows.late_failure import RefundLateFailureWorkflow
from workflows.late_settlement import RefundLateSettlementWorkflow
from workflows.models import Psp
from workflows.refund import RefundWorkflow
from workflows.steps import provider_queue

GRACEFUL_SHUTDOWN = timedelta(seconds=60)
PROVIDER_CALLS_AT_ONCE = 16


def build_providers(
    settings: Settings, required: bool = False, pool: asyncpg.Pool | None = None
) -> dict[Psp, PaymentProvider]:
    """The provider adapters this worker can use; ``required``: at least one, or stop.

    Adyen's adapter needs ``pool``: Adyen has no payment read API, so it reads the payments
    its notifications told of from PostgreSQL.
    """
    providers: dict[Psp, PaymentProvider] = {}
    if settings.stripe_api_key:
        providers[Psp.STRIPE] = StripeProvider(settings.stripe_api_key, settings.stripe_api_base)
    paypal, adyen = settings.paypal, settings.adyen
    if paypal.configured and paypal.client_id and paypal.client_secret:
        from activities.paypal_provider import PayPalProvider

        providers[Psp.PAYPAL] = PayPalProvider(
            paypal.client_id, paypal.client_secret, paypal.api_base, paypal.mode
        )
    if adyen.configured and adyen.api_key and adyen.merchant_account and pool is not None:
        from activities.adyen_payments import AdyenPaymentBook
        from activities.adyen_provider import AdyenProvider

        providers[Psp.ADYEN] = AdyenProvider(
            adyen.api_key,
            adyen.merchant_account,
            AdyenPaymentBook(pool),
            adyen.checkout_base,
            adyen.settlement_timeout_s,
            adyen.auto_capture,
        )
    if required and not providers and not adyen.configured:
        raise SettingsError(
            "no payment provider is configured: set STRIPE_API_KEY, PAYPAL_CLIENT_ID and "
            "PAYPAL_CLIENT_SECRET, or ADYEN_API_KEY and ADYEN_MERCHANT_ACCOUNT (with their API "
            "base for a sandbox), or run `refunds dev`"
        )
    return providers


def worker_activities(
    providers: Mapping[Psp, PaymentProvider],
    pool: asyncpg.Pool,
    policy: RiskPolicy,
    model: RiskModel | None = None,
    publisher: EventPublisher | None = None,
    money: MoneySettings | None = None,
    now: Clock | None = None,
) -> list[Callable[..., Any]]:
    """Every activity the refund workflow calls, over one ledger pool. ``money``: the refund
    policy, the order source and the settlement currency; ``now``: the refund window's clock."""
    disputes = DisputeRegistry(pool)
    money = money or MoneySettings()
    orders = OrderBook.configured(pool, money.order_source)
    refunds = RefundActivities(
        providers,
        Ledger(pool),
        disputes,
        policy=money.refund_policy,
        claims=orders,
        now=now,
        fx=FxBook(pool, money.settlement_currency),
    )
    return [
        *refunds.all(),
        *OrderActivities(orders, money.refund_policy).all(),
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
            RefundLateSettlementWorkflow,
            RecordDisputeWorkflow,
            *extra_workflows,
        ],
        activities=list(activities),
        activity_executor=ThreadPoolExecutor(max_workers=8),
        # On SIGTERM, running activities get this long to finish before they are cancelled.
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )


def refund_workers(
    client: Client,
    task_queue: str,
    activities: Sequence[Callable[..., Any]],
    providers: Iterable[Psp],
    queues: Sequence[str] = WORKER_QUEUE_NAMES,
    rate_limits: Mapping[Psp, float] = DEFAULT_RATE_LIMITS,
    extra_workflows: Sequence[type] = (),
) -> list[Worker]:
    """The workers for the chosen ``queues``: ``refunds`` and the providers' own queues, each of
    those only for a provider this worker has an adapter for. The rate limit is enforced by the
    server across every worker of that queue, so one throttled provider never slows the rest.
    """
    workers = []
    if "refunds" in queues:
        workers.append(refund_worker(client, task_queue, activities, extra_workflows))
    for psp in providers:
        if psp.value in queues:
            workers.append(
                Worker(
                    client,
                    task_queue=provider_queue(task_queue, psp),
                    activities=list(activities),
                    max_task_queue_activities_per_second=rate_limits.get(psp),
                    # Bounded like the adapters' own thread pools: a slow provider holds
                    # at most this many calls, never the process's every slot.
                    max_concurrent_activities=PROVIDER_CALLS_AT_ONCE,
                    graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
                )
            )
    return workers


@asynccontextmanager
async def running(workers: Sequence[Worker]) -> AsyncIterator[None]:
    """Run every worker until the block ends; each stops (gracefully) on the way out."""
    async with AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        yield


@asynccontextmanager
async def ledger_pool(
    database_url: str, max_size: int = 10, migrate: bool = True
) -> AsyncIterator[asyncpg.Pool]:
    """A connection pool on the ledger, closed on the way out.

    ``migrate`` brings the schema up to date (workers, the local stack); readers such as
    ``refunds ledger verify`` pass False, so they never change the database they check.
    """
    try:
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=max_size)
    except (OSError, asyncpg.InterfaceError) as exc:  # refused, no such socket, timed out
        raise SettingsError(
            f"cannot reach PostgreSQL at REFUNDS_DATABASE_URL ({type(exc).__name__}: {exc}); "
            "is it running (`refunds dev` runs one)?"
        ) from exc
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
    client = await connect(settings, serve_metrics=True)
    async with ledger_pool(settings.require_database_url()) as pool:
        model = RiskModel.load(settings.risk_model) if settings.risk_model else None
        publisher = EventPublisher(settings.event_subscribers, settings.events_secret)
        providers = build_providers(settings, pool=pool)
        activities = worker_activities(
            providers, pool, settings.risk_policy, model, publisher, settings.money
        )
        workers = refund_workers(
            client,
            settings.task_queue,
            activities,
            providers,
            settings.worker_queues,
            settings.provider_rate_limits,
        )
        async with running(workers):
            await (stop or asyncio.Event()).wait()
