"""The configured exchange rates (table ``fx_rates``), for payments whose provider tells none.

A rate says: an amount in ``currency`` times ``rate`` is its value in ``settlement_currency``
(the provider's convention, Stripe's balance transaction ``exchange_rate``), from
``valid_from`` on, until a newer rate for the same pair. Rates arrive as CSV
(``refunds fx import``): ``date,currency,settlement_currency,rate`` with ISO dates (a bare
date is midnight UTC; a time without an offset is UTC). A file is imported in one transaction
or not at all; the same row again changes nothing, another rate for a pair and date already
held is refused (valuations keep the rate they were made with, so the table's history stays
what was used).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from workflows.currencies import is_known_currency

Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
HEADER = ("date", "currency", "settlement_currency", "rate")


class RatesFileError(ValueError):
    """A rates file that cannot be imported; the message names the row and the value."""


@dataclass(frozen=True)
class FxRate:
    currency: str
    settlement_currency: str
    valid_from: datetime
    rate: Decimal
    source: str

    def as_json(self) -> dict[str, str]:
        return {
            "currency": self.currency,
            "settlement_currency": self.settlement_currency,
            "valid_from": self.valid_from.isoformat(),
            "rate": str(self.rate),  # a string: exact, never a float
            "source": self.source,
        }


@dataclass(frozen=True)
class ImportSummary:
    added: int
    unchanged: int


def parse_rates(text: str, source: str) -> list[tuple[int, FxRate]]:
    """Each rate of a CSV text with the row number it came from (the header, blank lines and
    lines starting with ``#`` are skipped)."""
    parsed: list[tuple[int, FxRate]] = []
    for row_number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if tuple(cell.lower() for cell in cells) == HEADER:
            continue
        if len(cells) != len(HEADER):
            raise RatesFileError(
                f"row {row_number}: expected {len(HEADER)} values ({','.join(HEADER)}), "
                f"found {len(cells)}"
            )
        when, currency, settlement, rate = cells
        found = FxRate(
            currency=_currency(currency, "currency", row_number),
            settlement_currency=_currency(settlement, "settlement_currency", row_number),
            valid_from=_moment(when, row_number),
            rate=_rate(rate, row_number),
            source=source,
        )
        if found.currency == found.settlement_currency:
            raise RatesFileError(
                f"row {row_number}: currency and settlement_currency are both {found.currency}"
            )
        parsed.append((row_number, found))
    if not parsed:
        raise RatesFileError(f"no rates in the file (expected {','.join(HEADER)})")
    return parsed


def _currency(text: str, column: str, row_number: int) -> str:
    code = text.upper()
    if not is_known_currency(code):
        raise RatesFileError(f"row {row_number}: {column} {text!r} is not an ISO 4217 code")
    return code


def _moment(text: str, row_number: int) -> datetime:
    try:
        moment = (
            datetime.fromisoformat(text)
            if "T" in text or " " in text
            else datetime.combine(date.fromisoformat(text), datetime.min.time())
        )
    except ValueError:
        raise RatesFileError(
            f"row {row_number}: date {text!r} is not an ISO date (2026-01-31) or time"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# One unit of any currency in circulation is worth between these of any other (an Iranian rial
# in dollars, a dollar in rials, with room); a rate outside them is a typing slip.
RATE_AT_LEAST = Decimal("0.00000001")
RATE_AT_MOST = Decimal("1000000")


def _rate(text: str, row_number: int) -> Decimal:
    try:
        rate = Decimal(text)
    except InvalidOperation:
        rate = Decimal("NaN")
    if not rate.is_finite() or rate <= 0:
        raise RatesFileError(f"row {row_number}: rate {text!r} is not a number above 0")
    if not RATE_AT_LEAST <= rate <= RATE_AT_MOST:
        raise RatesFileError(
            f"row {row_number}: rate {text!r} is outside {RATE_AT_LEAST}..{RATE_AT_MOST}: no "
            "currency pair trades there (a decimal point missing?)"
        )
    return rate


async def import_rates(conn: Connection, rates: Sequence[tuple[int, FxRate]]) -> ImportSummary:
    """Insert every rate in one transaction; a row already held with the same rate is kept."""
    added = 0
    async with conn.transaction():
        for row_number, rate in rates:
            inserted = await conn.fetchval(
                "INSERT INTO fx_rates (currency, settlement_currency, valid_from, rate, source) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true",
                rate.currency,
                rate.settlement_currency,
                rate.valid_from,
                rate.rate,
                rate.source,
            )
            if inserted:
                added += 1
                continue
            held = await conn.fetchrow(
                "SELECT rate, source FROM fx_rates WHERE currency = $1 "
                "AND settlement_currency = $2 AND valid_from = $3",
                rate.currency,
                rate.settlement_currency,
                rate.valid_from,
            )
            if held is not None and held["rate"] != rate.rate:
                raise RatesFileError(
                    f"row {row_number}: {rate.currency}/{rate.settlement_currency} from "
                    f"{rate.valid_from.isoformat()} is already {held['rate']} (from "
                    f"{held['source']}), not {rate.rate}; a rate once imported is not changed "
                    "(add one with a later date instead)"
                )
    return ImportSummary(added=added, unchanged=len(rates) - added)


async def list_rates(conn: Connection) -> list[FxRate]:
    rows = await conn.fetch(
        "SELECT currency, settlement_currency, valid_from, rate, source FROM fx_rates "
        "ORDER BY currency, settlement_currency, valid_from"
    )
    return [FxRate(**dict(row.items())) for row in rows]


async def newest_rate(
    conn: Connection, currency: str, settlement_currency: str, at: datetime
) -> FxRate | None:
    """The pair's rate in force at ``at``: the newest one valid from then or earlier."""
    row = await conn.fetchrow(
        "SELECT currency, settlement_currency, valid_from, rate, source FROM fx_rates "
        "WHERE currency = $1 AND settlement_currency = $2 AND valid_from <= $3 "
        "ORDER BY valid_from DESC LIMIT 1",
        currency,
        settlement_currency,
        at if at.tzinfo is not None else at.replace(tzinfo=UTC),
    )
    return None if row is None else FxRate(**dict(row.items()))
