"""The demo's exchange rates: they move between payment and refund, as markets do.

Foreign-currency refunds are valued in the settlement currency at the rate of capture and at the
rate of refund, and the difference is booked as an FX gain or loss (``activities.fx``). Within a
demo run both would be the same rate, so the demo moves the market: before paying, each foreign
currency's rate is set to the seeded one (``deploy.local.fx_seed``); after paying, before any
refund, it is moved by ``MOVES`` (EUR and JPY up: refunds cost more than they were worth at
capture, a loss; GBP down: a gain). Both go into the rates table (dated rows, for providers
that tell no rate) and to the Stripe sandbox (``POST /_sandbox/exchange_rates``), whose balance
transactions then carry them. The summary reads what was booked from ``fx_movements``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

import asyncpg
import httpx

from activities.fx_rates import FxRate, RatesFileError, import_rates, newest_rate
from deploy.local.fx_seed import seed_rate, seed_rates
from workers.settings import Settings

log = logging.getLogger("refunds.demo")

SOURCE = "refunds demo"
MOVES = {"EUR": Decimal("0.015"), "GBP": Decimal("-0.012"), "JPY": Decimal("0.008")}
OTHER_MOVE = Decimal("0.01")


async def rates_at_capture(
    settings: Settings, pool: asyncpg.Pool, currencies: Iterable[str]
) -> None:
    """Seed the rates (idempotent), then set each foreign currency to its seeded rate."""
    await seed_rates(settings.require_database_url())
    # A second back, so a provider that dates captures to the whole second dates them after.
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    await _set_rates(settings, pool, currencies, moment, moved=False)


async def rates_at_refund(
    settings: Settings, pool: asyncpg.Pool, currencies: Iterable[str]
) -> None:
    """Move each foreign currency's rate: refunds from now on convert at the moved rate."""
    await _set_rates(settings, pool, currencies, datetime.now(UTC), moved=True)


async def _set_rates(
    settings: Settings,
    pool: asyncpg.Pool,
    currencies: Iterable[str],
    moment: datetime,
    moved: bool,
) -> None:
    settlement = settings.money.settlement_currency
    if settlement is None:
        return
    rates = []
    async with pool.acquire() as conn:
        for currency in sorted({c.upper() for c in currencies} - {settlement}):
            base = seed_rate(currency, settlement)
            if base is None:
                held = await newest_rate(conn, currency, settlement, moment)
                if held is None:
                    continue  # no rate known: its refunds are refused, saying so
                base = held.rate
            if moved:
                with localcontext(prec=6):  # six significant digits, as Stripe's rates have
                    base = +(base * (1 + MOVES.get(currency, OTHER_MOVE)))
            rates.append(FxRate(currency, settlement, moment, base, SOURCE))
        try:
            await import_rates(conn, list(enumerate(rates, start=1)))
        except RatesFileError as exc:  # two runs in the same second: keep the first's
            log.warning("the demo's exchange rates were not moved: %s", exc)
    await _tell_stripe(settings, rates)


async def _tell_stripe(settings: Settings, rates: list[FxRate]) -> None:
    """The Stripe sandbox converts at the same rates (a sandbox without the route: not told)."""
    if not settings.stripe_api_base or not rates:
        return
    async with httpx.AsyncClient(base_url=settings.stripe_api_base, timeout=10) as http:
        for rate in rates:
            body = {"currency": rate.currency.lower(), "rate": str(rate.rate)}
            try:
                answer = await http.post("/_sandbox/exchange_rates", json=body)
            except httpx.HTTPError as exc:
                log.warning("the Stripe sandbox was not told the %s rate: %s", rate.currency, exc)
                return
            if answer.status_code == 404:
                return  # an older sandbox: it converts at its own rates
            if not answer.is_success:
                log.warning(
                    "the Stripe sandbox refused the %s rate: %s", rate.currency, answer.text[:200]
                )


async def fx_movements(pool: asyncpg.Pool, refund_ids: list[str]) -> dict[str, dict[str, Any]]:
    """What the ledger booked for each foreign-currency refund posted: its value in the
    settlement currency at capture and at refund, and the FX difference (> 0 a loss)."""
    try:
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT refund_id, settlement_currency, capture_rate, value_at_capture, "
                "refund_rate, refund_rate_source, value_at_refund, fx_difference "
                "FROM fx_movements WHERE refund_id = ANY($1::text[])",
                refund_ids,
            )
    except asyncpg.UndefinedTableError:
        return {}
    return {row["refund_id"]: dict(row.items()) for row in rows}
