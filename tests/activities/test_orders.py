"""The order store on a real PostgreSQL: round trips, late events, and units that refunds hold,
which the database itself keeps within their lines and held by one live refund at most."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeAlias

import asyncpg
import pytest

from activities.errors import OrderConflict, OrderNotFound, QuoteRefused, QuoteStale
from activities.order_sources import OrderSourceError, load_order_source
from activities.orders import InvalidOrder, OrderBook
from tests.activities import platform_orders
from workflows.models import RefundLineRequest
from workflows.orders import Order, OrderLine, QuoteInput, Shipping, TaxLine
from workflows.refund_policy import RefundPolicy

Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def order(order_id: str = "A-1", currency: str = "usd", **changes: object) -> Order:
    """Two lines, one with a discount and two tax rates, and taxed shipping."""
    fields: dict[str, object] = {
        "order_id": order_id,
        "psp": "stripe",
        "payment_id": "pi_1",
        "currency": currency,
        "customer_id": "cus_1",
        "placed_at": datetime(2025, 2, 28, 9, 30, tzinfo=UTC),
        "lines": [
            OrderLine(
                line_id="L1",
                sku="MUG",
                quantity=3,
                unit_price=1999,
                discount=500,
                taxes=[
                    TaxLine(jurisdiction="US-MA", rate=Decimal("0.0625"), amount=344),
                    TaxLine(jurisdiction="US-MA-BOSTON", rate=Decimal("0.01"), amount=55),
                ],
            ),
            OrderLine(line_id="L2", sku="TEAPOT", quantity=1, unit_price=5500),
        ],
        "shipping": Shipping(
            amount=1200, taxes=[TaxLine(jurisdiction="US-MA", rate=Decimal("0.0625"), amount=75)]
        ),
    }
    return Order.model_validate(fields | changes)


def line(
    line_id: str, sku: str, quantity: int, price: int, discount: int, *taxes: tuple[str, str, int]
) -> OrderLine:
    return OrderLine(
        line_id=line_id,
        sku=sku,
        quantity=quantity,
        unit_price=price,
        discount=discount,
        taxes=[TaxLine(jurisdiction=j, rate=Decimal(rate), amount=a) for j, rate, a in taxes],
    )


def with_line(base: Order, line_id: str, **changes: object) -> Order:
    lines = [
        line.model_copy(update=changes) if line.line_id == line_id else line for line in base.lines
    ]
    return base.model_copy(update={"lines": lines})


@pytest.fixture
def book(ledger_pool: Pool) -> OrderBook:
    return OrderBook(ledger_pool)


async def claim(pool: Pool, book: OrderBook, refund_id: str, units: dict[str, list[int]]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await book.claim(conn, order_id="A-1", refund_id=refund_id, units=units)


# -- saving and reading back ------------------------------------------------------------


async def test_an_order_comes_back_as_it_was_saved_in_any_currency(book: OrderBook) -> None:
    usd = order()
    kwd = order(
        "K-1",
        "kwd",
        lines=[line("1", "OUD", 2, 12_345, 0, ("KW", "0.05", 1235))],
        shipping=Shipping(amount=2_500),
    )
    jpy = order(
        "J-1",
        "JPY",
        lines=[line("1", "TEA", 5, 980, 90, ("JP", "0.08", 385), ("JP-13", "0.02", 96))],
        placed_at=None,
        customer_id=None,
    )

    assert [await book.save(o, "test") for o in (usd, kwd, jpy)] == ["created"] * 3
    assert await book.fetch("A-1") == usd
    assert await book.fetch("K-1") == kwd
    assert await book.fetch("J-1") == jpy
    assert await book.fetch("nope") is None
    assert await book.save(usd, "test") == "unchanged"
    kept = await book.fetch("A-1")
    assert kept is not None and [t.amount for t in kept.lines[0].taxes] == [344, 55]
    assert kept.shipping.taxes[0].rate == Decimal("0.0625")


async def test_a_naive_time_is_taken_as_utc_and_an_unknown_currency_is_refused(
    book: OrderBook,
) -> None:
    await book.save(order(placed_at=datetime(2025, 2, 28, 9, 30)), "test")
    stored = await book.fetch("A-1")
    assert stored is not None and stored.placed_at == datetime(2025, 2, 28, 9, 30, tzinfo=UTC)
    with pytest.raises(InvalidOrder, match="currency: 'XYZ'"):
        await book.save(order("X-1", "xyz"), "test")
    assert await book.fetch("X-1") is None


async def test_events_out_of_order_keep_the_newest(book: OrderBook) -> None:
    first, second = order(), with_line(order(), "L2", quantity=2)
    assert await book.save(second, "shop", T0 + timedelta(seconds=10)) == "created"
    assert await book.save(first, "shop", T0) == "stale"  # order.created delivered late
    assert await book.fetch("A-1") == second
    third = with_line(order(), "L2", quantity=4)
    assert await book.save(third, "shop", T0 + timedelta(seconds=10)) == "updated"  # same second
    assert await book.save(third, "shop", T0 + timedelta(seconds=20)) == "unchanged"
    assert await book.save(second, "shop", T0 + timedelta(seconds=15)) == "stale"
    assert await book.fetch("A-1") == third
    # An import (no version) always applies, and counts as now.
    assert await book.save(first, "import") == "updated"
    assert await book.save(third, "shop", T0 + timedelta(seconds=30)) == "stale"


async def test_an_update_may_not_undo_what_refunds_hold(book: OrderBook, ledger_pool: Pool) -> None:
    await book.save(order(), "shop")
    await claim(ledger_pool, book, "rma-1", {"L1": [1, 2], "#shipping": [1]})
    refusals = {
        "line L1 cannot be removed: refund rma-1 holds its unit 2": order(lines=[order().lines[1]]),
        "line L1 cannot go down to 1 unit(s): refund rma-1 holds its unit 2": with_line(
            order(), "L1", quantity=1, discount=0
        ),
        "its currency cannot change from USD to EUR while refund rma-1 holds": order(
            currency="eur"
        ),
        "its payment cannot change from stripe:pi_1 to stripe:pi_2": order(payment_id="pi_2"),
        # Each unit's share is cut from what the line was charged: no re-cut under refunds.
        "line L1 cannot change its price, quantity, discount or taxes": with_line(
            order(), "L1", quantity=3, discount=0
        ),
        "line L1 cannot change its price, quantity, discount or taxes: refund rma-1": with_line(
            order(), "L1", quantity=4
        ),
        "its shipping cannot change: refund rma-1 refunded it": order().model_copy(
            update={"shipping": Shipping()}
        ),
    }
    for message, update in refusals.items():
        with pytest.raises(OrderConflict, match=re.escape(message)):
            await book.save(update, "shop")
        assert await book.fetch("A-1") == order(), message
    # A line no refund holds may change; so may the customer.
    changed = with_line(order(), "L2", unit_price=5400).model_copy(update={"customer_id": "cus_7"})
    assert await book.save(changed, "shop") == "updated"
    await book.release("rma-1")
    assert await book.save(order(currency="eur", lines=[order().lines[1]]), "shop") == "updated"


async def test_a_file_of_orders_is_saved_whole_or_not_at_all(
    book: OrderBook, ledger_pool: Pool
) -> None:
    await book.save(order(), "shop")
    await claim(ledger_pool, book, "rma-1", {"L1": [3]})
    with pytest.raises(OrderConflict, match="A-1"):
        await book.save_all([order("B-1"), with_line(order(), "L1", quantity=2)], "import")
    assert await book.fetch("B-1") is None
    assert await book.save_all([order("B-1"), order()], "import") == ["created", "unchanged"]


# -- claims and releases -----------------------------------------------------------------


async def test_a_claim_repeated_changes_nothing_and_other_units_are_refused(
    book: OrderBook, ledger_pool: Pool
) -> None:
    await book.save(order(), "shop")
    await claim(ledger_pool, book, "rma-1", {"L1": [1], "#shipping": [1]})
    await claim(ledger_pool, book, "rma-1", {"#shipping": [1], "L1": [1]})
    assert await book.taken_units("A-1") == {"#shipping": [1], "L1": [1]}
    rows = await ledger_pool.fetchval("SELECT count(*) FROM order_refund_units")
    assert rows == 2
    with pytest.raises(OrderConflict, match="rma-1 already holds line #shipping unit 1, line L1"):
        await claim(ledger_pool, book, "rma-1", {"L1": [1, 2]})
    with pytest.raises(OrderNotFound, match="order B-9"):
        async with ledger_pool.acquire() as conn, conn.transaction():
            await book.claim(conn, order_id="B-9", refund_id="rma-2", units={"L1": [1]})


async def test_a_unit_held_by_another_refund_is_stale_and_the_callers_transaction_rolls_back(
    book: OrderBook, ledger_pool: Pool
) -> None:
    await book.save(order(), "shop")
    await claim(ledger_pool, book, "rma-1", {"L1": [1, 2]})
    with pytest.raises(QuoteStale, match="line L1: unit 2 is already held by refund rma-1"):
        async with ledger_pool.acquire() as conn, conn.transaction():
            await conn.execute(  # the caller's own write, e.g. the ledger's reservation
                "INSERT INTO disputed_payments (payment_key, dispute_id) VALUES ('k', 'd')"
            )
            await book.claim(conn, order_id="A-1", refund_id="rma-2", units={"L1": [2, 3]})
    assert await ledger_pool.fetchval("SELECT count(*) FROM disputed_payments") == 0
    assert await book.taken_units("A-1") == {"L1": [1, 2]}


async def test_two_refunds_claiming_the_same_unit_at_once_one_wins(
    book: OrderBook, ledger_pool: Pool
) -> None:
    await book.save(order(), "shop")
    outcomes = await asyncio.gather(
        *(claim(ledger_pool, book, f"rma-{n}", {"L2": [1]}) for n in range(8)),
        return_exceptions=True,
    )
    assert sum(outcome is None for outcome in outcomes) == 1
    assert all(isinstance(o, QuoteStale) for o in outcomes if o is not None)
    assert await book.taken_units("A-1") == {"L2": [1]}


async def test_the_database_keeps_units_within_their_lines_even_from_raw_sql(
    book: OrderBook, ledger_pool: Pool
) -> None:
    await book.save(order(), "shop")
    insert = (
        "INSERT INTO order_refund_units (order_id, line_id, unit_no, refund_id) "
        "VALUES ('A-1', $1, $2, 'raw')"
    )
    for line_id, unit, why in [
        ("L1", 4, "line L1 of order A-1 has 3 unit"),
        ("L1", 0, "there is no unit 0"),
        ("#shipping", 2, "line #shipping of order A-1 has 1 unit"),
        ("L9", 1, "order A-1 has no line L9"),
    ]:
        with pytest.raises(asyncpg.CheckViolationError, match=why):
            await ledger_pool.execute(insert, line_id, unit)
    await ledger_pool.execute(insert, "L1", 3)
    with pytest.raises(asyncpg.UniqueViolationError):
        await ledger_pool.execute(insert, "L1", 3)
    with pytest.raises(asyncpg.CheckViolationError, match="cannot go down to 2 unit"):
        await ledger_pool.execute("UPDATE order_lines SET quantity = 2 WHERE line_id = 'L1'")
    with pytest.raises(asyncpg.CheckViolationError, match="cannot be removed: refund raw"):
        await ledger_pool.execute("DELETE FROM order_lines WHERE line_id = 'L1'")
    with pytest.raises(QuoteStale, match="has 3 unit"):  # a quote from before a change
        await claim(ledger_pool, book, "rma-1", {"L1": [4]})


async def test_a_release_gives_the_units_back_to_the_next_quote(
    book: OrderBook, ledger_pool: Pool
) -> None:
    await book.save(order(), "shop")
    asked = QuoteInput(
        order_id="A-1", lines=[RefundLineRequest(line_id="L1", quantity=2)], reason="other"
    )
    first = await book.quote(asked, RefundPolicy())
    await claim(ledger_pool, book, "rma-1", first.taken())
    one = asked.model_copy(update={"lines": [RefundLineRequest(line_id="L1", quantity=1)]})
    assert (await book.quote(one, RefundPolicy())).lines[0].units == [3]
    with pytest.raises(QuoteRefused, match="only 1 of its 3 are still refundable"):
        await book.quote(asked, RefundPolicy())
    await book.release("rma-1")
    await book.release("rma-1")  # idempotent
    assert await book.taken_units("A-1") == {}
    again = await book.quote(asked, RefundPolicy())
    assert again == first
    await claim(ledger_pool, book, "rma-2", again.taken())  # the released units are free
    assert await book.taken_units("A-1") == {"L1": [1, 2]}


async def test_a_quote_of_an_unknown_order_says_so(book: OrderBook) -> None:
    with pytest.raises(OrderNotFound, match="order Z-1 is not in the order store"):
        await book.quote(QuoteInput(order_id="Z-1"), RefundPolicy())


# -- an order source -------------------------------------------------------------------


async def test_an_order_missing_from_the_store_comes_from_the_source_once(
    ledger_pool: Pool,
) -> None:
    book = OrderBook.configured(ledger_pool, "tests.activities.platform_orders:platform")
    platform_orders.ASKED.clear()
    found = await book.fetch("plat-7")
    assert found is not None and (found.currency, found.lines[0].quantity) == ("EUR", 2)
    assert await book.fetch("plat-7") == found
    assert await book.fetch("other-1") is None
    assert platform_orders.ASKED == ["plat-7", "other-1"]
    source = await ledger_pool.fetchval("SELECT source FROM orders WHERE order_id = 'plat-7'")
    assert source == "platform"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("tests.activities.platform_orders", "must be package.module:factory"),
        ("tests.activities.no_such_module:platform", "no module 'tests.activities.no_such"),
        ("tests.activities.platform_orders:nothing", "has no 'nothing'"),
        ("tests.activities.platform_orders:NOT_A_FACTORY", "is a int, not a factory"),
        ("tests.activities.platform_orders:needs_a_key", "callable with no arguments"),
        ("tests.activities.platform_orders:broken", "failed: RuntimeError: PLATFORM_TOKEN"),
        ("tests.activities.platform_orders:blocking", "has no `async def fetch_order"),
    ],
)
def test_a_bad_order_source_is_one_clear_error(spec: str, message: str) -> None:
    with pytest.raises(OrderSourceError, match=message):
        load_order_source(spec)
