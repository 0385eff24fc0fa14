"""The ledger on a real PostgreSQL: the database itself refuses what must never happen."""

from __future__ import annotations

import asyncio
import socket

import asyncpg
import pytest

from activities.errors import CurrencyMismatch, DatabaseUnavailable, LedgerConflict, OverRefund
from activities.ledger import AccountBalance, Ledger, PaymentPosition, Transfer
from deploy.migrations import MigrationChanged, available_migrations, migrate

PAYMENT = "stripe:pi_123"
MERCHANT = "merchant:refunds"
CUSTOMER = "customers:cus_1"


async def reserve(
    ledger: Ledger, transfer_id: str, amount: int, *, captured: int = 10_000, **changes: str
) -> Transfer:
    fields = {
        "refund_id": "rma-1",
        "payment_key": PAYMENT,
        "currency": "USD",
        "debit_account": MERCHANT,
        "credit_account": CUSTOMER,
    } | changes
    return await ledger.reserve(transfer_id=transfer_id, captured=captured, amount=amount, **fields)


# -- migrations ------------------------------------------------------------------------


async def test_migrations_apply_once(database_url: str) -> None:
    names = [migration.name for migration in available_migrations()]
    assert names[0] == "0001_ledger"
    assert await migrate(database_url) == names
    assert await migrate(database_url) == []


async def test_concurrent_migrations_both_succeed(database_url: str) -> None:
    first, second = await asyncio.gather(migrate(database_url), migrate(database_url))
    assert sorted([first, second]) == [[], [m.name for m in available_migrations()]]


