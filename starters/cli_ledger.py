"""``refunds ledger``: what finance reads: balances, and whether the books verify."""

from __future__ import annotations

import sys

import click

from activities.ledger import Ledger
from starters.cli_support import emit, load_settings, run_async
from workers.worker import ledger_pool


@click.group()
def ledger() -> None:
    """Read and check the double-entry ledger (REFUNDS_DATABASE_URL)."""


@ledger.command()
@click.option("--json", "as_json", is_flag=True)
@run_async
async def verify(as_json: bool) -> None:
    """Check every transfer balances and no payment is over-refunded; exit 1 if not."""
    async with ledger_pool(load_settings().require_database_url(), migrate=False) as pool:
        problems = await Ledger(pool).verify()
    text = "ledger verifies" if not problems else "\n".join(f"- {p}" for p in problems)
    emit({"verified": not problems, "problems": problems}, as_json, text)
    if problems:
        sys.exit(1)


@ledger.command()
@click.option("--json", "as_json", is_flag=True)
@run_async
async def balances(as_json: bool) -> None:
    """Balance of every account, per currency (debits positive)."""
    async with ledger_pool(load_settings().require_database_url(), migrate=False) as pool:
        rows = await Ledger(pool).balances()
    lines = [f"{row.account:<40} {row.currency} {row.balance:>14}" for row in rows]
    emit(
        {"balances": [row.__dict__ for row in rows]},
        as_json,
        "\n".join(lines) or "no posted transfers yet",
    )
