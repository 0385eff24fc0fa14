"""Values PostgreSQL cannot keep (amounts past any order, the NUL character) are refused as
bad input naming the field, never a server error a shop would retry for ever."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.starters.test_quote_api import RITA, api  # noqa: F401  (fixture)
from tests.starters.test_shop_order_events import (  # noqa: F401  (fixture)
    NOW,
    event,
    order_data,
    post,
    shop,
    signed,
)

TOO_MUCH = 10**19  # past PostgreSQL's bigint


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (
            order_data(
                lines=[{"line_id": "L1", "sku": "LAMP", "quantity": 1, "unit_price": TOO_MUCH}]
            ),
            "data.lines.0.unit_price",
        ),
        (order_data(order_id="S-\u0000"), "data.order_id: Value error, may not contain the NUL"),
        (
            order_data(
                lines=[
                    {
                        "line_id": "L1",
                        "sku": "LAMP",
                        "quantity": 1,
                        "unit_price": 1,
                        "taxes": [{"jurisdiction": "DE", "rate": "0.19", "amount": TOO_MUCH}],
                    }
                ]
            ),
            "data.lines.0.taxes.0.amount",
        ),
    ],
    ids=["price past any order", "NUL in the order id", "tax past any order"],
)
async def test_an_order_event_the_store_cannot_keep_is_a_400_naming_the_field(
    shop: tuple[httpx.AsyncClient, Any],  # noqa: F811
    data: dict[str, Any],
    field: str,
) -> None:
    http, _ = shop
    body = event("order.created", data, NOW)
    answer = await post(http, body, signed(body))
    assert answer.status_code == 400, answer.text
    assert field in answer.json()["error"]["message"]


async def test_a_quote_for_an_order_id_with_a_nul_is_a_422(
    api: tuple[httpx.AsyncClient, Any, Any],  # noqa: F811
) -> None:
    http, _, _ = api
    asked = {"order_id": "KW-\u0000", "lines": []}
    answer = await http.post("/v1/refunds/quote", json=asked, headers=RITA)
    assert answer.status_code == 422, answer.text
    assert "NUL" in answer.text
