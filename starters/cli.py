"""The ``refunds`` command line. Every command has ``--help``; data commands have ``--json``."""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

import click
from temporalio.service import RPCError, RPCStatusCode

from starters.cli_support import emit, load_settings, one_line_errors, run_async
from starters.client import refund_status, start_refund, visible_status, workflow_id
from workers.client import connect
from workers.logging_setup import configure_logging
from workers.settings import Settings
from workflows.currencies import format_amount
from workflows.models import Psp, RefundReason, RefundRequest, RefundResult


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="refunds")
def cli() -> None:
    """Refund automation on Temporal: validate, reserve, refund or void, post the ledger."""
    configure_logging()


@cli.command()
@click.option(
    "--queues",
    help="Which queues to poll, comma-separated: refunds (workflows, ledger), stripe, paypal, "
    "adyen (each provider's calls). Default: REFUNDS_WORKER_QUEUES, or all.",
)
def worker(queues: str | None) -> None:
    """Run a refund worker (polls REFUNDS_TASK_QUEUE and the providers' queues until Ctrl-C).

    Each provider's calls run on their own queue (REFUNDS_TASK_QUEUE-stripe, -paypal, -adyen)
    under a server-side rate limit (REFUNDS_PROVIDER_RATE_LIMITS, e.g. paypal=20): a slow or
    throttled provider never holds up the others. A provider queue is polled only when its
    credentials are configured.
    """
    from starters.processes import run_until_interrupted
    from workers.codec import data_converter_for
    from workers.provider_settings import ProviderSettingsError, worker_queues_from_text
    from workers.worker import build_providers, run_worker

    settings = load_settings()
    with one_line_errors():
        settings.require_database_url()
        build_providers(settings, required=True)
        data_converter_for(settings)  # no keys: refuse, rather than store plaintext
    if queues is not None:
        if not queues.strip(", "):
            raise click.BadParameter("name at least one queue", param_hint="--queues")
        try:
            chosen = worker_queues_from_text(queues, "--queues")
        except ProviderSettingsError as exc:
            raise click.ClickException(str(exc)) from exc
        unconfigured = [name for name in chosen if name in CREDENTIALS and not _has(settings, name)]
        if unconfigured:
            name = unconfigured[0]
            raise click.ClickException(
                f"--queues {name}: this worker has no {name} credentials ({CREDENTIALS[name]})"
            )
        settings = settings.with_overrides(worker_queues=chosen)
    polled = ", ".join(
        settings.task_queue if name == "refunds" else f"{settings.task_queue}-{name}"
        for name in settings.worker_queues
        if name == "refunds" or _has(settings, name)
    )
    click.echo(f"worker polling {polled} at {settings.temporal_address}")
    run_until_interrupted(lambda stop: run_worker(settings, stop))


CREDENTIALS = {
    "stripe": "STRIPE_API_KEY",
    "paypal": "PAYPAL_CLIENT_ID, PAYPAL_CLIENT_SECRET",
    "adyen": "ADYEN_API_KEY, ADYEN_MERCHANT_ACCOUNT",
}


def _has(settings: Settings, provider: str) -> bool:
    """Whether the worker has an adapter for ``provider``, so polls its queue."""
    return {
        "stripe": bool(settings.stripe_api_key),
        "paypal": settings.paypal.configured,
        "adyen": settings.adyen.configured,
    }[provider]


def _read_request_file(path: str) -> dict[str, Any]:
    try:
        text = click.open_file(path).read()
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise click.ClickException(f"{path} must hold one JSON object (a RefundRequest)")
    return data


