"""``refunds serve``: the HTTP API in the foreground until Ctrl-C."""

from __future__ import annotations

import asyncio
import os
from contextlib import AsyncExitStack
from dataclasses import replace

import click

from starters.cli_support import load_settings, one_line_errors
from starters.http_api import NO_TOKENS
from starters.http_server import serve_http
from starters.processes import run_until_interrupted
from starters.receiver import order_book_for, receiver_routers
from workers.client import connect
from workers.codec import data_converter_for
from workers.worker import ledger_pool

API_METRICS_ADDRESS = "127.0.0.1:9465"


@click.command()
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    help="When no REFUNDS_API_TOKENS are set, let every caller act as admin 'anonymous' "
    "(a trial on your own machine only).",
)
def serve(insecure_no_auth: bool) -> None:
    """Serve the HTTP API on REFUNDS_HTTP_ADDRESS (default 127.0.0.1:8000) until Ctrl-C.

    Callers authenticate with `Authorization: Bearer <token>`, tokens from REFUNDS_API_TOKENS
    (token:role:identity, roles requester, reviewer, admin). On Ctrl-C requests in flight
    finish before it exits. OpenAPI at /openapi.json, docs at /docs.
    """
    settings = load_settings()
    if not os.environ.get("REFUNDS_METRICS_ADDRESS", "").strip():
        # Beside a worker on the same machine (on 9464), the API's endpoint takes the next port.
        ops = replace(settings.ops, metrics_address=API_METRICS_ADDRESS)
        settings = settings.with_overrides(ops=ops)
    with one_line_errors():
        data_converter_for(settings)  # no keys: refuse, rather than store plaintext
    if not settings.api_tokens and not insecure_no_auth:
        raise click.ClickException(NO_TOKENS)
    if settings.api_tokens and insecure_no_auth:
        click.echo("--insecure-no-auth ignored: API tokens are configured", err=True)

    def listening(url: str) -> None:
        click.echo(f"HTTP API on {url} (docs {url}/docs), Temporal at {settings.temporal_address}")
        click.echo("Ctrl-C stops it")

    async def service(stop: asyncio.Event) -> None:
        client = await connect(settings, serve_metrics=True)
        async with AsyncExitStack() as stack:
            pool = None
            if settings.database_url:  # Adyen's payments, the order store
                pool = await stack.enter_async_context(
                    ledger_pool(settings.database_url, max_size=4)
                )
            orders = order_book_for(settings, pool)  # quotes, and the shop's order events
            await serve_http(
                settings,
                client,
                stop,
                insecure_no_auth=insecure_no_auth,
                listening=listening,
                routers=receiver_routers(client, settings, pool, orders),
                orders=orders,
            )
        click.echo("stopped")

    run_until_interrupted(service)
