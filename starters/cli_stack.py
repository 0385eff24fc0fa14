"""``refunds dev``, ``refunds demo`` and ``refunds bench``: the embedded local stack at work."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import replace

import click

from deploy.local.stack import RunningStack
from starters.cli_support import load_settings, run_async
from starters.demo import (
    SCENARIOS,
    demo_passed,
    demo_summary,
    new_run_id,
    prepare_refunds,
    run_refunds,
    summary_table,
)
from starters.processes import run_until_interrupted
from starters.stack_session import local_stack, own_stack, uses_local_key
from workers.client import connect
from workers.ops_settings import format_encryption_keys
from workers.settings import Settings


@click.command()
@click.option("--no-worker", is_flag=True, help="Everything but the worker (run `refunds worker`).")
@click.option(
    "--trace-console",
    is_flag=True,
    help="Print every trace span to stderr (as REFUNDS_TRACE_CONSOLE=true does).",
)
def dev(no_worker: bool, trace_console: bool) -> None:
    """Run the whole local stack in the foreground until Ctrl-C."""
    settings = load_settings()
    if trace_console:
        settings = settings.with_overrides(ops=replace(settings.ops, trace_console=True))

    async def serve(stop: asyncio.Event) -> None:
        async with own_stack(settings, with_worker=not no_worker, listening=_describe_stack):
            await stop.wait()
        click.echo("stopped")

    run_until_interrupted(serve)


def _describe_stack(stack: RunningStack, ready: Settings, api: str | None) -> None:
    click.echo(f"Temporal      {stack.temporal_address}   UI {stack.temporal_ui or '-'}")
    click.echo(f"PostgreSQL    {stack.database_url}")
    click.echo(f"Stripe        {stack.stripe_api_base or 'api.stripe.com'}")
    click.echo(f"PayPal        {stack.paypal_api_base or 'PayPal (' + ready.paypal.mode + ')'}")
    click.echo(f"Adyen         {stack.adyen_checkout_base or 'Adyen (configured)'}")
    hooks = f"{api}/webhooks/{{stripe,paypal,adyen,shop}}"
    click.echo(f"HTTP API      {api}   docs {api}/docs   webhooks {hooks}")
    click.echo(f"API tokens    {ready.state_dir.resolve() / 'secrets.json'}")
    if ready.ops.encryption_keys:
        made = " (a local key made under the state folder)" if uses_local_key(ready) else ""
        click.echo(f"Payloads      encrypted{made}; codec server http://{ready.ops.codec_address}")
    else:
        click.echo("Payloads      NOT encrypted (REFUNDS_ALLOW_UNENCRYPTED)")
    if ready.ops.metrics_address:
        click.echo(f"Metrics       http://{ready.ops.metrics_address}/metrics")
    click.echo("Environment for other shells:")
    click.echo(f"  export REFUNDS_STATE_DIR='{ready.state_dir}'")
    click.echo(f"  export TEMPORAL_ADDRESS={stack.temporal_address}")
    click.echo(f"  export REFUNDS_DATABASE_URL='{stack.database_url}'")
    if ready.money.settlement_currency:
        click.echo(f"  export REFUNDS_SETTLEMENT_CURRENCY={ready.money.settlement_currency}")
    if ready.ops.encryption_keys and uses_local_key(ready):  # a configured key is not printed
        keys = format_encryption_keys(ready.ops.encryption_keys)
        click.echo(f"  export REFUNDS_ENCRYPTION_KEYS='{keys}'")
    if stack.stripe_api_base:
        click.echo(f"  export STRIPE_API_BASE={stack.stripe_api_base}")
        click.echo(f"  export STRIPE_API_KEY={ready.stripe_api_key}")
    if stack.paypal_api_base:
        click.echo(f"  export PAYPAL_API_BASE={stack.paypal_api_base}")
        click.echo(f"  export PAYPAL_CLIENT_ID={ready.paypal.client_id}")
        click.echo(f"  export PAYPAL_CLIENT_SECRET={ready.paypal.client_secret}")
    if stack.adyen_checkout_base:
        click.echo(f"  export ADYEN_CHECKOUT_BASE={stack.adyen_checkout_base}")
        click.echo(f"  export ADYEN_API_KEY={ready.adyen.api_key}")
        click.echo(f"  export ADYEN_MERCHANT_ACCOUNT={ready.adyen.merchant_account}")
    click.echo("Try: refunds demo --count 8   (or refunds start --help)")
    click.echo("Ctrl-C stops everything")


def demo_settings(settings: Settings) -> Settings:
    """The demo's own worker reviews on a short clock, so one refund can be seen to expire."""
    if "REFUNDS_REVIEW_EXPIRE_AFTER" in os.environ or "REFUNDS_REVIEW_ESCALATE_AFTER" in os.environ:
        return settings
    policy = replace(settings.risk_policy, escalate_after_s=4, expire_after_s=10)
    return settings.with_overrides(risk_policy=policy)


@click.command()
@click.option(
    "--count",
    default=len(SCENARIOS),
    show_default=True,
    help="How many refunds to push through (the scenarios in turn).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object: by_status, ledger, seconds."
)
@run_async
async def demo(count: int, as_json: bool) -> None:
    """Pay for and refund a realistic mix; exit 0 when all are final and the books verify."""
    if count < 1:
        raise click.BadParameter("must be at least 1", param_hint="--count")
    started = time.monotonic()
    async with local_stack(demo_settings(load_settings())) as settings:
        client = await connect(settings)
        refunds = await prepare_refunds(settings, count, new_run_id())

        def progress(done: int, total: int) -> None:
            if done == total or done % 10 == 0:
                click.echo(f"{done}/{total} refunds final", err=True)

        refunds = await run_refunds(client, settings, refunds, progress)
        summary = await demo_summary(settings, refunds, time.monotonic() - started)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(summary_table(summary))
    if not demo_passed(summary):
        sys.exit(1)


@click.command()
@click.option("--count", default=200, show_default=True, help="Refunds to measure.")
@click.option("--concurrency", default=20, show_default=True, help="Refunds in flight at once.")
@click.option("--json", "as_json", is_flag=True)
def bench(count: int, concurrency: int, as_json: bool) -> None:
    """Measure refunds/s, latency, history size, actions, worker CPU and memory."""
    from starters.bench import run_bench

    run_bench(count, concurrency, as_json)
