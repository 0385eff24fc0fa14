"""``refunds quote``: what a refund of some of an order's lines would return, to the minor unit.

The same calculation the refund workflow makes (``workflows.quotes.quote_refund``) over the
order store and the units live refunds already hold, under the refund policy of the
environment (REFUNDS_SHIPPING_REFUND, REFUNDS_RESTOCKING_FEE).
"""

from __future__ import annotations

from decimal import Decimal

import click

from starters.cli_orders import order_book, percent
from starters.cli_support import emit, load_settings, run_async
from workflows.currencies import format_amount
from workflows.models import RefundLineRequest, RefundReason
from workflows.orders import QuoteInput, RefundQuote


def return_line(text: str) -> RefundLineRequest:
    """``L1=2`` -> line L1, two units (``--line`` of `refunds quote` and `refunds start`)."""
    line_id, sep, quantity = text.partition("=")
    if (
        not sep
        or not line_id.strip()
        or not (quantity.strip().isascii() and quantity.strip().isdigit())
        or int(quantity) < 1
    ):
        raise click.BadParameter(
            f"{text!r}: expected LINE=QUANTITY, e.g. L1=2", param_hint="--line"
        )
    return RefundLineRequest(line_id=line_id.strip(), quantity=int(quantity))


@click.command()
@click.option("--order", "order_id", required=True, help="The order's id in the order store.")
@click.option(
    "--line", "lines", multiple=True, metavar="LINE=QTY", help="A line and how many of its units."
)
@click.option(
    "--reason",
    type=click.Choice([r.value for r in RefundReason]),
    default=RefundReason.REQUESTED_BY_CUSTOMER.value,
    show_default=True,
)
@click.option(
    "--shipping/--no-shipping",
    default=None,
    help="Ask for the shipping back, or not (default: as the policy says for the reason).",
)
@click.option("--json", "as_json", is_flag=True)
@run_async
async def quote(
    order_id: str, lines: tuple[str, ...], reason: str, shipping: bool | None, as_json: bool
) -> None:
    """Quote a refund of order lines: each line's price and tax, shipping, restocking fee,
    the total, and what is left of each line afterwards. Nothing is claimed or moved.

    \b
    refunds quote --order A-1001 --line L1=2 --line L2=1 --reason out_of_stock
    """
    asked = QuoteInput(
        order_id=order_id,
        lines=[return_line(text) for text in lines],
        reason=reason,
        refund_shipping=shipping,
    )
    settings = load_settings()
    async with order_book(settings) as book:
        answer = await book.quote(asked, settings.money.refund_policy)
    emit(answer, as_json, describe_quote(answer))


def describe_quote(quote: RefundQuote) -> str:
    def money(amount: int) -> str:
        return f"{format_amount(amount, quote.currency):>16}"

    rows: list[tuple[str, int]] = []
    for line in quote.lines:
        units = ", ".join(map(str, line.units))
        rows.append((f"{line.line_id} {line.sku} x{line.quantity} (units {units})", line.amount))
        rows += [
            (f"    tax {tax.jurisdiction} {percent(tax.rate)}", tax.amount) for tax in line.taxes
        ]
    if quote.shipping or quote.shipping_tax:
        rows.append(("shipping", quote.shipping))
        rows.append(("shipping tax", quote.shipping_tax))
    if quote.restocking_fee:
        fee = percent(Decimal(quote.restocking_fee_bps) / 10_000)
        rows.append((f"restocking fee ({fee})", -quote.restocking_fee))
    width = max(34, *(len(label) for label, _ in rows)) if rows else 34
    text = [f"quote for order {quote.order_id} ({quote.reason}), {quote.currency}"]
    text += [f"  {label:<{width}}{money(amount)}" for label, amount in rows]
    text.append(f"  {'total':<{width}}{money(quote.total)}")
    text.append("left after this refund:")
    text += [
        f"  {line.line_id}: {line.refundable_quantity_after} unit(s) still refundable "
        f"({line.refundable_quantity_before} before), "
        f"{format_amount(line.refundable_amount_after, quote.currency)}"
        for line in quote.lines
    ]
    text.append(
        f"  the order: {format_amount(quote.refundable_after, quote.currency)} still refundable"
    )
    return "\n".join(text)
