"""The order store's SQL: an order's rows read back as an ``Order`` and written from one, the
units live refunds hold, and what an update may not undo of them.

Schema: ``deploy/migrations/0005_orders.sql``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from workflows.orders import SHIPPING_LINE, Order, OrderLine

Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"


@dataclass(frozen=True)
class HeldUnit:
    line_id: str
    unit_no: int
    refund_id: str


@dataclass(frozen=True)
class StoredOrder:
    order: Order
    version: datetime
    source: str


_ORDER_COLUMNS = (
    "order_id, psp, payment_id, currency, customer_id, placed_at, shipping_amount, source, version"
)


def as_utc(moment: datetime) -> datetime:
    """A time with its zone; one without is taken to be UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def read_order(conn: Connection, order_id: str, lock: bool = False) -> StoredOrder | None:
    """The order as stored; ``lock`` holds its row until the transaction ends (claims and
    updates of one order then take turns)."""
    suffix = " FOR NO KEY UPDATE" if lock else ""
    row = await conn.fetchrow(
        f"SELECT {_ORDER_COLUMNS} FROM orders WHERE order_id = $1{suffix}", order_id
    )
    if row is None:
        return None
    lines = await conn.fetch(
        "SELECT line_id, sku, quantity, unit_price, discount FROM order_lines "
        "WHERE order_id = $1 ORDER BY position, line_id",
        order_id,
    )
    taxes: dict[str, list[dict[str, object]]] = {}
    for tax in await conn.fetch(
        "SELECT line_id, jurisdiction, rate, amount FROM order_taxes "
        "WHERE order_id = $1 ORDER BY line_id, position",
        order_id,
    ):
        taxes.setdefault(tax["line_id"], []).append(
            {"jurisdiction": tax["jurisdiction"], "rate": tax["rate"], "amount": tax["amount"]}
        )
    order = Order.model_validate(
        {
            "order_id": row["order_id"],
            "psp": row["psp"],
            "payment_id": row["payment_id"],
            "currency": row["currency"],
            "customer_id": row["customer_id"],
            "placed_at": row["placed_at"],
            "lines": [
                dict(line.items()) | {"taxes": taxes.get(line["line_id"], [])} for line in lines
            ],
            "shipping": {
                "amount": row["shipping_amount"],
                "taxes": taxes.get(SHIPPING_LINE, []),
            },
        }
    )
    return StoredOrder(order=order, version=row["version"], source=row["source"])


async def insert_order(
    conn: Connection, order: Order, source: str, version: datetime | None
) -> bool:
    """Insert a new order with its lines and taxes; False (nothing written) when it exists."""
    created = await conn.fetchval(
        f"INSERT INTO orders ({_ORDER_COLUMNS}) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9, now())) "
        "ON CONFLICT (order_id) DO NOTHING RETURNING true",
        order.order_id,
        order.psp.value,
        order.payment_id,
        order.currency,
        order.customer_id,
        order.placed_at,
        order.shipping.amount,
        source,
        version,
    )
    if not created:
        return False
    await write_lines(conn, order)
    return True


async def update_order(
    conn: Connection, order: Order, source: str, version: datetime | None
) -> None:
    await conn.execute(
        "UPDATE orders SET psp = $2, payment_id = $3, currency = $4, customer_id = $5, "
        "placed_at = $6, shipping_amount = $7, source = $8, "
        "version = greatest(version, coalesce($9, now())), updated_at = now() "
        "WHERE order_id = $1",
        order.order_id,
        order.psp.value,
        order.payment_id,
        order.currency,
        order.customer_id,
        order.placed_at,
        order.shipping.amount,
        source,
        version,
    )
    await write_lines(conn, order)


async def advance_version(conn: Connection, order_id: str, version: datetime | None) -> None:
    await conn.execute(
        "UPDATE orders SET version = greatest(version, coalesce($2, now())) WHERE order_id = $1",
        order_id,
        version,
    )


