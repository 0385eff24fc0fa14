"""The stack a command works against: the one a running ``refunds dev`` serves, or its own.

A stack of one's own runs the worker and the HTTP API (with the webhook receiver, which the
Stripe sandbox delivers its signed events to) in this process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace

import click

from deploy.local.secrets import LocalSecrets
from deploy.local.stack import LocalStack, RunningStack, read_running_stack
from starters.cli_support import pointed_at
from starters.http_server import serve_http
from starters.receiver import receiver_routers
from workers.client import connect
from workers.settings import Settings, parse_api_tokens
from workers.worker import ledger_pool, run_worker


def with_local_secrets(settings: Settings) -> Settings:
    """Fill webhook secrets and API tokens the configuration leaves unset (local stack only)."""
    made = LocalSecrets.load_or_create(settings.state_dir.resolve())
    return settings.with_overrides(
        stripe_webhook_secret=settings.stripe_webhook_secret or made.stripe_webhook_secret,
        shop_webhook_secret=settings.shop_webhook_secret or made.shop_webhook_secret,
        paypal=replace(
            settings.paypal, webhook_id=settings.paypal.webhook_id or made.paypal_webhook_id
        ),
        adyen=replace(settings.adyen, hmac_key=settings.adyen.hmac_key or made.adyen_hmac_key),
        api_tokens=settings.api_tokens
        or parse_api_tokens(made.api_tokens, "REFUNDS_API_TOKENS (made by the local stack)"),
    )


async def serve_api(
    settings: Settings, stop: asyncio.Event, listening: Callable[[str], None] | None = None
) -> None:
    """The HTTP API with the whole webhook receiver (Adyen's route keeps its payments in the
    database, when there is one) until ``stop`` is set."""
    client = await connect(settings)
    async with AsyncExitStack() as stack:
        pool = None
        if settings.database_url:
            pool = await stack.enter_async_context(ledger_pool(settings.database_url, max_size=4))
        await serve_http(
            settings,
            client,
            stop,
            listening=listening,
            routers=receiver_routers(client, settings, pool),
        )


@asynccontextmanager
async def own_stack(
    settings: Settings,
    with_worker: bool = True,
    with_api: bool = True,
    listening: Callable[[RunningStack, Settings, str | None], None] | None = None,
) -> AsyncIterator[Settings]:
    """Bring up the embedded stack, with a worker and the API (and webhook receiver)."""
    settings = with_local_secrets(settings)
    async with LocalStack(settings, with_receiver=with_api) as stack:
        ready = pointed_at(settings, stack)
        stop = asyncio.Event()
        urls: asyncio.Queue[str] = asyncio.Queue()
        services = []
        if with_worker:
            services.append(asyncio.create_task(run_worker(ready, stop)))
        if with_api:
            services.append(asyncio.create_task(serve_api(ready, stop, urls.put_nowait)))
        try:
            url = None
            if with_api:
                async with asyncio.timeout(30):
                    url = await urls.get()
            if listening:
                listening(stack, ready, url)
            yield ready
        finally:
            stop.set()
            await asyncio.gather(*services, return_exceptions=True)


@asynccontextmanager
async def local_stack(settings: Settings, with_worker: bool = True) -> AsyncIterator[Settings]:
    """Yield settings pointed at a running ``refunds dev`` stack, or at one brought up for
    this command (``own_stack``), stopped on the way out."""
    running = read_running_stack(settings.state_dir.resolve())
    if running is not None:
        click.echo(f"using the stack of refunds dev (pid {running.pid})", err=True)
        yield pointed_at(settings, running)
        return
    parts = "Temporal, PostgreSQL, provider sandboxes" + (", worker, API" if with_worker else "")
    click.echo(f"starting the embedded stack ({parts})...", err=True)
    async with own_stack(settings, with_worker, with_api=with_worker) as ready:
        yield ready
