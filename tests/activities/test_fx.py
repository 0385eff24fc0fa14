"""FX valuation of foreign-currency refunds, against real PostgreSQL and the real ledger."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import pytest

from activities.errors import ExchangeRateMissing, LedgerConflict
from activities.fx import FxBook, settlement_value
from activities.fx_rates import import_rates, parse_rates
from activities.ledger import Ledger
from workflows.models import PaymentSnapshot, PaymentState, ProviderRate, Psp

Pool = asyncpg.Pool
CAPTURED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def payment(
    currency: str = "EUR", captured: int = 20_000, rate: ProviderRate | None = None
) -> PaymentSnapshot:
    return PaymentSnapshot(
        psp=Psp.STRIPE,
        payment_id=f"pi_{currency.lower()}_1",
        state=PaymentState.CAPTURED,
        currency=currency,
        amount_authorized=0,
        amount_captured=captured,
        amount_refunded=0,
        created=CAPTURED,
        captured_at=CAPTURED,
        settlement_rate=rate,
    )


def usd(rate: str) -> ProviderRate:
    return ProviderRate(settlement_currency="USD", rate=Decimal(rate))


async def refunded(ledger: Ledger, refund_id: str, snapshot: PaymentSnapshot, amount: int) -> None:
    """Reserve and post a refund in the payment's currency, as the refund activities do."""
    await ledger.reserve(
        transfer_id=f"refund-{refund_id}:reserve",
        refund_id=refund_id,
        payment_key=snapshot.payment_key,
        captured=snapshot.amount_captured,
        currency=snapshot.currency,
        amount=amount,
        debit_account="merchant:refunds",
        credit_account="psp:stripe:clearing",
    )
    await ledger.post(
        transfer_id=f"refund-{refund_id}:post", pending_id=f"refund-{refund_id}:reserve"
    )


async def fx_transfers(ledger: Ledger, refund_id: str) -> dict[str, tuple[str, str, int, str]]:
    return {
        t.id.rsplit(":", 1)[1]: (t.debit_account, t.credit_account, t.amount, t.currency)
        for t in await ledger.transfers_for_refund(refund_id)
        if t.currency == "USD"
    }


async def test_rounding_half_up_between_minor_unit_exponents() -> None:
    assert settlement_value(10_000, "EUR", Decimal("1.10"), "USD") == 11_000
    assert settlement_value(1_005, "EUR", Decimal("1.05"), "USD") == 1_055  # 1055.25
    assert settlement_value(10, "EUR", Decimal("1.05"), "USD") == 11  # 10.5 rounds up
    assert settlement_value(12_345, "JPY", Decimal("0.0067"), "USD") == 8_271  # 82.7115 USD
    assert settlement_value(1, "JPY", Decimal("0.0067"), "USD") == 1  # 0.67 cent
    assert settlement_value(1_234, "KWD", Decimal("3.2512"), "USD") == 401  # 1.234 KWD
    assert settlement_value(100, "USD", Decimal("149.5"), "JPY") == 150  # 1 USD -> 149.5 JPY
    with pytest.raises(ValueError, match="Decimal above 0"):
        settlement_value(100, "EUR", 1.1, "USD")  # type: ignore[arg-type]


async def test_refund_at_a_lower_rate_books_a_gain_and_verifies(
    ledger: Ledger, ledger_pool: Pool
) -> None:
    book = FxBook(ledger_pool, "usd")
    snapshot = payment(rate=usd("1.10"))
    await book.value_at_capture("r-gain", snapshot)
    await refunded(ledger, "r-gain", snapshot, 10_000)
    await book.book_refund("r-gain", "stripe", 10_000, usd("1.05"))

    assert await fx_transfers(ledger, "r-gain") == {
        "value": ("merchant:refunds", "psp:stripe:clearing", 11_000, "USD"),
        "fx": ("psp:stripe:clearing", "merchant:fx_gain_loss", 500, "USD"),
    }
    balances = {(b.account, b.currency): b.balance for b in await ledger.balances()}
    assert balances[("merchant:fx_gain_loss", "USD")] == -500  # a credit: a gain
    assert balances[("psp:stripe:clearing", "USD")] == -10_500  # paid out at 1.05
    assert balances[("merchant:refunds", "EUR")] == 10_000
    assert await ledger.verify() == []


