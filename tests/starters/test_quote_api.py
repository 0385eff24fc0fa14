"""``POST /v1/refunds/quote`` on the real app, served by uvicorn, over a real order store."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.orders import OrderBook
from starters.http_server import serve_http
from workers.money_settings import MoneySettings
from workers.settings import Settings, parse_api_tokens
from workflows.models import RefundLineRequest, RefundReason
from workflows.orders import Order, OrderLine, QuoteInput, Shipping, TaxLine
from workflows.refund_policy import RefundPolicy

TOKENS = "t-req:requester:rita,t-rev:reviewer:tom,t-ops:admin:ops"
RITA = {"Authorization": "Bearer t-req"}
POLICY = RefundPolicy(restocking_fee_bps={RefundReason.PRODUCT_UNACCEPTABLE: 1500})
ORDER = Order(
    order_id="KW-1",
    psp="stripe",
    payment_id="pi_kw",
    currency="KWD",
    lines=[
        OrderLine(
            line_id="L1",
            sku="OUD",
            quantity=3,
            unit_price=12_345,
            taxes=[TaxLine(jurisdiction="KW", rate=Decimal("0.05"), amount=1852)],
        )
    ],
    shipping=Shipping(amount=2_000),
)


@pytest.fixture
async def api(
    dev_env: WorkflowEnvironment, ledger_db: asyncpg.Pool
) -> AsyncIterator[tuple[httpx.AsyncClient, OrderBook, str]]:
    book = OrderBook(ledger_db)
    settings = Settings(
        http_address="127.0.0.1:0",
        api_tokens=parse_api_tokens(TOKENS, "REFUNDS_API_TOKENS"),
        money=MoneySettings(refund_policy=POLICY),
    )
    stop, up = asyncio.Event(), asyncio.Queue[str]()
    server = asyncio.create_task(
        serve_http(settings, dev_env.client, stop, listening=up.put_nowait, orders=book)
    )
    try:
        async with asyncio.timeout(10):
            base_url = await up.get()
        async with httpx.AsyncClient(base_url=base_url, timeout=20) as http:
            yield http, book, base_url
    finally:
        stop.set()
        await server


def asking(*lines: tuple[str, int], **fields: object) -> dict[str, object]:
    body: dict[str, object] = {
        "order_id": "KW-1",
        "lines": [{"line_id": line_id, "quantity": n} for line_id, n in lines],
    }
    return body | fields


async def test_a_quote_is_what_the_workflow_would_compute(
    api: tuple[httpx.AsyncClient, OrderBook, str],
) -> None:
    http, book, _ = api
    await book.save(ORDER, "test")
    body = asking(("L1", 2), reason="product_unacceptable", refund_shipping=True)
    answer = await http.post("/v1/refunds/quote", json=body, headers=RITA)

    assert answer.status_code == 200, answer.text
    quote = answer.json()
    expected = await book.quote(
        QuoteInput(
            order_id="KW-1",
            lines=[RefundLineRequest(line_id="L1", quantity=2)],
            reason="product_unacceptable",
            refund_shipping=True,
        ),
        POLICY,
    )
    assert quote == expected.model_dump(mode="json")
    # 2 of 3 x 12.345 KWD = 24.690, tax 1.852 -> 1.235, shipping 2.000, fee 15 % of 24.690
    assert (quote["lines"][0]["amount"], quote["lines"][0]["tax"]) == (24_690, 1_235)
    assert (quote["shipping"], quote["restocking_fee"]) == (2_000, 3_704)
    assert quote["total"] == 24_690 + 1_235 + 2_000 - 3_704
    assert quote["currency"] == "KWD"
    assert await book.taken_units("KW-1") == {}  # a quote claims nothing

    admin = await http.post(
        "/v1/refunds/quote", json=asking(("L1", 1)), headers={"Authorization": "Bearer t-ops"}
    )
    assert admin.status_code == 200 and admin.json()["shipping"] == 0  # a change of mind


async def test_unknown_orders_refused_lines_and_missing_tokens_are_answered_plainly(
    api: tuple[httpx.AsyncClient, OrderBook, str],
) -> None:
    http, book, _ = api
    await book.save(ORDER, "test")
    cases = [
        (
            asking(("L1", 1)) | {"order_id": "nope"},
            RITA,
            404,
            "order nope is not in the order store",
        ),
        (asking(("L1", 4)), RITA, 422, "4 asked for, but only 3 of its 3 are still refundable"),
        (asking(("L7", 1)), RITA, 422, "order KW-1 has no line 'L7' (its lines: L1)"),
        (asking(("L1", 1), reason="bored"), RITA, 422, "unknown reason 'bored'"),
        (asking(("L1", 0)), RITA, 422, "lines.0.quantity: input should be greater than 0"),
        (asking(("L1", 1)), {}, 401, "missing API token"),
        (asking(("L1", 1)), {"Authorization": "Bearer wrong"}, 401, "unknown API token"),
        (asking(("L1", 1)), {"Authorization": "Bearer t-rev"}, 403, "a reviewer token cannot"),
    ]
    for body, headers, status, message in cases:
        answer = await http.post("/v1/refunds/quote", json=body, headers=headers)
        assert answer.status_code == status, (body, answer.text)
        assert message in answer.json()["error"]["message"], answer.text
    refused = await http.post("/v1/refunds/quote", json=asking(("L1", 4)), headers=RITA)
    assert refused.json()["error"]["type"] == "quote_refused"


async def test_the_quote_is_documented_and_no_generated_request_gets_a_server_error(
    api: tuple[httpx.AsyncClient, OrderBook, str],
) -> None:
    http, book, base_url = api
    await book.save(ORDER, "test")
    document = (await http.get("/openapi.json")).json()
    operation = document["paths"]["/v1/refunds/quote"]["post"]
    assert {"200", "401", "404", "422"} <= operation["responses"].keys()
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/QuoteInput"
    )
    run = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{base_url}/openapi.json",
            "--include-path",
            "/v1/refunds/quote",
            "--checks",
            "not_a_server_error",
            "-H",
            "Authorization: Bearer t-req",
            "--max-examples",
            "30",
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "Tested: 1" in run.stdout, run.stdout[-2000:]
