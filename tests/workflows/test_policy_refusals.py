"""Every refusal of the refund policy ends REJECTED with its reason, before anything is reserved
or claimed and before the provider is asked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.ledger import Ledger
from activities.orders import OrderBook
from deploy.sandboxes.stripe_shop import create_payment, shop_client
from starters.client import start_refund
from tests.support.stack import SANDBOX_KEY, running_worker
from tests.workflows.test_line_item_refunds import lines, order_of
from tests.workflows.test_refund_paths import refund_request
from workers.money_settings import MoneySettings
from workflows.models import RefundReason, RefundStatus
from workflows.refund_policy import RefundPolicy, ShippingRule

STRICT = RefundPolicy(
    window_days=30,
    max_refunds_per_payment=1,
    allowed_reasons=[RefundReason.OUT_OF_STOCK, RefundReason.REQUESTED_BY_CUSTOMER],
    shipping={RefundReason.REQUESTED_BY_CUSTOMER: ShippingRule.NEVER},
)

CASES = [
    # (name, request fields, days after capture, words the reason must contain)
    ("reason not allowed", {"reason": RefundReason.OTHER}, 0, "reason 'other' is not accepted"),
    ("outside the window", {}, 31, "the refund window is 30 days"),
    ("unknown order", {"order_id": "ord-nowhere", "lines": lines(L1=1)}, 0, "ord-nowhere"),
    ("unknown line", {"lines": lines(L9=1)}, 0, "has no line 'L9'"),
    ("too many units", {"lines": lines(L1=4)}, 0, "4 asked for, but only 3"),
    ("shipping never", {"lines": lines(L1=1), "refund_shipping": True}, 0, "shipping is not"),
    ("lines without order", {"order_id": None, "lines": lines(L1=1)}, 0, "order_id is needed"),
]


@pytest.mark.parametrize(("name", "fields", "days", "words"), CASES, ids=[c[0] for c in CASES])
async def test_a_policy_refusal_reserves_nothing_and_asks_no_provider(
    time_skipping_env: WorkflowEnvironment,
    ledger_db: asyncpg.Pool,
    stripe_base: str,
    name: str,
    fields: dict[str, object],
    days: int,
    words: str,
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    book = OrderBook(ledger_db)
    payment = await create_payment(shop, amount=13015, currency="usd", customer="cus_42")
    order = order_of(payment)
    await book.save(order, source="test")
    request = refund_request(payment, **{"order_id": order.order_id, **fields})
    later = datetime.now(UTC) + timedelta(days=days)
    client = time_skipping_env.client
    async with running_worker(
        client, ledger_db, stripe_base, money=MoneySettings(refund_policy=STRICT), now=lambda: later
    ) as queue:
        result = await (await start_refund(client, request, queue)).result()

    assert result.status is RefundStatus.REJECTED, result
    assert result.reason and words in result.reason, result.reason
    assert await Ledger(ledger_db).transfers_for_refund(request.request_id) == []
    assert (await shop.v1.refunds.list_async({"payment_intent": payment})).data == []
    assert await book.taken_units(order.order_id) == {}


async def test_a_payment_gets_no_more_refunds_than_the_policy_allows(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(shop, amount=5000, currency="usd", customer="cus_42")
    first = refund_request(payment, amount=1000, reason=RefundReason.OUT_OF_STOCK)
    second = refund_request(payment, amount=1000, reason=RefundReason.OUT_OF_STOCK)
    client = time_skipping_env.client
    async with running_worker(
        client, ledger_db, stripe_base, money=MoneySettings(refund_policy=STRICT)
    ) as queue:
        done = await (await start_refund(client, first, queue)).result()
        refused = await (await start_refund(client, second, queue)).result()

    assert done.status is RefundStatus.SUCCEEDED
    assert refused.status is RefundStatus.REJECTED
    assert refused.reason and "already has 1 refunds" in refused.reason, refused.reason
    assert "at most 1 per payment (REFUNDS_MAX_REFUNDS_PER_PAYMENT)" in refused.reason
    assert await Ledger(ledger_db).transfers_for_refund(second.request_id) == []
    refunds = await shop.v1.refunds.list_async({"payment_intent": payment})
    assert [refund.amount for refund in refunds.data] == [1000]
