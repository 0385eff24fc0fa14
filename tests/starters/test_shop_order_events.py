"""The shop's signed ``order.created`` / ``order.updated`` events, through the real receiver
served by uvicorn, into a real order store: verified first, stored before the 2xx, in order."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.events import SIGNATURE_HEADER, sign
from activities.orders import OrderBook
from starters.webhooks import webhook_router
from tests.support.http import served_api
from workers.settings import Settings, parse_api_tokens

SHOP_SECRET = "shop_secret_orders"
NOW = int(time.time())


def order_data(quantity: int = 2, **changes: Any) -> dict[str, Any]:
    data = {
        "order_id": "S-1",
        "psp": "stripe",
        "payment_id": "pi_s1",
        "currency": "eur",
        "customer_id": "cus_s",
        "placed_at": "2025-03-01T10:00:00+01:00",
        "lines": [
            {
                "line_id": "L1",
                "sku": "LAMP",
                "quantity": quantity,
                "unit_price": 4_500,
                "taxes": [{"jurisdiction": "DE", "rate": "0.19", "amount": 855 * quantity}],
            }
        ],
        "shipping": {
            "amount": 490,
            "taxes": [{"jurisdiction": "DE", "rate": "0.19", "amount": 93}],
        },
    }
    return data | changes


def event(kind: str, data: Any, created: Any = NOW, event_id: str = "evt_1") -> bytes:
    return json.dumps({"id": event_id, "type": kind, "created": created, "data": data}).encode()


def signed(body: bytes, secret: str = SHOP_SECRET) -> dict[str, str]:
    return {
        SIGNATURE_HEADER: sign(body, secret, int(time.time())),
        "Content-Type": "application/json",
    }


@asynccontextmanager
async def served(
    dev_env: WorkflowEnvironment, orders: OrderBook | None
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        http_address="127.0.0.1:0",
        api_tokens=parse_api_tokens("t:admin:ops", "REFUNDS_API_TOKENS"),
    )
    router = webhook_router(dev_env.client, "refunds-unused", [], [SHOP_SECRET], orders=orders)
    async with (
        served_api(dev_env.client, settings, [router]) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=20) as http,
    ):
        yield http


@pytest.fixture
async def shop(
    dev_env: WorkflowEnvironment, ledger_db: asyncpg.Pool
) -> AsyncIterator[tuple[httpx.AsyncClient, OrderBook]]:
    book = OrderBook(ledger_db)
    async with served(dev_env, book) as http:
        yield http, book


async def post(http: httpx.AsyncClient, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await http.post("/webhooks/shop", content=body, headers=headers)


async def test_order_events_are_stored_and_a_late_older_one_changes_nothing(
    shop: tuple[httpx.AsyncClient, OrderBook],
) -> None:
    http, book = shop
    created = event("order.created", order_data(2), NOW - 60)
    updated = event("order.updated", order_data(3), NOW, "evt_2")

    first = await post(http, updated, signed(updated))  # the update overtook the creation
    late = await post(http, created, signed(created))
    again = await post(http, updated, signed(updated))

    assert (first.status_code, first.json()["done"]) == (200, ["order S-1 created"])
    assert (late.status_code, late.json()["done"]) == (200, ["order S-1 stale"])
    assert again.json()["done"] == ["order S-1 unchanged"]
    stored = await book.fetch("S-1")
    assert stored is not None and stored.lines[0].quantity == 3 and stored.currency == "EUR"
    assert stored.shipping.taxes[0].amount == 93

    newer = event("order.updated", order_data(4), NOW + 1, "evt_3")
    assert (await post(http, newer, signed(newer))).json()["done"] == ["order S-1 updated"]


async def test_an_unsigned_or_forged_order_event_stores_nothing(
    shop: tuple[httpx.AsyncClient, OrderBook],
) -> None:
    http, book = shop
    body = event("order.created", order_data())
    for headers in ({}, signed(body, "not-the-secret"), signed(body + b" ")):
        answer = await post(http, body, headers)
        assert answer.status_code == 401, answer.text
    assert await book.fetch("S-1") is None


@pytest.mark.parametrize(
    ("data", "created", "message"),
    [
        (order_data(lines=[]), NOW, "order.created: data.lines: List should have at least 1"),
        (order_data(psp="venmo"), NOW, "data.psp: Input should be 'stripe', 'paypal' or 'adyen'"),
        (order_data(currency="XYZ"), NOW, "data.currency: 'XYZ' is not an ISO 4217 code"),
        ("an order", NOW, "order.created: data: must be an order (a JSON object)"),
        (order_data(), None, "order.created: created: must be the event's time in unix seconds"),
        (order_data(), "yesterday", "created: must be the event's time in unix seconds"),
    ],
)
async def test_a_malformed_order_is_400_naming_the_field(
    shop: tuple[httpx.AsyncClient, OrderBook], data: Any, created: Any, message: str
) -> None:
    http, book = shop
    body = event("order.created", data, created)
    answer = await post(http, body, signed(body))
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["error"]["message"]
    assert await book.fetch("S-1") is None


async def test_an_update_that_would_undo_a_refunds_units_is_409(
    shop: tuple[httpx.AsyncClient, OrderBook], ledger_db: asyncpg.Pool
) -> None:
    http, book = shop
    created = event("order.created", order_data(3), NOW - 10)
    assert (await post(http, created, signed(created))).status_code == 200
    async with ledger_db.acquire() as conn, conn.transaction():
        await book.claim(conn, order_id="S-1", refund_id="rma-s1", units={"L1": [3]})

    lowered = event("order.updated", order_data(2), NOW, "evt_2")
    answer = await post(http, lowered, signed(lowered))

    assert answer.status_code == 409, answer.text
    assert answer.json()["error"] == {
        "type": "order_conflict",
        "message": "order.updated evt_2: order S-1 not updated: line L1 cannot go down to 2 "
        "unit(s): refund rma-s1 holds its unit 3",
    }
    stored = await book.fetch("S-1")
    assert stored is not None and stored.lines[0].quantity == 3


async def test_without_an_order_store_order_events_are_503_so_the_shop_retries(
    dev_env: WorkflowEnvironment,
) -> None:
    async with served(dev_env, None) as http:
        body = event("order.created", order_data())
        answer = await post(http, body, signed(body))
        assert answer.status_code == 503
        assert "no order store" in answer.json()["error"]["message"]
