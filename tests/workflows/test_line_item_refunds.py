"""Returns of order lines, end to end: the quote, the amount refunded at the sandbox and the
ledger's post agree to the minor unit, and partial refunds of every line return what was paid."""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg
from temporalio.testing import WorkflowEnvironment

from activities.ledger import Ledger
from activities.orders import OrderBook
from deploy.sandboxes.stripe_shop import create_payment, shop_client
from starters.client import start_refund
from tests.support.stack import SANDBOX_KEY, running_worker
from tests.workflows.test_refund_paths import refund_request
from workflows.models import RefundLineRequest, RefundReason, RefundResult, RefundStatus
from workflows.orders import Order, OrderLine, QuoteInput, Shipping, TaxLine
from workflows.refund_policy import RefundPolicy


def order_of(payment_id: str, currency: str = "usd") -> Order:
    """Two lines with a discount and two tax rates, and taxed shipping: 130.15 in all."""
    state, city = Decimal("0.0625"), Decimal("0.01")
    return Order(
        order_id=f"ord-{uuid.uuid4().hex[:8]}",
        psp="stripe",
        payment_id=payment_id,
        currency=currency,
        customer_id="cus_42",
        lines=[
            OrderLine(
                line_id="L1",
                sku="MUG-BLUE",
                quantity=3,
                unit_price=1999,
                discount=500,  # 59.97 - 5.00 = 54.97
                taxes=[
                    TaxLine(jurisdiction="US-MA", rate=state, amount=344),
                    TaxLine(jurisdiction="US-MA-BOSTON", rate=city, amount=55),
                ],
            ),
            OrderLine(
                line_id="L2",
                sku="TEAPOT",
                quantity=1,
                unit_price=5500,
                taxes=[TaxLine(jurisdiction="US-MA", rate=state, amount=344)],
            ),
        ],
        shipping=Shipping(
            amount=1200, taxes=[TaxLine(jurisdiction="US-MA", rate=state, amount=75)]
        ),
    )


def lines(**quantities: int) -> list[RefundLineRequest]:
    return [RefundLineRequest(line_id=name, quantity=n) for name, n in quantities.items()]


async def test_a_line_item_refund_agrees_with_its_quote_at_the_provider_and_in_the_ledger(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    book = OrderBook(ledger_db)
    payment = await create_payment(shop, amount=13015, currency="usd", customer="cus_42")
    order = order_of(payment)
    assert order.total == 13015
    await book.save(order, source="test")
    quote = await book.quote(
        QuoteInput(order_id=order.order_id, lines=lines(L1=1), reason="out_of_stock"),
        RefundPolicy(),
    )
    request = refund_request(
        payment, order_id=order.order_id, lines=lines(L1=1), reason=RefundReason.OUT_OF_STOCK
    )
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        result = await (await start_refund(client, request, queue)).result()

    # 1/3 of 54.97 is 18.32 (a(1) = 18.323 rounded); 3.44 and 0.55 of tax give 1.15 and 0.18;
    # out_of_stock gives back shipping and its tax: 12.00 + 0.75.
    assert (quote.lines[0].amount, quote.lines[0].tax) == (1832, 115 + 18)
    assert quote.total == 1832 + 133 + 1275
    assert result.status is RefundStatus.SUCCEEDED, result
    assert result.amount_refunded == quote.total
    refunds = await shop.v1.refunds.list_async({"payment_intent": payment})
    assert [refund.amount for refund in refunds.data] == [quote.total]
    posted = [t for t in await Ledger(ledger_db).transfers_for_refund(request.request_id)]
    assert [(t.kind, t.amount) for t in posted] == [("pending", quote.total), ("post", quote.total)]
    assert await book.taken_units(order.order_id) == {"L1": [1], "#shipping": [1]}


async def test_refunding_every_line_in_parts_returns_exactly_what_was_paid(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    book = OrderBook(ledger_db)
    payment = await create_payment(shop, amount=13015, currency="usd", customer="cus_42")
    order = order_of(payment)
    await book.save(order, source="test")
    steps = [
        (lines(L1=1), RefundReason.DELIVERY_FAILED),  # with shipping
        (lines(L1=1), RefundReason.REQUESTED_BY_CUSTOMER),
        (lines(L2=1, L1=1), RefundReason.PRODUCT_UNACCEPTABLE),
    ]
    client = time_skipping_env.client
    results: list[RefundResult] = []
    async with running_worker(client, ledger_db, stripe_base) as queue:
        for asked, reason in steps:
            request = refund_request(payment, order_id=order.order_id, lines=asked, reason=reason)
            results.append(await (await start_refund(client, request, queue)).result())
        extra = refund_request(payment, order_id=order.order_id, lines=lines(L1=1))
        refused = await (await start_refund(client, extra, queue)).result()

    assert [r.status for r in results] == [RefundStatus.SUCCEEDED] * 3, results
    assert sum(r.amount_refunded for r in results) == order.total == 13015
    intent = await shop.v1.payment_intents.retrieve_async(payment, {"expand": ["latest_charge"]})
    assert intent.latest_charge.amount_refunded == 13015  # type: ignore[union-attr]
    position = await Ledger(ledger_db).payment_position(f"stripe:{payment}")
    assert position is not None and (position.reserved, position.refunded) == (0, 13015)
    assert refused.status is RefundStatus.REJECTED
    assert refused.reason and "only 0 of its 3 are still refundable" in refused.reason
    assert await Ledger(ledger_db).verify() == []


async def test_an_amount_that_disagrees_with_the_quote_is_refused_naming_both(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    book = OrderBook(ledger_db)
    payment = await create_payment(shop, amount=13015, currency="usd", customer="cus_42")
    order = order_of(payment)
    await book.save(order, source="test")
    request = refund_request(payment, order_id=order.order_id, lines=lines(L2=1), amount=5500)
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        result = await (await start_refund(client, request, queue)).result()

    assert result.status is RefundStatus.REJECTED
    assert result.reason and "amount 55.00 USD disagrees" in result.reason, result.reason
    assert "58.44 USD" in result.reason  # 55.00 + 3.44 tax as charged
    assert await Ledger(ledger_db).transfers_for_refund(request.request_id) == []
    assert (await shop.v1.refunds.list_async({"payment_intent": payment})).data == []
    assert await book.taken_units(order.order_id) == {}


async def test_a_failed_refund_gives_its_units_back(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    book = OrderBook(ledger_db)
    payment = await create_payment(
        shop, amount=13015, currency="usd", customer="cus_42", payment_method="pm_card_refundFail"
    )
    order = order_of(payment)
    await book.save(order, source="test")
    request = refund_request(payment, order_id=order.order_id, lines=lines(L2=1))
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        result = await (await start_refund(client, request, queue)).result()

    assert result.status is RefundStatus.FAILED, result
    assert await book.taken_units(order.order_id) == {}
    quote = await book.quote(QuoteInput(order_id=order.order_id, lines=lines(L2=1)), RefundPolicy())
    assert quote.lines[0].refundable_quantity_before == 1
