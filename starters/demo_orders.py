"""The demo's orders: paid and told to the service as a shop does, then quoted before a return.

The shop pays its sample order's total at the provider (``pay_for``), then sends the signed
``order.created`` event to the service's ``/webhooks/shop``, which stores the order; there is
no other way in. Before asking a refund of some lines it asks ``POST /v1/refunds/quote`` what
they return, and the summary checks that each refund moved exactly that, to the minor unit, and
that an order returned in parts gave back exactly what was paid.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx

from activities.adyen_payments import AdyenPaymentBook
from deploy.local.stack import receiver_url
from deploy.sandboxes.order_shop import sample_order, sample_total, send_order_created
from starters.demo_payments import pay_for
from starters.demo_scenarios import Scenario
from workers.settings import Settings
from workflows.currencies import format_amount
from workflows.models import RefundLineRequest
from workflows.orders import Order, QuoteInput, RefundQuote


class DemoOrderFailed(Exception):
    """The service did not take or quote a demo order; the message says what it answered."""


async def order_paid_and_told(
    settings: Settings, scenario: Scenario, customer: str, order_id: str, book: AdyenPaymentBook
) -> Order:
    """Pay the sample order's total at the scenario's provider, then send its event."""
    total = sample_total(scenario.currency)
    payment_id = await pay_for(settings, replace(scenario, paid=total), customer, order_id, book)
    order = sample_order(order_id, scenario.currency, scenario.psp, payment_id, customer)
    secrets = settings.shop_webhook_secrets
    await send_order_created(
        receiver_url(settings.http_address, "shop"), secrets[0] if secrets else "", order
    )
    return order


def line_requests(scenario: Scenario) -> list[RefundLineRequest]:
    return [RefundLineRequest(line_id=line, quantity=units) for line, units in scenario.lines]


async def quote_lines(settings: Settings, order_id: str, scenario: Scenario) -> RefundQuote:
    """The service's quote of the scenario's lines (``POST /v1/refunds/quote``), as the shop
    asks it before the refund."""
    asked = QuoteInput(
        order_id=order_id,
        lines=line_requests(scenario),
        reason=scenario.reason.value,
        refund_shipping=scenario.refund_shipping,
    )
    url = receiver_url(settings.http_address, "shop").removesuffix("/webhooks/shop")
    headers = {"Authorization": f"Bearer {_requester_token(settings)}"}
    async with httpx.AsyncClient(base_url=url, timeout=15) as http:
        try:
            answer = await http.post(
                "/v1/refunds/quote", json=asked.model_dump(mode="json"), headers=headers
            )
        except httpx.HTTPError as exc:
            raise DemoOrderFailed(f"quote of order {order_id}: {url}: {exc}") from exc
    if answer.status_code != 200:
        raise DemoOrderFailed(
            f"quote of order {order_id}: {url} answered {answer.status_code}: {answer.text[:300]}"
        )
    return RefundQuote.model_validate(answer.json())


def _requester_token(settings: Settings) -> str:
    for token in settings.api_tokens:
        if token.role in ("requester", "admin"):
            return token.token
    raise DemoOrderFailed("no requester or admin API token (REFUNDS_API_TOKENS) to ask quotes with")


def lines_text(quote: RefundQuote) -> str:
    """``L1x1 L2x2 +ship``: the lines (and units) a quote returns, and its shipping."""
    text = " ".join(f"{line.line_id}x{line.quantity}" for line in quote.lines)
    return text + (" +ship" if quote.refunds_shipping else "")


def quote_problems(rows: list[dict[str, Any]], orders: dict[str, int]) -> list[str]:
    """What disagrees between the summary's line-item refunds and their quotes: a refund that
    succeeded moved exactly its quote; one refused for its amount named the quote; the parts
    of an order returned whole add up to what was paid for it (``orders``: order id ->
    total, for the orders returned in parts)."""
    problems = []
    by_order: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["lines"] is None:
            continue
        quoted, money = row["quote_total"], row["currency"]
        if quoted is None:
            problems.append(f"{row['scenario']}: no quote ({row['reason']})")
            continue
        if row["status"] == "SUCCEEDED":
            by_order.setdefault(row["order_id"], []).append(row)
            if row["amount_refunded"] != quoted:
                problems.append(
                    f"{row['scenario']}: refunded {format_amount(row['amount_refunded'], money)}"
                    f", quoted {format_amount(quoted, money)}"
                )
        elif row["amount_asked"] is not None and row["status"] == "REJECTED":
            figures = (format_amount(row["amount_asked"], money), format_amount(quoted, money))
            if not all(figure in (row["reason"] or "") for figure in figures):
                problems.append(
                    f"{row['scenario']}: refused without naming {figures[0]} and the quote "
                    f"{figures[1]}: {row['reason']}"
                )
    for order_id, total in orders.items():
        parts = by_order.get(order_id, [])
        returned = sum(row["amount_refunded"] for row in parts)
        if len(parts) > 1 and returned != total:
            money = parts[0]["currency"]
            problems.append(
                f"order {order_id} returned in {len(parts)} parts: "
                f"{format_amount(returned, money)}, paid {format_amount(total, money)}"
            )
    return problems
