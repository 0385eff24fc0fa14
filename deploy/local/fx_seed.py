"""Exchange rates the local stack starts with, so foreign-currency refunds can be valued.

``refunds dev`` and ``refunds demo`` value refunds in a settlement currency (USD unless
``REFUNDS_SETTLEMENT_CURRENCY`` says otherwise). A payment whose provider tells no rate (PayPal,
Adyen, and Stripe without one) is valued with the rates table, so the embedded PostgreSQL is
given these, dated, at every start: the same rows again change nothing (as with
``refunds fx import``). They are illustrative figures for a local stack, not market data; the
same text is a file ``refunds fx import`` takes.
"""

from __future__ import annotations

import logging
from decimal import Decimal, localcontext

import asyncpg

from activities.fx_rates import FxRate, ImportSummary, RatesFileError, import_rates, parse_rates
from deploy.migrations import apply_migrations

log = logging.getLogger("refunds.local")

SOURCE = "local stack seed"

SEED_RATES = """\
date,currency,settlement_currency,rate
2025-01-01,EUR,USD,1.0350
2026-01-01,EUR,USD,1.0420
2025-01-01,GBP,USD,1.2510
2026-01-01,GBP,USD,1.2680
2025-01-01,JPY,USD,0.006380
2026-01-01,JPY,USD,0.006450
2025-01-01,CAD,USD,0.6950
2026-01-01,CAD,USD,0.7010
2025-01-01,AUD,USD,0.6210
2026-01-01,AUD,USD,0.6290
2025-01-01,CHF,USD,1.1020
2026-01-01,CHF,USD,1.1150
2025-01-01,SEK,USD,0.0905
2026-01-01,SEK,USD,0.0921
2025-01-01,DKK,USD,0.1388
2026-01-01,DKK,USD,0.1397
2025-01-01,NOK,USD,0.0880
2026-01-01,NOK,USD,0.0895
2025-01-01,PLN,USD,0.2430
2026-01-01,PLN,USD,0.2465
2025-01-01,NZD,USD,0.5620
2026-01-01,NZD,USD,0.5710
2025-01-01,SGD,USD,0.7340
2026-01-01,SGD,USD,0.7420
2025-01-01,MXN,USD,0.0490
2026-01-01,MXN,USD,0.0515
2025-01-01,USD,EUR,0.9662
2026-01-01,USD,EUR,0.9597
2025-01-01,GBP,EUR,1.2087
2026-01-01,GBP,EUR,1.2169
2025-01-01,JPY,EUR,0.006164
2026-01-01,JPY,EUR,0.006190
2025-01-01,USD,GBP,0.7994
2026-01-01,USD,GBP,0.7886
2025-01-01,EUR,GBP,0.8273
2026-01-01,EUR,GBP,0.8218
2025-01-01,JPY,GBP,0.005100
2026-01-01,JPY,GBP,0.005087
"""


def seed_rate(currency: str, settlement_currency: str) -> Decimal | None:
    """The newest seeded rate of the pair, else its cross rate through USD (six significant
    digits); None when neither is seeded."""
    newest: dict[tuple[str, str], FxRate] = {}
    for _, rate in parse_rates(SEED_RATES, SOURCE):
        pair = (rate.currency, rate.settlement_currency)
        if pair not in newest or newest[pair].valid_from < rate.valid_from:
            newest[pair] = rate
    pair = (currency.upper(), settlement_currency.upper())
    if pair in newest:
        return newest[pair].rate
    to_usd = [Decimal(1) if code == "USD" else _rate(newest.get((code, "USD"))) for code in pair]
    if to_usd[0] is None or to_usd[1] is None:
        return None
    with localcontext(prec=6):
        return to_usd[0] / to_usd[1]


def _rate(found: FxRate | None) -> Decimal | None:
    return None if found is None else found.rate


async def seed_rates(database_url: str) -> ImportSummary | None:
    """Bring the schema up to date and import the seed rates (idempotent). A database that
    already holds another rate for a seeded pair and date keeps it: logged, not raised."""
    conn = await asyncpg.connect(database_url)
    try:
        await apply_migrations(conn)
        return await import_rates(conn, parse_rates(SEED_RATES, SOURCE))
    except RatesFileError as exc:
        log.warning("the local stack's exchange rates were not seeded: %s", exc)
        return None
    finally:
        await conn.close()
