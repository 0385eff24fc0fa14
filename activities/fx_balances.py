"""Account balances in both currencies: what each account holds in each currency, and what
that is worth in the settlement currency (``refunds ledger balances``).

The ledger keeps a foreign-currency refund in its own currency and, beside it, its value in
the settlement currency (``refund-{id}:value``, ``:fx`` and their ``-back``, see ``fx``).
So an account's settlement-currency entries are its own settlement-currency movements plus
the values of its foreign ones. Here they are told apart: each currency's balance counts only
movements in that currency, and its ``settlement_value`` is what its valuation transfers
booked (for the settlement currency itself, its balance). The values add up to the account's
settlement-currency balance in the ledger. Foreign movements of refunds never valued (made
before a settlement currency was configured) are counted as ``unvalued``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

_VALUATION_IDS = ", ".join(
    f"'refund-' || m.refund_id || '{suffix}'"
    for suffix in (":value", ":fx", ":value-back", ":fx-back")
)
_WITH_FX = f"""
SELECT e.account, e.currency,
       m.refund_id IS NOT NULL AND t.id IN ({_VALUATION_IDS}) AND e.currency = $1 AS valuation,
       m.currency AS valued_currency,
       m.refund_id IS NOT NULL AS of_valued_refund,
       sum(e.amount)::bigint AS amount
FROM ledger_entries e
JOIN ledger_transfers t ON t.id = e.transfer_id
LEFT JOIN fx_movements m ON m.refund_id = t.refund_id
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2
"""
_WITHOUT_FX = """
SELECT account, currency, false AS valuation, NULL::text AS valued_currency,
       false AS of_valued_refund, balance AS amount
FROM ledger_balances ORDER BY 1, 2
"""


@dataclass(frozen=True)
class CurrencyPosition:
    currency: str
    balance: int  # movements in this currency, in its minor units
    settlement_value: int | None  # in the settlement currency; None when none is configured
    unvalued: int = 0  # part of the balance from movements never valued


@dataclass(frozen=True)
class AccountPosition:
    account: str
    currencies: list[CurrencyPosition]
    settlement_total: int | None  # None when no settlement currency is configured

    @property
    def fully_valued(self) -> bool:
        return all(position.unvalued == 0 for position in self.currencies)

    def as_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "currencies": [position.__dict__ for position in self.currencies],
            "settlement_total": self.settlement_total,
            "fully_valued": self.fully_valued,
        }


async def account_positions(
    conn: asyncpg.Connection | PoolConnectionProxy[asyncpg.Record],
    settlement_currency: str | None,
) -> list[AccountPosition]:
    """Every account's position per currency, valued in ``settlement_currency`` if given."""
    if await conn.fetchval("SELECT to_regclass('fx_movements')") is None:
        rows = await conn.fetch(_WITHOUT_FX)
    else:
        rows = await conn.fetch(_WITH_FX, settlement_currency or "")
    native: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    valued: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    unvalued: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        account, currency, amount = row["account"], row["currency"], row["amount"]
        if row["valuation"]:
            valued[account][row["valued_currency"]] += amount
            continue
        native[account][currency] += amount
        if currency != settlement_currency and not row["of_valued_refund"]:
            unvalued[account][currency] += amount
    positions = []
    for account in sorted(native.keys() | valued.keys()):
        currencies = [
            _position(
                currency,
                native[account].get(currency, 0),
                valued[account].get(currency, 0),
                unvalued[account].get(currency, 0),
                settlement_currency,
            )
            for currency in sorted(native[account].keys() | valued[account].keys())
        ]
        total = (
            sum(position.settlement_value or 0 for position in currencies)
            if settlement_currency
            else None
        )
        positions.append(AccountPosition(account, currencies, total))
    return positions


def _position(
    currency: str, balance: int, value: int, unvalued: int, settlement_currency: str | None
) -> CurrencyPosition:
    if settlement_currency is None:
        return CurrencyPosition(currency, balance, None)
    if currency == settlement_currency:
        return CurrencyPosition(currency, balance, balance)
    return CurrencyPosition(currency, balance, value, unvalued)