async def write_lines(conn: Connection, order: Order) -> None:
    """Make the order's lines and taxes exactly ``order``'s: lines upserted (so the triggers
    see each quantity change), lines gone deleted, taxes replaced."""
    ids = [line.line_id for line in order.lines]
    await conn.execute("DELETE FROM order_taxes WHERE order_id = $1", order.order_id)
    await conn.execute(
        "DELETE FROM order_lines WHERE order_id = $1 AND line_id <> ALL($2::text[])",
        order.order_id,
        ids,
    )
    await conn.executemany(
        "INSERT INTO order_lines "
        "(order_id, line_id, position, sku, quantity, unit_price, discount) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) "
        "ON CONFLICT (order_id, line_id) DO UPDATE SET position = EXCLUDED.position, "
        "sku = EXCLUDED.sku, quantity = EXCLUDED.quantity, "
        "unit_price = EXCLUDED.unit_price, discount = EXCLUDED.discount",
        [
            (
                order.order_id,
                line.line_id,
                position,
                line.sku,
                line.quantity,
                line.unit_price,
                line.discount,
            )
            for position, line in enumerate(order.lines, start=1)
        ],
    )
    taxed = [(line.line_id, line.taxes) for line in order.lines]
    taxed.append((SHIPPING_LINE, order.shipping.taxes))
    rows = [
        (order.order_id, line_id, position, tax.jurisdiction, tax.rate, tax.amount)
        for line_id, taxes in taxed
        for position, tax in enumerate(taxes, start=1)
    ]
    if rows:
        await conn.executemany(
            "INSERT INTO order_taxes (order_id, line_id, position, jurisdiction, rate, amount) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            rows,
        )


async def held_units(conn: Connection, order_id: str) -> list[HeldUnit]:
    """The order's units that live (unreleased) refunds hold."""
    rows = await conn.fetch(
        "SELECT line_id, unit_no, refund_id FROM order_refund_units "
        "WHERE order_id = $1 AND released_at IS NULL ORDER BY line_id, unit_no",
        order_id,
    )
    return [HeldUnit(row["line_id"], row["unit_no"], row["refund_id"]) for row in rows]


def update_conflicts(stored: Order, new: Order, held: Iterable[HeldUnit]) -> list[str]:
    """What the update of ``stored`` to ``new`` would undo of the units refunds hold."""
    held = list(held)
    if not held:
        return []
    problems = []
    holders = sorted({unit.refund_id for unit in held})
    who = f"refund{'s' if len(holders) > 1 else ''} {', '.join(holders)} hold"
    who += "s" if len(holders) == 1 else ""
    if new.currency != stored.currency:
        problems.append(
            f"its currency cannot change from {stored.currency} to {new.currency} while "
            f"{who} units of it"
        )
    if (new.psp, new.payment_id) != (stored.psp, stored.payment_id):
        problems.append(
            f"its payment cannot change from {stored.psp.value}:{stored.payment_id} to "
            f"{new.psp.value}:{new.payment_id} while {who} units of it"
        )
    highest = {unit.line_id: unit for unit in sorted(held, key=lambda u: (u.line_id, u.unit_no))}
    highest.pop(SHIPPING_LINE, None)  # shipping is always there, as one unit
    for line_id, unit in highest.items():
        line = new.line(line_id)
        if line is None:
            problems.append(
                f"line {line_id} cannot be removed: refund {unit.refund_id} holds its unit "
                f"{unit.unit_no}"
            )
        elif line.quantity < unit.unit_no:
            problems.append(
                f"line {line_id} cannot go down to {line.quantity} unit(s): refund "
                f"{unit.refund_id} holds its unit {unit.unit_no}"
            )
        elif _charged(line) != _charged(stored.line(line_id)):
            # Each unit's share is cut from what the line was charged: a changed price,
            # discount, quantity or tax would re-cut it under refunds already paid.
            problems.append(
                f"line {line_id} cannot change its price, quantity, discount or taxes: refund "
                f"{unit.refund_id} holds its unit {unit.unit_no}"
            )
    shipping_holder = next((u.refund_id for u in held if u.line_id == SHIPPING_LINE), None)
    if shipping_holder and new.shipping != stored.shipping:
        problems.append(f"its shipping cannot change: refund {shipping_holder} refunded it")
    return problems


def _charged(line: OrderLine | None) -> object:
    if line is None:
        return None
    taxes = [(tax.jurisdiction, tax.rate, tax.amount) for tax in line.taxes]
    return (line.quantity, line.unit_price, line.discount, taxes)