async def test_refund_at_a_higher_rate_books_a_loss(ledger: Ledger, ledger_pool: Pool) -> None:
    book = FxBook(ledger_pool, "USD")
    snapshot = payment(rate=usd("1.10"))
    await book.value_at_capture("r-loss", snapshot)
    await refunded(ledger, "r-loss", snapshot, 10_000)
    await book.book_refund("r-loss", "stripe", 10_000, usd("1.15"))

    assert (await fx_transfers(ledger, "r-loss"))["fx"] == (
        "merchant:fx_gain_loss",
        "psp:stripe:clearing",
        500,
        "USD",
    )
    row = await ledger_pool.fetchrow("SELECT * FROM fx_movements WHERE refund_id = 'r-loss'")
    assert row is not None
    assert (row["transfer_id"], row["value_at_capture"], row["value_at_refund"]) == (
        "refund-r-loss:post",
        11_000,
        11_500,
    )
    assert (row["fx_difference"], row["refund_rate_source"]) == (500, "provider")
    assert await ledger.verify() == []


async def test_an_unchanged_rate_books_the_value_and_no_fx(
    ledger: Ledger, ledger_pool: Pool
) -> None:
    book = FxBook(ledger_pool, "USD")
    snapshot = payment(rate=usd("1.10"))
    await book.value_at_capture("r-flat", snapshot)
    await refunded(ledger, "r-flat", snapshot, 4_000)
    await book.book_refund("r-flat", "stripe", 4_000, usd("1.10"))
    assert set(await fx_transfers(ledger, "r-flat")) == {"value"}
    assert await ledger.verify() == []


@pytest.mark.parametrize(
    ("currency", "captured_at", "refunded_at", "amount", "value", "fx"),
    [
        ("JPY", "0.0067", "0.0069", 12_345, 8_271, 247),  # 82.7115 -> 85.1805 USD
        ("KWD", "3.2512", "3.2400", 1_234, 401, -1),  # 4.0120 -> 3.9982 USD
    ],
)
async def test_zero_and_three_decimal_currencies_round_to_the_cent(
    ledger: Ledger,
    ledger_pool: Pool,
    currency: str,
    captured_at: str,
    refunded_at: str,
    amount: int,
    value: int,
    fx: int,
) -> None:
    book = FxBook(ledger_pool, "USD")
    snapshot = payment(currency, captured=amount, rate=usd(captured_at))
    await book.value_at_capture("r-minor", snapshot)
    await refunded(ledger, "r-minor", snapshot, amount)
    await book.book_refund("r-minor", "stripe", amount, usd(refunded_at))
    booked = await fx_transfers(ledger, "r-minor")
    assert booked["value"][2] == value
    assert booked["fx"][2] == abs(fx)
    assert (booked["fx"][0] == "merchant:fx_gain_loss") == (fx > 0)
    assert await ledger.verify() == []


async def test_the_rates_table_values_what_the_provider_does_not(
    ledger: Ledger, ledger_pool: Pool
) -> None:
    book = FxBook(ledger_pool, "USD")
    csv = (
        "date,currency,settlement_currency,rate\n2026-03-01,EUR,USD,1.08\n2026-03-03,EUR,USD,1.2\n"
    )
    async with ledger_pool.acquire() as conn:
        await import_rates(conn, parse_rates(csv, "test"))
    await book.value_at_capture("r-table", payment())  # captured on 2 March: 1.08
    await refunded(ledger, "r-table", payment(), 10_000)
    await book.book_refund("r-table", "stripe", 10_000, None)  # now: the 3 March rate, 1.2
    row = await ledger_pool.fetchrow("SELECT * FROM fx_movements WHERE refund_id = 'r-table'")
    valuation = await ledger_pool.fetchrow("SELECT * FROM fx_valuations")
    assert row is not None and valuation is not None
    assert (valuation["capture_rate"], valuation["capture_rate_source"]) == (
        Decimal("1.08"),
        "table",
    )
    assert (row["refund_rate"], row["refund_rate_source"], row["fx_difference"]) == (
        Decimal("1.2"),
        "table",
        1_200,
    )
    assert await ledger.verify() == []