async def test_an_edited_migration_is_refused(database_url: str) -> None:
    await migrate(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE schema_migrations SET checksum = 'edited'")
    finally:
        await conn.close()
    with pytest.raises(MigrationChanged, match="0001_ledger"):
        await migrate(database_url)


# -- two-phase transfers ---------------------------------------------------------------


async def test_reserve_then_post_moves_the_money(ledger: Ledger) -> None:
    pending = await reserve(ledger, "rma-1:reserve", 2500, currency="usd")
    assert pending == Transfer(
        "rma-1:reserve", "pending", MERCHANT, CUSTOMER, 2500, "USD", PAYMENT, None, "rma-1"
    )
    assert await ledger.payment_position(PAYMENT) == PaymentPosition(
        PAYMENT, "USD", 10_000, 2500, 0
    )
    assert await ledger.balances() == []  # a reservation is not a balance

    posted = await ledger.post(transfer_id="rma-1:post", pending_id="rma-1:reserve")
    assert (posted.kind, posted.amount, posted.pending_id) == ("post", 2500, "rma-1:reserve")
    position = await ledger.payment_position(PAYMENT)
    assert position == PaymentPosition(PAYMENT, "USD", 10_000, 0, 2500)
    assert position.available == 7500
    assert await ledger.balances() == [
        AccountBalance(CUSTOMER, "USD", -2500),
        AccountBalance(MERCHANT, "USD", 2500),
    ]
    assert await ledger.transfers_for_refund("rma-1") == [pending, posted]
    assert await ledger.verify() == []


async def test_partial_post_releases_the_rest(ledger: Ledger) -> None:
    await reserve(ledger, "rma-1:reserve", 1000)
    posted = await ledger.post(transfer_id="rma-1:post", pending_id="rma-1:reserve", amount=600)
    assert posted.amount == 600
    position = await ledger.payment_position(PAYMENT)
    assert position == PaymentPosition(PAYMENT, "USD", 10_000, 0, 600)
    assert {b.account: b.balance for b in await ledger.balances()} == {
        MERCHANT: 600,
        CUSTOMER: -600,
    }
    await reserve(ledger, "rma-2:reserve", 1000, refund_id="rma-2")
    with pytest.raises(OverRefund, match="more than the 1000 reserved"):
        await ledger.post(transfer_id="rma-2:post", pending_id="rma-2:reserve", amount=1001)
    assert await ledger.verify() == []


async def test_void_releases_the_reservation(ledger: Ledger) -> None:
    await reserve(ledger, "rma-1:reserve", 4000)
    voided = await ledger.void(transfer_id="rma-1:void", pending_id="rma-1:reserve")
    assert (voided.kind, voided.amount) == ("void", 4000)
    assert await ledger.void(transfer_id="rma-1:void", pending_id="rma-1:reserve") == voided
    assert await ledger.payment_position(PAYMENT) == PaymentPosition(PAYMENT, "USD", 10_000, 0, 0)
    assert await ledger.balances() == []
    assert await ledger.verify() == []


async def test_single_transfer_and_its_idempotency(ledger: Ledger) -> None:
    fields = {"debit_account": "psp:stripe:clearing", "credit_account": MERCHANT}
    made = await ledger.transfer(transfer_id="fx-1", amount=37, currency="EUR", **fields)
    assert await ledger.transfer(transfer_id="fx-1", amount=37, currency="EUR", **fields) == made
    with pytest.raises(LedgerConflict, match="amount 37"):
        await ledger.transfer(transfer_id="fx-1", amount=38, currency="EUR", **fields)
    assert {b.account: b.balance for b in await ledger.balances()} == {
        "psp:stripe:clearing": 37,
        MERCHANT: -37,
    }


# -- limits under concurrency ----------------------------------------------------------


async def test_twenty_concurrent_reservations_never_exceed_captured(ledger: Ledger) -> None:
    results = await asyncio.gather(
        *(reserve(ledger, f"rma-{n}:reserve", 1000, refund_id=f"rma-{n}") for n in range(20)),
        return_exceptions=True,
    )
    assert sum(isinstance(result, Transfer) for result in results) == 10
    refusals = [result for result in results if isinstance(result, OverRefund)]
    assert len(refusals) == 10
    assert "captured 10000" in refusals[0].message
    position = await ledger.payment_position(PAYMENT)
    assert position is not None
    assert (position.reserved, position.available) == (10_000, 0)


async def test_over_refund_names_the_figures(ledger: Ledger) -> None:
    await reserve(ledger, "rma-1:reserve", 6000)
    await ledger.post(transfer_id="rma-1:post", pending_id="rma-1:reserve", amount=5000)
    await reserve(ledger, "rma-2:reserve", 3000, refund_id="rma-2")
    with pytest.raises(OverRefund) as refused:
        await reserve(ledger, "rma-3:reserve", 2001, refund_id="rma-3")
    for figure in ("requested 2001", "captured 10000", "reserved 3000", "refunded 5000"):
        assert figure in refused.value.message


async def test_the_database_refuses_an_over_refund_written_in_sql(
    ledger: Ledger, ledger_pool: asyncpg.Pool[asyncpg.Record]
) -> None:
    await reserve(ledger, "rma-1:reserve", 9000)
    with pytest.raises(asyncpg.CheckViolationError, match="over-refund"):
        await ledger_pool.execute(
            "INSERT INTO ledger_transfers (id, kind, debit_account, credit_account, amount, "
            "currency, payment_key) VALUES ('raw', 'pending', $1, $2, 1001, 'USD', $3)",
            MERCHANT,
            CUSTOMER,
            PAYMENT,
        )


# -- idempotency and conflicts ---------------------------------------------------------


async def test_a_repeated_reservation_is_the_same_transfer(ledger: Ledger) -> None:
    first = await reserve(ledger, "rma-1:reserve", 1000)
    assert await reserve(ledger, "rma-1:reserve", 1000) == first
    position = await ledger.payment_position(PAYMENT)
    assert position is not None and position.reserved == 1000
    with pytest.raises(LedgerConflict, match="rma-1:reserve"):
        await reserve(ledger, "rma-1:reserve", 1500)


async def test_posts_resolve_a_pending_once(ledger: Ledger) -> None:
    await reserve(ledger, "rma-1:reserve", 1000)
    posted = await ledger.post(transfer_id="rma-1:post", pending_id="rma-1:reserve")
    assert await ledger.post(transfer_id="rma-1:post", pending_id="rma-1:reserve") == posted
    with pytest.raises(LedgerConflict, match="already resolved by post rma-1:post"):
        await ledger.void(transfer_id="rma-1:void", pending_id="rma-1:reserve")
    with pytest.raises(LedgerConflict):
        await ledger.post(transfer_id="rma-1:post-again", pending_id="rma-1:reserve")
    with pytest.raises(LedgerConflict, match="amount"):
        await ledger.post(transfer_id="rma-1:post", pending_id="rma-1:reserve", amount=10)
    with pytest.raises(LedgerConflict, match="not a pending transfer"):
        await ledger.post(transfer_id="x", pending_id="rma-1:post")
    assert await ledger.payment_position(PAYMENT) == PaymentPosition(
        PAYMENT, "USD", 10_000, 0, 1000
    )


async def test_a_payment_keeps_its_currency_and_captured(ledger: Ledger) -> None:
    await reserve(ledger, "rma-1:reserve", 1000)
    with pytest.raises(CurrencyMismatch, match="USD"):
        await reserve(ledger, "rma-2:reserve", 1000, currency="EUR", refund_id="rma-2")
    await reserve(ledger, "rma-3:reserve", 1000, captured=99_999, refund_id="rma-3")
    position = await ledger.payment_position(PAYMENT)
    assert position is not None and position.captured == 10_000


# -- append-only, refused by the database ----------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_transfers SET amount = 1",
        "DELETE FROM ledger_transfers",
        "TRUNCATE ledger_transfers CASCADE",
        "UPDATE ledger_entries SET amount = amount * 2",
        "DELETE FROM ledger_entries",
        "TRUNCATE ledger_entries",
        "UPDATE ledger_payments SET refunded = 0",
        "DELETE FROM ledger_payments",
    ],
)
async def test_the_books_are_append_only(
    ledger: Ledger, ledger_pool: asyncpg.Pool[asyncpg.Record], statement: str
) -> None:
    await reserve(ledger, "rma-1:reserve", 1000)
    await ledger.post(transfer_id="rma-1:post", pending_id="rma-1:reserve")
    with pytest.raises(asyncpg.RestrictViolationError):
        await ledger_pool.execute(statement)
    assert await ledger.payment_position(PAYMENT) == PaymentPosition(
        PAYMENT, "USD", 10_000, 0, 1000
    )


