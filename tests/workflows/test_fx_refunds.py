"""A foreign-currency refund goes back in the payment's own currency, and the ledger books its
value in the settlement currency at capture and at refund, with the difference as FX gain or
loss; every transfer still balances."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.fx_rates import FxRate, import_rates
from activities.ledger import Ledger
from deploy.sandboxes.stripe_shop import create_payment, shop_client
from starters.client import start_refund
from tests.support.stack import SANDBOX_KEY, running_worker
from tests.workflows.test_refund_paths import refund_request
from workers.money_settings import MoneySettings
from workflows.models import RefundStatus

IN_USD = MoneySettings(settlement_currency="USD")


async def tell_rate(stripe_base: str, currency: str, rate: str) -> None:
    async with httpx.AsyncClient(base_url=stripe_base) as raw:
        answer = await raw.post(
            "/_sandbox/exchange_rates", json={"currency": currency, "rate": rate}
        )
        answer.raise_for_status()


async def balances(pool: asyncpg.Pool, *accounts: str) -> dict[tuple[str, str], int]:
    rows = await Ledger(pool).balances()
    return {(r.account, r.currency): r.balance for r in rows if r.account in accounts}


@pytest.mark.parametrize(
    ("at_refund", "value_at_refund", "fx_balance"),
    [
        ("1.05", 4200, -200),  # cheaper to pay back than it was worth: a gain (a credit)
        ("1.15", 4600, 200),  # dearer: a loss (a debit)
        ("1.10", 4400, None),  # the same rate: no FX transfer at all
    ],
)
async def test_a_euro_refund_books_its_fx_gain_or_loss_at_the_providers_rates(
    time_skipping_env: WorkflowEnvironment,
    ledger_db: asyncpg.Pool,
    stripe_base: str,
    at_refund: str,
    value_at_refund: int,
    fx_balance: int | None,
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    await tell_rate(stripe_base, "eur", "1.10")
    payment = await create_payment(shop, amount=4000, currency="eur", customer="cus_42")
    await tell_rate(stripe_base, "eur", at_refund)
    request = refund_request(payment, currency="eur")
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base, money=IN_USD) as queue:
        result = await (await start_refund(client, request, queue)).result()

    assert result.status is RefundStatus.SUCCEEDED, result
    assert (result.amount_refunded, result.currency) == (4000, "EUR")  # never re-converted
    movement = await ledger_db.fetchrow(
        "SELECT * FROM fx_movements WHERE refund_id = $1", request.request_id
    )
    assert movement is not None
    assert (movement["capture_rate"], movement["refund_rate"]) == (
        Decimal("1.10"),
        Decimal(at_refund),
    )
    assert movement["refund_rate_source"] == "provider"
    assert (movement["value_at_capture"], movement["value_at_refund"]) == (4400, value_at_refund)
    ids = {t.id: t for t in await Ledger(ledger_db).transfers_for_refund(request.request_id)}
    value = ids[f"refund-{request.request_id}:value"]
    assert (value.amount, value.currency) == (4400, "USD")
    fx = ids.get(f"refund-{request.request_id}:fx")
    assert (fx.amount if fx else None) == (abs(fx_balance) if fx_balance else None)
    books = await balances(ledger_db, "merchant:refunds", "merchant:fx_gain_loss")
    assert books[("merchant:refunds", "EUR")] == 4000
    assert books[("merchant:refunds", "USD")] == 4400
    assert books.get(("merchant:fx_gain_loss", "USD")) == fx_balance
    assert await Ledger(ledger_db).verify() == []


async def test_without_a_provider_rate_the_dated_rates_table_values_the_refund(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    """Settling in EUR, a GBP payment has no provider rate (the sandbox converts to USD): the
    rates table gives the rate at capture and the rate at refund; without one, the refund is
    refused before anything is reserved."""
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(shop, amount=10000, currency="gbp", customer="cus_42")
    charge = (await shop.v1.payment_intents.retrieve_async(payment)).latest_charge
    captured = datetime.fromtimestamp(
        (await shop.v1.charges.retrieve_async(str(charge))).created, UTC
    )
    first = refund_request(payment, currency="gbp", amount=3333)
    second = refund_request(payment, currency="gbp", amount=3333)
    in_euro = MoneySettings(settlement_currency="EUR")
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base, money=in_euro) as queue:
        missing = await (await start_refund(client, first, queue)).result()
        async with ledger_db.acquire() as conn:
            await import_rates(
                conn,
                [
                    (1, FxRate("GBP", "EUR", captured - timedelta(days=30), Decimal("1.15"), "t")),
                    (2, FxRate("GBP", "EUR", captured + timedelta(seconds=1), Decimal("1.2"), "t")),
                ],
            )
        await asyncio.sleep(
            max(0.0, (captured + timedelta(seconds=1.2) - datetime.now(UTC)).total_seconds())
        )
        done = await (await start_refund(client, second, queue)).result()

    assert missing.status is RefundStatus.REJECTED
    assert missing.reason and "no GBP/EUR exchange rate" in missing.reason, missing.reason
    assert "refunds fx import" in missing.reason
    assert await Ledger(ledger_db).transfers_for_refund(first.request_id) == []
    assert done.status is RefundStatus.SUCCEEDED, done
    movement = await ledger_db.fetchrow(
        "SELECT * FROM fx_movements WHERE refund_id = $1", second.request_id
    )
    assert movement is not None
    assert (movement["capture_rate"], movement["refund_rate"]) == (Decimal("1.15"), Decimal("1.2"))
    assert movement["refund_rate_source"] == "table"
    # 33.33 GBP: 38.33 EUR at capture (38.3295 rounded), 40.00 at refund (39.996): 1.67 lost.
    assert (movement["value_at_capture"], movement["value_at_refund"]) == (3833, 4000)
    books = await balances(ledger_db, "merchant:fx_gain_loss")
    assert books[("merchant:fx_gain_loss", "EUR")] == 167
    assert await Ledger(ledger_db).verify() == []