async def test_no_rate_at_capture_refuses_and_names_the_way_out(
    ledger: Ledger, ledger_pool: Pool
) -> None:
    book = FxBook(ledger_pool, "USD")
    with pytest.raises(ExchangeRateMissing) as refused:
        await book.value_at_capture("r-none", payment("GBP"))
    message = refused.value.message
    assert "GBP/USD" in message and "2026-03-02" in message and "refunds fx import" in message
    assert await ledger_pool.fetchval("SELECT count(*) FROM fx_valuations") == 0


async def test_no_rate_at_refund_values_at_the_capture_rate_and_never_fails(
    ledger: Ledger,
    ledger_pool: Pool,
) -> None:
    book = FxBook(ledger_pool, "USD")
    await book.value_at_capture("r-late", payment(rate=usd("1.10")))
    await refunded(ledger, "r-late", payment(), 2_500)
    await book.book_refund("r-late", "stripe", 2_500, None)
    row = await ledger_pool.fetchrow("SELECT * FROM fx_movements")
    assert row is not None
    assert (row["refund_rate_source"], row["fx_difference"]) == ("capture (no rate at refund)", 0)


async def test_same_currency_unsettled_or_authorised_payments_are_not_valued(
    ledger: Ledger,
    ledger_pool: Pool,
) -> None:
    await FxBook(ledger_pool, None).value_at_capture("r-1", payment())
    await FxBook(ledger_pool, "EUR").value_at_capture("r-2", payment())
    held = payment().model_copy(update={"state": PaymentState.AUTHORIZED})
    await FxBook(ledger_pool, "USD").value_at_capture("r-3", held)
    assert await ledger_pool.fetchval("SELECT count(*) FROM fx_valuations") == 0
    await refunded(ledger, "r-1", payment(), 100)
    await FxBook(ledger_pool, "USD").book_refund("r-1", "stripe", 100, usd("1.1"))
    assert await fx_transfers(ledger, "r-1") == {}


async def test_retries_change_nothing(ledger: Ledger, ledger_pool: Pool) -> None:
    book = FxBook(ledger_pool, "USD")
    await book.value_at_capture("r-again", payment(rate=usd("1.10")))
    await book.value_at_capture("r-again", payment(rate=usd("1.30")))  # the first one stays
    await refunded(ledger, "r-again", payment(), 10_000)
    # Two attempts at once (a retry racing a slow first try): one books, the other finds it.
    await asyncio.gather(
        *(book.book_refund("r-again", "stripe", 10_000, usd(r)) for r in ("1.05", "1.25"))
    )
    first = await fx_transfers(ledger, "r-again")
    await book.book_refund("r-again", "stripe", 10_000, usd("1.45"))  # booked already
    assert await fx_transfers(ledger, "r-again") == first
    assert first["fx"][2] in (500, 1_500)
    assert await ledger_pool.fetchval("SELECT count(*) FROM fx_movements") == 1
    await book.value_at_capture("r-short", payment(rate=usd("1.10")))
    await refunded(ledger, "r-short", payment(), 10_000)
    with pytest.raises(LedgerConflict, match="posted 10000 EUR"):
        await book.book_refund("r-short", "stripe", 9_000, None)
    await book.value_at_capture("r-unposted", payment(rate=usd("1.10")))
    with pytest.raises(LedgerConflict, match="no posted transfer"):
        await book.book_refund("r-unposted", "stripe", 1, None)
    await book.book_refund("r-never-valued", "stripe", 1, None)  # nothing to do


async def test_verify_catches_a_movement_its_transfers_do_not_match(
    ledger: Ledger, ledger_pool: Pool, tamper: asyncpg.Connection[asyncpg.Record]
) -> None:
    book = FxBook(ledger_pool, "USD")
    await book.value_at_capture("r-tamper", payment(rate=usd("1.10")))
    await refunded(ledger, "r-tamper", payment(), 10_000)
    await tamper.execute(
        "INSERT INTO fx_movements (transfer_id, refund_id, currency, amount, "
        "settlement_currency, capture_rate, value_at_capture, refund_rate, refund_rate_source, "
        "value_at_refund, fx_difference) VALUES ('refund-r-tamper:post', 'r-tamper', 'EUR', "
        "10000, 'USD', 1.10, 12000, 1.05, 'provider', 10500, -1500)"
    )
    problems = await ledger.verify()
    assert problems == [
        "FX movement of refund r-tamper records values 12000 and 10500 (difference -1500) USD, "
        "but its amount and rates give 11000 and 10500 (difference -500)",
        "transfer refund-r-tamper:value is missing: expected 12000 USD merchant:refunds -> "
        "psp:stripe:clearing",
        "transfer refund-r-tamper:fx is missing: expected 1500 USD psp:stripe:clearing -> "
        "merchant:fx_gain_loss",
    ]


