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
from starters.codec_server import serve_codec
from starters.http_server import serve_http
from starters.receiver import order_book_for, receiver_routers
from workers.client import connect
from workers.ops_settings import OpsSettings, parse_encryption_keys
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
        ops=_with_local_key(settings.ops, made.encryption_key),
        api_tokens=settings.api_tokens
        or parse_api_tokens(made.api_tokens, "REFUNDS_API_TOKENS (made by the local stack)"),
    )


async def serve_api(
    settings: Settings, stop: asyncio.Event, listening: Callable[[str], None] | None = None
) -> None:
    """The HTTP API with the whole webhook receiver (Adyen's route keeps its payments in the
    database, when there is one) until ``stop`` is set."""
    client = await connect(settings, serve_metrics=True)
    async with AsyncExitStack() as stack:
        pool = None
        if settings.database_url:
            pool = await stack.enter_async_context(ledger_pool(settings.database_url, max_size=4))
        orders = order_book_for(settings, pool)
        await serve_http(
            settings,
            client,
            stop,
            listening=listening,
            routers=receiver_routers(client, settings, pool, orders),
            orders=orders,
        )


def _with_local_key(ops: OpsSettings, local_key: str) -> OpsSettings:
    """The configured keys, or the stack's own (made under the state folder), unless
    REFUNDS_ALLOW_UNENCRYPTED asks for plaintext histories."""
    if ops.encryption_keys or ops.allow_unencrypted:
        return ops
    return replace(ops, encryption_keys=parse_encryption_keys(local_key))


def uses_local_key(settings: Settings) -> bool:
    """Whether the stack encrypts with the key it made (so ``refunds dev`` says so)."""
    made = LocalSecrets.load_or_create(settings.state_dir.resolve())
    return settings.ops.encryption_keys == parse_encryption_keys(made.encryption_key)


@asynccontextmanager
async def own_stack(
    settings: Settings,
    with_worker: bool = True,
    with_api: bool = True,
    listening: Callable[[RunningStack, Settings, str | None], None] | None = None,
) -> AsyncIterator[Settings]:
    """Bring up the embedded stack, with a worker and the API (and webhook receiver)."""
    settings = with_local_secrets(settings)
    # The UI decodes through our codec server (beside the API), for whoever may see it.
    codec = f"http://{settings.ops.codec_address}" if with_api else None
    async with LocalStack(settings, with_receiver=with_api, ui_codec_endpoint=codec) as stack:
        ready = pointed_at(settings, stack)
        if with_api and stack.temporal_ui:  # the UI's own origin may call the codec server
            origins = (*ready.ops.codec_cors_origins, stack.temporal_ui)
            ready = ready.with_overrides(ops=replace(ready.ops, codec_cors_origins=origins))
        stop = asyncio.Event()
        api_urls: asyncio.Queue[str] = asyncio.Queue()
        codec_urls: asyncio.Queue[str] = asyncio.Queue()
        services = []
        if with_worker:
            services.append(asyncio.create_task(run_worker(ready, stop)))
        if with_api:
            services.append(asyncio.create_task(serve_api(ready, stop, api_urls.put_nowait)))
            services.append(asyncio.create_task(serve_codec(ready, stop, codec_urls.put_nowait)))
        try:
            url = None
            if with_api:
                url = await _first(api_urls, services)
                await _first(codec_urls, services)
            if listening:
                listening(stack, ready, url)
            yield ready
        finally:
            stop.set()
            await asyncio.gather(*services, return_exceptions=True)


async def _first(urls: asyncio.Queue[str], services: list[asyncio.Task[None]]) -> str:
    """The URL a service announces once it listens; a service that fails first (a port
    taken, say) raises its own error here, not a timeout 30 s later."""
    announced = asyncio.ensure_future(urls.get())
    done, _ = await asyncio.wait(
        [announced, *services], timeout=30, return_when=asyncio.FIRST_COMPLETED
    )
    if announced in done:
        return announced.result()
    announced.cancel()
    for failed in done:
        failed.result()  # raises what stopped it
    raise TimeoutError("a service of the local stack did not start listening within 30 s")


@asynccontextmanager
async def local_stack(settings: Settings, with_worker: bool = True) -> AsyncIterator[Settings]:
    """Yield settings pointed at a running ``refunds dev`` stack, or at one brought up for
    this command (``own_stack``), stopped on the way out."""
    running = read_running_stack(settings.state_dir.resolve())
    if running is not None:
        click.echo(f"using the stack of refunds dev (pid {running.pid})", err=True)
        yield pointed_at(with_local_secrets(settings), running)
        return
    parts = "Temporal, PostgreSQL, provider sandboxes" + (", worker, API" if with_worker else "")
    click.echo(f"starting the embedded stack ({parts})...", err=True)
    async with own_stack(settings, with_worker, with_api=with_worker) as ready:
        yield ready
