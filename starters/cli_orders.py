"""``refunds orders``: import orders into the order store, and show one with what is left of it.

The file formats are described in ``starters.order_files``; an import is all or nothing (one
transaction, every row checked first).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import click

from activities.orders import OrderBook
from starters.cli_support import emit, load_settings, run_async
from starters.order_files import OrderFileError, read_orders
from workers.settings import Settings, SettingsError
from workers.worker import ledger_pool
from workflows.currencies import format_amount
from workflows.orders import SHIPPING_LINE, Order, TakenUnits
from workflows.quotes import units_share


@asynccontextmanager
async def order_book(settings: Settings, migrate: bool = False) -> AsyncIterator[OrderBook]:
    """The order store of REFUNDS_DATABASE_URL (with REFUNDS_ORDER_SOURCE, if set)."""
    async with ledger_pool(settings.require_database_url(), 4, migrate) as pool:
        if await pool.fetchval("SELECT to_regclass('orders')") is None:
            raise SettingsError(
                "REFUNDS_DATABASE_URL has no order store yet (no orders table): import "
                "orders with `refunds orders import`, or start a worker, to create it"
            )
        yield OrderBook.configured(pool, settings.money.order_source)


@click.group()
def orders() -> None:
    """The order store (REFUNDS_DATABASE_URL): import orders, show one."""


@orders.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "--format",
    "kind",
    type=click.Choice(["auto", "json", "csv"]),
    default="auto",
    show_default=True,
    help="auto: by the file's extension, else by its content.",
)
@click.option("--json", "as_json", is_flag=True)
@run_async
async def import_orders(file: str, kind: str, as_json: bool) -> None:
    """Import orders from FILE: JSON (a list of orders, or {"orders": [...]}) or CSV (a row per
    order line, the order's columns repeated on each). All or nothing: a bad row stores nothing.

    \b
    CSV columns (amounts in minor units, rates 0.0725 or 7.25%):
      order_id, psp, payment_id, currency, customer_id, placed_at, shipping_amount,
      shipping_tax1_jurisdiction, shipping_tax1_rate, shipping_tax1_amount, shipping_tax2_...,
      line_id, sku, quantity, unit_price, discount,
      tax1_jurisdiction, tax1_rate, tax1_amount, tax2_jurisdiction, tax2_rate, tax2_amount
    A tax with no amount is charged round_half_up(net x rate), once, at import.
    """
    try:
        with click.open_file(file, encoding="utf-8-sig") as handle:
            text = handle.read()
    except OSError as exc:
        raise click.ClickException(f"cannot read {file}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{file} is not UTF-8 text: {exc}") from exc
    name = "stdin" if file == "-" else file
    try:
        found = read_orders(name, text, kind)
    except OrderFileError as exc:
        raise click.ClickException(str(exc)) from exc
    async with order_book(load_settings(), migrate=True) as book:
        outcomes = await book.save_all(found, "import")
    counts = {kind: outcomes.count(kind) for kind in ("created", "updated", "unchanged")}
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    emit(
        {
            "file": name,
            "orders": [
                {"order_id": order.order_id, "outcome": outcome}
                for order, outcome in zip(found, outcomes, strict=True)
            ],
            **counts,
        },
        as_json,
        f"imported {len(found)} order{'s' if len(found) > 1 else ''} from {name}: {summary}",
    )


@orders.command()
@click.argument("order_id")
@click.option("--json", "as_json", is_flag=True)
@run_async
async def show(order_id: str, as_json: bool) -> None:
    """Show an order: its lines, taxes, shipping, and what is still refundable of each."""
    async with order_book(load_settings()) as book:
        order = await book.fetch(order_id)
        if order is None:
            raise click.ClickException(f"order {order_id} is not in the order store")
        taken = await book.taken_units(order_id)
    view = order_view(order, taken)
    emit(view, as_json, describe_order(order, view))


def order_view(order: Order, taken: TakenUnits) -> dict[str, Any]:
    """The order, and per line what live refunds hold and what is still refundable."""
    lines: list[dict[str, Any]] = []
    for line in order.lines:
        held = sorted(taken.get(line.line_id, []))
        free = [unit for unit in range(1, line.quantity + 1) if unit not in held]
        parts = [line.net, *(tax.amount for tax in line.taxes)]
        lines.append(
            {
                "line_id": line.line_id,
                "paid": line.paid,
                "held_units": held,
                "refundable_quantity": len(free),
                "refundable_amount": sum(units_share(p, free, line.quantity) for p in parts),
            }
        )
    shipping = 0 if 1 in taken.get(SHIPPING_LINE, []) else order.shipping.paid
    return {
        "order": order.model_dump(mode="json"),
        "total": order.total,
        "refundable": {
            "lines": lines,
            "shipping": shipping,
            "total": sum(line["refundable_amount"] for line in lines) + shipping,
        },
    }


def describe_order(order: Order, view: dict[str, Any]) -> str:
    def money(amount: int) -> str:
        return format_amount(amount, order.currency)

    head = f"order {order.order_id}: {order.psp.value} payment {order.payment_id}, {order.currency}"
    if order.customer_id:
        head += f", customer {order.customer_id}"
    if order.placed_at:
        head += f", placed {order.placed_at.isoformat()}"
    text = [head]
    refundable = view["refundable"]
    for line, left in zip(order.lines, refundable["lines"], strict=True):
        price = f"{line.quantity} x {money(line.unit_price)}"
        if line.discount:
            price += f" - {money(line.discount)} discount"
        text.append(f"  {line.line_id}  {line.sku}  {price}  = {money(line.net)}")
        text += [
            f"      tax {tax.jurisdiction} {percent(tax.rate)}  {money(tax.amount)}"
            for tax in line.taxes
        ]
        text.append(
            f"      paid {money(line.paid)}; refundable {left['refundable_quantity']} of "
            f"{line.quantity}, {money(left['refundable_amount'])}"
            + (
                f" (units {', '.join(map(str, left['held_units']))} held)"
                if left["held_units"]
                else ""
            )
        )
    if order.shipping.paid:
        taxes = "".join(
            f", tax {tax.jurisdiction} {percent(tax.rate)} {money(tax.amount)}"
            for tax in order.shipping.taxes
        )
        state = "refundable" if refundable["shipping"] else "already refunded"
        text.append(f"  shipping {money(order.shipping.amount)}{taxes}: {state}")
    text.append(f"  total paid {money(order.total)}; still refundable {money(refundable['total'])}")
    return "\n".join(text)


def percent(rate: Decimal) -> str:
    """``0.0625`` -> ``6.25%``."""
    return f"{(rate * 100).normalize():f}%"
