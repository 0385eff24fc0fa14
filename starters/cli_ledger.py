"""``refunds ledger``: what finance reads: balances, and whether the books verify.

With ``REFUNDS_SETTLEMENT_CURRENCY`` set, ``balances`` shows each account per currency and its
value in the settlement currency, with a total (``activities.fx_balances``); ``--json`` keeps
the ledger's own ``balances`` rows and adds ``settlement_currency`` and ``accounts``.
"""

from __future__ import annotations

import sys

import click

from activities.fx_balances import AccountPosition, account_positions
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
    """Balance of every account, per currency (debits positive), valued in the settlement
    currency (REFUNDS_SETTLEMENT_CURRENCY) when one is configured."""
    settings = load_settings()
    settlement = settings.money.settlement_currency
    async with ledger_pool(settings.require_database_url(), migrate=False) as pool:
        rows = await Ledger(pool).balances()
        async with pool.acquire() as conn:
            positions = await account_positions(conn, settlement)
    if settlement:
        lines = [line for position in positions for line in _valued_lines(position, settlement)]
    else:
        lines = [f"{row.account:<40} {row.currency} {row.balance:>14}" for row in rows]
    emit(
        {
            "balances": [row.__dict__ for row in rows],
            "settlement_currency": settlement,
            "accounts": [position.as_json() for position in positions],
        },
        as_json,
        "\n".join(lines) or "no posted transfers yet",
    )


def _valued_lines(position: AccountPosition, settlement: str) -> list[str]:
    """``account  EUR  10000 = USD  11000`` per currency, then the account's total."""
    lines = []
    for held in position.currencies:
        line = f"{position.account:<40} {held.currency} {held.balance:>14} = {settlement} "
        line += f"{held.settlement_value:>14}"
        if held.unvalued:
            line += f"  ({held.unvalued} {held.currency} never valued: not in the total)"
        lines.append(line)
    if len(position.currencies) > 1 or not position.fully_valued:
        lines.append(
            f"{position.account:<40} {'all':<3} {'':>14} = {settlement} "
            f"{position.settlement_total:>14}"
        )
    return lines