async def test_malformed_arguments_are_refused(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="positive"):
        await reserve(ledger, "r", 0)
    with pytest.raises(ValueError, match="same account"):
        await reserve(ledger, "r", 1, credit_account=MERCHANT)
    with pytest.raises(ValueError, match="ISO 4217"):
        await reserve(ledger, "r", 1, currency="dollars")
    with pytest.raises(ValueError, match="ledger_account"):
        await reserve(ledger, "r", 1, credit_account="Customer One")
    assert await ledger.payment_position(PAYMENT) is None


async def test_an_unbalanced_entry_is_refused_at_commit(
    ledger: Ledger, ledger_pool: asyncpg.Pool[asyncpg.Record]
) -> None:
    await ledger.transfer(
        transfer_id="t-1", debit_account=MERCHANT, credit_account=CUSTOMER, amount=5, currency="USD"
    )
    with pytest.raises(asyncpg.CheckViolationError, match="does not balance"):
        await ledger_pool.execute(
            "INSERT INTO ledger_entries (transfer_id, account, currency, amount) "
            "VALUES ('t-1', $1, 'USD', 5)",
            MERCHANT,
        )


# -- verification ----------------------------------------------------------------------


async def test_verify_names_an_unbalanced_transfer(
    ledger: Ledger, tamper: asyncpg.Connection[asyncpg.Record]
) -> None:
    await reserve(ledger, "rma-1:reserve", 1000)
    await ledger.post(transfer_id="rma-1:post", pending_id="rma-1:reserve")
    assert await ledger.verify() == []
    await tamper.execute(
        "INSERT INTO ledger_transfers (id, kind, debit_account, credit_account, amount, currency)"
        " VALUES ('planted', 'single', $1, $2, 500, 'USD')",
        MERCHANT,
        CUSTOMER,
    )
    await tamper.execute(
        "INSERT INTO ledger_entries (transfer_id, account, currency, amount)"
        " VALUES ('planted', $1, 'USD', 500)",
        MERCHANT,
    )
    problems = await ledger.verify()
    assert "transfer planted does not balance: its USD entries sum to +500, not 0" in problems
    assert all("planted" in problem for problem in problems)


async def test_verify_names_tampered_counters_and_orphans(
    ledger: Ledger, tamper: asyncpg.Connection[asyncpg.Record]
) -> None:
    await reserve(ledger, "rma-1:reserve", 1000)
    await tamper.execute(
        "UPDATE ledger_payments SET reserved = reserved + 1 WHERE payment_key = $1", PAYMENT
    )
    await tamper.execute(
        "INSERT INTO ledger_transfers (id, kind, debit_account, credit_account, amount, currency)"
        " VALUES ('bare', 'single', $1, $2, 7, 'USD')",
        MERCHANT,
        CUSTOMER,
    )
    await tamper.execute(
        "INSERT INTO ledger_transfers (id, kind, pending_id, debit_account, credit_account,"
        " amount, currency, payment_key) VALUES ('lost', 'void', 'ghost', $1, $2, 9, 'USD', $3)",
        MERCHANT,
        CUSTOMER,
        PAYMENT,
    )
    assert await ledger.verify() == [
        "transfer bare (single) is posted but has no entries",
        "transfer lost (void) resolves pending transfer ghost, which does not exist",
        f"payment {PAYMENT}: reserved is 1001 USD, but its open pending transfers add up to 1000",
    ]


async def test_an_unreachable_database_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pool = await asyncpg.create_pool(f"postgresql://nobody@127.0.0.1:{port}/none", min_size=0)
    try:
        with pytest.raises(DatabaseUnavailable) as unavailable:
            await Ledger(pool).payment_position(PAYMENT)
        assert isinstance(unavailable.value.__cause__, OSError)
    finally:
        await pool.close()