async def test_a_late_failure_books_the_value_and_fx_back(
    ledger: Ledger, ledger_pool: Pool
) -> None:
    book = FxBook(ledger_pool, "USD")
    await book.value_at_capture("r-back", payment(rate=usd("1.10")))
    await refunded(ledger, "r-back", payment(), 10_000)
    await book.book_refund("r-back", "stripe", 10_000, usd("1.15"))
    await ledger.transfer(
        transfer_id="refund-r-back:late-failure",
        debit_account="psp:stripe:clearing",
        credit_account="merchant:refunds",
        amount=10_000,
        currency="EUR",
        refund_id="r-back",
    )
    problems = await ledger.verify()
    assert problems == [
        "refund r-back failed late and was booked back in its own currency, but its value "
        "refund-r-back:value was not (no refund-r-back:value-back)"
    ]
    await book.book_back("r-back")
    await book.book_back("r-back")
    booked = await fx_transfers(ledger, "r-back")
    assert booked["value-back"] == ("psp:stripe:clearing", "merchant:refunds", 11_000, "USD")
    assert booked["fx-back"] == ("psp:stripe:clearing", "merchant:fx_gain_loss", 500, "USD")
    assert all(b.balance == 0 for b in await ledger.balances())
    assert await ledger.verify() == []


async def test_a_payment_is_valued_at_one_capture_rate_for_all_its_refunds(
    ledger_db: asyncpg.Pool,
) -> None:
    """The capture day's rate imported after the first refund does not re-value the payment."""
    from datetime import timedelta

    from activities.fx_rates import FxRate

    captured = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    paid = PaymentSnapshot(
        psp=Psp.PAYPAL,
        payment_id="CAP-1",
        state=PaymentState.CAPTURED,
        currency="EUR",
        amount_authorized=0,
        amount_captured=20_000,
        amount_refunded=0,
        created=captured,
        captured_at=captured,
    )
    book = FxBook(ledger_db, "USD")
    day_before = FxRate("EUR", "USD", captured - timedelta(days=1), Decimal("1.10"), "t")
    same_day = FxRate("EUR", "USD", captured.replace(hour=0), Decimal("1.12"), "t")
    async with ledger_db.acquire() as conn:
        await import_rates(conn, [(1, day_before)])
    await book.value_at_capture("r1", paid)
    async with ledger_db.acquire() as conn:
        await import_rates(conn, [(1, same_day)])
    await book.value_at_capture("r2", paid)
    rows = await ledger_db.fetch(
        "SELECT refund_id, capture_rate FROM fx_valuations ORDER BY refund_id"
    )
    assert [(r["refund_id"], r["capture_rate"]) for r in rows] == [
        ("r1", Decimal("1.10")),
        ("r2", Decimal("1.10")),
    ]


async def test_verify_names_a_posted_refund_whose_value_was_never_booked(
    ledger: Ledger, ledger_pool: Pool
) -> None:
    book = FxBook(ledger_pool, "USD")
    await book.value_at_capture("r-unbooked", payment(rate=usd("1.10")))
    await refunded(ledger, "r-unbooked", payment(), 10_000)
    assert await ledger.verify() == [
        "refund r-unbooked is posted and was valued at capture in USD, but its FX movement is "
        "not booked"
    ]
    await book.book_refund("r-unbooked", "stripe", 10_000, usd("1.05"))
    assert await ledger.verify() == []


def test_a_rate_no_currency_pair_trades_at_is_refused_naming_the_row() -> None:
    from activities.fx_rates import RatesFileError

    with pytest.raises(RatesFileError, match="row 2: rate '12700000' is outside"):
        parse_rates("date,currency,settlement_currency,rate\n2026-11-02,GBP,USD,12700000\n", "t")
    with pytest.raises(RatesFileError, match="row 2: rate '1e400' is outside"):
        parse_rates("date,currency,settlement_currency,rate\n2026-11-02,GBP,USD,1e400\n", "t")
