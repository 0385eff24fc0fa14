"""``refunds fx``: the exchange rates that value foreign-currency refunds in the settlement
currency (REFUNDS_SETTLEMENT_CURRENCY) when the provider tells no rate of its own.

``refunds fx import FILE`` takes CSV rows ``date,currency,settlement_currency,rate`` (an
amount in ``currency`` times ``rate`` is its value in ``settlement_currency`` from ``date``
on), all in one transaction or none; ``refunds fx rates`` lists what the table holds.
"""

from __future__ import annotations

from pathlib import Path

import click

from activities.fx_rates import RatesFileError, import_rates, list_rates, parse_rates
from starters.cli_support import emit, load_settings, run_async
from workers.worker import ledger_pool


@click.group()
def fx() -> None:
    """Exchange rates for valuing refunds in the settlement currency (REFUNDS_DATABASE_URL)."""


@fx.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--json", "as_json", is_flag=True)
@run_async
async def import_file(file: str, as_json: bool) -> None:
    """Import rates from a CSV FILE ('-' reads stdin): date,currency,settlement_currency,rate.

    Dates are ISO (2026-01-31 is midnight UTC; a time may carry an offset). The same row again
    changes nothing; a different rate for a pair and date already held is refused.
    """
    try:
        with click.open_file(file, encoding="utf-8") as opened:
            text = opened.read()
    except OSError as exc:
        raise click.ClickException(f"cannot read {file}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{file} is not UTF-8 text: {exc.reason}") from exc
    source = "stdin" if file == "-" else f"file {Path(file).name}"
    url = load_settings().require_database_url()
    try:
        rates = parse_rates(text, source)
        async with ledger_pool(url) as pool, pool.acquire() as conn:
            summary = await import_rates(conn, rates)
    except RatesFileError as exc:
        raise click.ClickException(f"{file}: {exc}; nothing was imported") from exc
    emit(
        {"file": file, "imported": summary.added, "unchanged": summary.unchanged},
        as_json,
        f"{summary.added} rates imported from {file}"
        + (f" ({summary.unchanged} already held)" if summary.unchanged else ""),
    )


@fx.command()
@click.option("--json", "as_json", is_flag=True)
@run_async
async def rates(as_json: bool) -> None:
    """List the rates table: pair, valid from, rate, where it came from."""
    settings = load_settings()
    url = settings.require_database_url()
    async with ledger_pool(url, migrate=False) as pool, pool.acquire() as conn:
        if await conn.fetchval("SELECT to_regclass('fx_rates')") is None:
            raise click.ClickException(
                "this database has no rates table yet: `refunds fx import FILE` or a "
                "worker's start creates it"
            )
        held = await list_rates(conn)
    lines = [
        f"{rate.currency}->{rate.settlement_currency}  from {rate.valid_from.isoformat()}  "
        f"{rate.rate}  ({rate.source})"
        for rate in held
    ]
    emit(
        {
            "settlement_currency": settings.money.settlement_currency,
            "rates": [rate.as_json() for rate in held],
        },
        as_json,
        "\n".join(lines) or "no exchange rates yet: add some with `refunds fx import FILE`",
    )