@cli.command()
@click.option("--file", "request_file", help="A RefundRequest as JSON ('-' reads stdin).")
@click.option("--request-id", help="Your idempotency key (an RMA or event id).")
@click.option("--psp", type=click.Choice([p.value for p in Psp]))
@click.option("--payment-id", help="pi_/ch_ (Stripe), capture/authorization id, pspReference.")
@click.option("--amount", type=int, help="Minor units; omit to refund all that is refundable.")
@click.option("--currency", help="ISO 4217 code, either case.")
@click.option("--reason", type=click.Choice([r.value for r in RefundReason]))
@click.option("--customer-id")
@click.option("--requested-by")
@click.option("--order-id")
@click.option(
    "--line",
    "lines",
    multiple=True,
    metavar="LINE=QTY",
    help="A return: an order line and how many of its units (repeatable; needs --order-id).",
)
@click.option(
    "--refund-shipping/--keep-shipping",
    default=None,
    help="With --line: ask for the shipping back, or keep it (default: the refund policy).",
)
@click.option("--metadata", multiple=True, help="key=value, repeatable.")
@click.option("--wait/--no-wait", default=False, help="Wait for the final result.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@run_async
async def start(request_file: str | None, wait: bool, as_json: bool, **fields: Any) -> None:
    """Start a refund from flags or a JSON file; a repeated request id joins the same refund."""
    data: dict[str, Any] = _read_request_file(request_file) if request_file else {}
    returned = fields.pop("lines")
    if returned:
        from starters.cli_quote import return_line

        data["lines"] = [return_line(text).model_dump() for text in returned]
    pairs = fields.pop("metadata")
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.ClickException(f"--metadata expects key=value, got {pair!r}")
        data.setdefault("metadata", {})[key] = value
    data.update({key: value for key, value in fields.items() if value is not None})
    request = RefundRequest.model_validate(data)
    settings = load_settings()
    client = await connect(settings)
    handle = await start_refund(client, request, settings.task_queue)
    if wait:
        result: RefundResult = await handle.result()
        emit(result, as_json, _describe_result(result))
        return
    status = await visible_status(handle)
    emit(
        {"id": request.request_id, "workflow_id": handle.id, "status": status},
        as_json,
        f"{handle.id} {status} (follow it with `refunds status {request.request_id}`)",
    )


def _describe_result(result: RefundResult) -> str:
    line = f"refund-{result.request_id} {result.status.value}: {result.amount_refunded} "
    line += f"{result.currency} refunded"
    if result.psp_refund_id:
        line += f" ({result.psp_refund_id})"
    return line + (f"; {result.reason}" if result.reason else "")


@cli.command()
@click.argument("request_id")
@click.option("--json", "as_json", is_flag=True)
@run_async
async def status(request_id: str, as_json: bool) -> None:
    """Show a refund's status (the workflow's `status` query)."""
    client = await connect(load_settings())
    try:
        view = await refund_status(client, request_id)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise click.ClickException(
                f"no refund {request_id} ({workflow_id(request_id)})"
            ) from exc
        raise
    text = f"{workflow_id(request_id)} {view.status.value}"
    asked = "not decided" if view.amount is None else format_amount(view.amount, view.currency)
    text += f": amount {asked}, refunded {format_amount(view.amount_refunded, view.currency)}"
    if view.psp_refund_id:
        text += f", provider refund {view.psp_refund_id}"
    if view.last_error:
        text += f"\n  {view.last_error}"
    emit(view, as_json, text)


def _register_subcommands() -> None:
    from starters.cli_codec import codec_server
    from starters.cli_fx import fx
    from starters.cli_ledger import ledger
    from starters.cli_orders import orders
    from starters.cli_quote import quote
    from starters.cli_review import approve, cancel, reject, reviews
    from starters.cli_risk import risk
    from starters.cli_serve import serve
    from starters.cli_stack import bench, demo, dev

    cli.add_command(ledger)
    cli.add_command(fx)
    cli.add_command(orders)
    cli.add_command(quote)
    cli.add_command(dev)
    cli.add_command(demo)
    cli.add_command(bench)
    for command in (reviews, approve, reject, cancel, risk, serve, codec_server):
        cli.add_command(command)


_register_subcommands()


def main() -> None:
    """The ``refunds`` entry point.

    It leaves with ``os._exit`` once output is flushed: the Temporal client's Rust threads can
    abort CPython's finalisation ("PyGILState_Release ... finalizing", sdk-python issue 300),
    which would turn a finished command into a crash. Every resource is closed before this.
    """
    try:
        cli.main(prog_name="refunds")
        code = 0
    except SystemExit as leaving:
        code = leaving.code if isinstance(leaving.code, int) else (0 if leaving.code is None else 1)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
