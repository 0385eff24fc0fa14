"""The order store in PostgreSQL: orders as charged, and the units of them refunds hold.

``OrderBook`` keeps orders from the shop's events, imports and a commerce platform's order
source, quotes refunds of their lines (``workflows.quotes.quote_refund`` over the stored order
and the units live refunds hold), and claims and releases those units for the refund
workflow. The database keeps a unit held by one live refund at most, and every held unit
within its line (``deploy/migrations/0005_orders.sql``); this module says so in plain words.

    save      created | updated | unchanged | stale (an older event arriving late: ignored);
              OrderConflict when the update would undo what refunds hold
    fetch     from the store, else from the order source (then kept, source "platform")
    claim     inside the caller's transaction; QuoteStale when another refund holds a unit
    release   gives a refund's units back; idempotent
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Literal

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from activities.errors import (
    DatabaseUnavailable,
    OrderConflict,
    OrderNotFound,
    QuoteRefused,
    QuoteStale,
)
from activities.ledger_sql import UNAVAILABLE
from activities.order_sources import OrderSource, load_order_source
from activities.order_sql import (
    Connection,
    advance_version,
    as_utc,
    held_units,
    insert_order,
    read_order,
    update_conflicts,
    update_order,
)
from workflows import quotes
from workflows.currencies import is_known_currency
from workflows.orders import Order, QuoteInput, RefundQuote, TakenUnits
from workflows.refund_policy import RefundPolicy

Isolation = Literal["read_committed", "repeatable_read"]
SaveOutcome = Literal["created", "updated", "unchanged", "stale"]
HELD_ONCE = "order_refund_units_held_once"
WITHIN_LINE = "order_refund_units_within_line"


class InvalidOrder(ValueError):
    """An order the store cannot keep as it is (an unknown currency); names the field."""


class OrderBook:
    def __init__(
        self, pool: asyncpg.Pool[asyncpg.Record], source: OrderSource | None = None
    ) -> None:
        self._pool = pool
        self._source = source

    @classmethod
    def configured(cls, pool: asyncpg.Pool[asyncpg.Record], source: str | None) -> OrderBook:
        """The book with ``REFUNDS_ORDER_SOURCE`` (``package.module:factory``), if set."""
        return cls(pool, load_order_source(source) if source else None)

    async def save(self, order: Order, source: str, version: datetime | None = None) -> str:
        """Store ``order`` as of ``version`` (the event's time; None: now, an import)."""
        async with self._transaction() as conn:
            return await self._save_on(conn, order, source, version)

    async def save_all(
        self, orders: Sequence[Order], source: str, version: datetime | None = None
    ) -> list[SaveOutcome]:
        """Store every order or none (one transaction): an import of a file."""
        async with self._transaction() as conn:
            return [await self._save_on(conn, order, source, version) for order in orders]

    async def fetch(self, order_id: str) -> Order | None:
        stored = await self._stored(order_id)
        if stored is not None or self._source is None:
            return stored
            return None
        found = await self._source.fetch_order(order_id)
        if found is None:
            return None
        if not isinstance(found, Order):
            raise TypeError(
                f"the order source {type(self._source).__name__} answered a "
                f"{type(found).__name__} for order {order_id}, not an Order"
            )
        if found.order_id != order_id:
            raise OrderNotFound(
                f"the order source answered order {found.order_id} when asked for {order_id}"
            )
        await self.save(found, "platform")
        return await self._stored(order_id)

    async def _stored(self, order_id: str) -> Order | None:
        async with self._transaction(readonly=True) as conn:
            stored = await read_order(conn, order_id)
        return None if stored is None else stored.order

    async def taken_units(self, order_id: str, besides: str | None = None) -> TakenUnits:
        """The units of each line that live refunds hold (shipping: ``#shipping``, unit 1),
        other than refund ``besides``'s own."""
        async with self._connection() as conn:
            held = await held_units(conn, order_id)
        taken: TakenUnits = {}
        for unit in held:
            if unit.refund_id != besides:
                taken.setdefault(unit.line_id, []).append(unit.unit_no)
        return taken

    async def quote(
        self, asked: QuoteInput, policy: RefundPolicy, besides: str | None = None
    ) -> RefundQuote:
        """The quote of ``asked``. ``besides``: the refund being quoted, whose own units count
        as free (a workflow task run again after its reservation committed quotes the same)."""
        order = await self.fetch(asked.order_id)
        if order is None:
            where = "the order store" + (" or the order source" if self._source else "")
            raise OrderNotFound(f"order {asked.order_id} is not in {where}")
        taken = await self.taken_units(asked.order_id, besides)
        try:
            return quotes.quote_refund(order, taken, asked, policy)
        except quotes.QuoteRefused as exc:
            raise QuoteRefused(str(exc)) from exc

    async def claim(
        self, conn: Connection, *, order_id: str, refund_id: str, units: TakenUnits
    ) -> None:
        """Hold ``units`` of the order for ``refund_id``, in the caller's transaction (a
        savepoint of it: a refusal leaves the caller's transaction usable, to roll back)."""
        wanted = {(line_id, unit) for line_id, numbers in units.items() for unit in numbers}
        try:
            async with conn.transaction():
                if await read_order(conn, order_id, lock=True) is None:
                    raise OrderNotFound(f"order {order_id} is not in the order store")
                mine = await conn.fetch(
                    "SELECT order_id, line_id, unit_no FROM order_refund_units "
                    "WHERE refund_id = $1 AND released_at IS NULL",
                    refund_id,
                )
                if mine:
                    _same_claim(mine, order_id, refund_id, wanted)
                    return
                await _refuse_taken(conn, order_id, refund_id, wanted)
                await conn.executemany(
                    "INSERT INTO order_refund_units (order_id, line_id, unit_no, refund_id) "
                    "VALUES ($1, $2, $3, $4)",
                    [(order_id, line_id, unit, refund_id) for line_id, unit in sorted(wanted)],
                )
        except asyncpg.UniqueViolationError as exc:
            raise QuoteStale(
                f"order {order_id}: a unit refund {refund_id} quoted was just claimed by "
                "another refund; quote again"
            ) from exc
        except asyncpg.CheckViolationError as exc:
            if exc.constraint_name != WITHIN_LINE:
                raise
            raise QuoteStale(
                f"{exc.message}: the order changed since the quote; quote again"
            ) from exc

    async def release(self, refund_id: str) -> None:
        """Give back the units ``refund_id`` holds (it ended without moving them)."""
        async with self._transaction() as conn:
            await conn.execute(
                "UPDATE order_refund_units SET released_at = now() "
                "WHERE refund_id = $1 AND released_at IS NULL",
                refund_id,
            )

    async def _save_on(
        self, conn: Connection, order: Order, source: str, version: datetime | None
    ) -> SaveOutcome:
        if not is_known_currency(order.currency):
            raise InvalidOrder(
                f"order {order.order_id}: currency: {order.currency!r} is not an ISO 4217 code"
            )
        if order.placed_at is not None:
            order = order.model_copy(update={"placed_at": as_utc(order.placed_at)})
        version = None if version is None else as_utc(version)
        if await insert_order(conn, order, source, version):
            return "created"
        stored = await read_order(conn, order.order_id, lock=True)
        assert stored is not None  # orders are never deleted
        if version is not None and version < stored.version:
            return "stale"
        if stored.order == order:
            await advance_version(conn, order.order_id, version)
            return "unchanged"
        problems = update_conflicts(stored.order, order, await held_units(conn, order.order_id))
        if problems:
            raise OrderConflict(f"order {order.order_id} not updated: {'; '.join(problems)}")
        try:
            async with conn.transaction():
                await update_order(conn, order, source, version)
        except asyncpg.CheckViolationError as exc:
            if exc.constraint_name != WITHIN_LINE:
                raise
            raise OrderConflict(f"order {order.order_id} not updated: {exc.message}") from exc
        return "updated"

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[PoolConnectionProxy[asyncpg.Record]]:
        try:
            async with self._pool.acquire() as conn:
                yield conn
        except UNAVAILABLE as exc:
            raise DatabaseUnavailable(f"the order store is unavailable: {exc}") from exc

    @asynccontextmanager
    async def _transaction(
        self, readonly: bool = False
    ) -> AsyncIterator[PoolConnectionProxy[asyncpg.Record]]:
        isolation: Isolation = "repeatable_read" if readonly else "read_committed"
        async with (
            self._connection() as conn,
            conn.transaction(isolation=isolation, readonly=readonly),
        ):
            yield conn


def _same_claim(
    mine: Sequence[asyncpg.Record], order_id: str, refund_id: str, wanted: set[tuple[str, int]]
) -> None:
    """A repeated claim of the same units is done already; of other units, a conflict."""
    held = {(row["line_id"], row["unit_no"]) for row in mine}
    if held == wanted and all(row["order_id"] == order_id for row in mine):
        return
    raise OrderConflict(
        f"refund {refund_id} already holds {_units_text(held)} of order {mine[0]['order_id']}; "
        f"it cannot claim {_units_text(wanted)} of order {order_id} as well (release it first)"
    )


async def _refuse_taken(
    conn: Connection, order_id: str, refund_id: str, wanted: set[tuple[str, int]]
) -> None:
    rows = await conn.fetch(
        "SELECT line_id, unit_no, refund_id FROM order_refund_units "
        "WHERE order_id = $1 AND released_at IS NULL ORDER BY line_id, unit_no",
        order_id,
    )
    taken = [row for row in rows if (row["line_id"], row["unit_no"]) in wanted]
    if not taken:
        return
    first = taken[0]
    others = sorted({row["refund_id"] for row in taken})
    raise QuoteStale(
        f"order {order_id}, line {first['line_id']}: unit {first['unit_no']} is already held "
        f"by refund {', '.join(others)}, so refund {refund_id} cannot claim "
        f"{_units_text({(row['line_id'], row['unit_no']) for row in taken})}; quote again"
    )


def _units_text(units: set[tuple[str, int]]) -> str:
    if not units:
        return "no units"
    lines: dict[str, list[int]] = {}
    for line_id, unit in sorted(units):
        lines.setdefault(line_id, []).append(unit)
    return ", ".join(
        f"line {line_id} unit{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}"
        for line_id, numbers in lines.items()
    )
