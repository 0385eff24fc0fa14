"""End to end: ``refunds demo`` brings up the embedded stack and every refund ends as it should."""

from __future__ import annotations

import json
import socket
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from activities.events import SIGNATURE_HEADER, verify_signature
from activities.fx import settlement_value
from deploy.sandboxes.order_shop import (
    OrderEventRefused,
    sample_order,
    sample_total,
    send_order_created,
)
from starters.demo_orders import quote_problems
from starters.demo_summary import demo_passed
from tests.starters.cli_run import refunds
from workflows.models import Psp, RefundLineRequest
from workflows.orders import QuoteInput
from workflows.quotes import quote_refund, tax_as_charged
from workflows.refund_policy import RefundPolicy

PSPS = ("stripe", "paypal", "adyen")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stack_env(state_dir: Path) -> dict[str, str]:
    """A stack of its own: fresh state and free ports, so a developer's `refunds dev` is safe."""
    return {
        "REFUNDS_STATE_DIR": str(state_dir),
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "REFUNDS_TEMPORAL_UI_PORT": "0",
        "REFUNDS_STRIPE_SANDBOX_PORT": str(free_port()),
        "REFUNDS_PAYPAL_SANDBOX_PORT": str(free_port()),
        "REFUNDS_ADYEN_SANDBOX_PORT": str(free_port()),
        "REFUNDS_HTTP_ADDRESS": f"127.0.0.1:{free_port()}",
        "REFUNDS_CODEC_ADDRESS": f"127.0.0.1:{free_port()}",
        "REFUNDS_METRICS_ADDRESS": f"127.0.0.1:{free_port()}",
    }


def test_demo_of_every_scenario_ends_every_refund_and_the_books_verify(tmp_path: Path) -> None:
    env = stack_env(tmp_path / "state")
    answer = refunds("demo", "--json", env=env, timeout=240)
    assert answer.returncode == 0, answer.stderr[-3000:]
    summary = json.loads(answer.stdout)
    assert summary["ledger"] == {"verified": True, "problems": []}
    assert summary["unexpected"] == []
    # By default one refund per scenario: every path, reviewed ones included.
    assert summary["by_status"] == {"EXPIRED": 1, "REJECTED": 6, "SUCCEEDED": 22}
    by_psp = {psp: {r["status"] for r in summary["refunds"] if r["psp"] == psp} for psp in PSPS}
    assert by_psp == {
        "stripe": {"SUCCEEDED", "REJECTED", "EXPIRED"},
        "paypal": {"SUCCEEDED"},
        "adyen": {"SUCCEEDED", "REJECTED"},
    }
    paths = {row["scenario"]: row for row in summary["refunds"]}
    assert paths["dual approval"]["status"] == "SUCCEEDED"
    assert paths["approved for less"]["amount_refunded"] == 50_000
    assert paths["rejected in review"]["reason"] == (
        "rejected by ana@finance.example: item came back damaged"
    )
    assert paths["review expires"]["status"] == "EXPIRED"
    assert paths["high value, approved"]["path"] == "approve"
    # The sandbox answers "pending", settles 10 s later and says so by signed webhook.
    assert paths["settled by webhook"]["status"] == "SUCCEEDED"
    assert paths["PayPal pending refund"]["status"] == "SUCCEEDED"
    assert paths["Adyen cancel"]["amount_refunded"] == 3300  # by its CANCELLATION notification
    assert paths["PayPal partial refund"]["amount_refunded"] == 2500
    assert summary["seconds"] > 0
    assert not (tmp_path / "state" / "stack.json").exists(), "the stack cleaned up after itself"
    check_line_item_and_foreign_refunds(summary, paths)


def check_line_item_and_foreign_refunds(
    summary: dict[str, Any], paths: dict[str, dict[str, Any]]
) -> None:
    """Returns of order lines refund exactly their quote (the pure quote of the shop's own
    order, too); foreign-currency refunds are valued in USD at the moved rates."""
    assert summary["quotes"] == {"verified": True, "problems": [], "line_refunds": 7}
    line_item = paths["line-item return"]
    assert (line_item["lines"], line_item["status"]) == ("L1x1 L2x2", "SUCCEEDED")  # shipping kept
    order = sample_order("any", "USD", Psp.STRIPE, "pi_any")
    asked = QuoteInput(order_id="any", lines=[line("L1", 1), line("L2", 2)])
    expected = quote_refund(order, {}, asked, RefundPolicy()).total
    assert line_item["amount_refunded"] == line_item["quote_total"] == expected
    assert paths["out of stock +shipping"]["lines"] == "L3x1 +ship"
    parts = [paths["whole order, part 1"], paths["whole order, part 2"]]
    assert parts[0]["order_id"] == parts[1]["order_id"] and parts[1]["lines"].endswith("+ship")
    assert sum(part["amount_refunded"] for part in parts) == sample_total("JPY")  # all of it
    for name, psp, money in (
        ("PayPal line return", "paypal", "EUR"),
        ("Adyen line return", "adyen", "GBP"),
    ):
        row = paths[name]
        assert (row["psp"], row["currency"], row["status"]) == (psp, money, "SUCCEEDED")
        assert row["amount_refunded"] == row["quote_total"]
    refused = paths["amount off the quote"]
    assert (
        refused["status"] == "REJECTED" and refused["amount_asked"] == refused["quote_total"] + 100
    )
    assert "disagrees with the quote" in refused["reason"]

    foreign = [row for row in summary["refunds"] if row["rates"] is not None]
    assert {row["currency"] for row in foreign} == {"EUR", "GBP", "JPY"}
    for row in foreign:  # valued as the ledger says: amount x rate, half up, both rates
        rates = {when: Decimal(row["rates"][when]) for when in ("capture", "refund")}
        value = {
            w: settlement_value(row["amount_refunded"], row["currency"], r, "USD")
            for w, r in rates.items()
        }
        assert row["settlement_value"] == value["refund"], row
        assert row["fx_gain_loss"] == value["capture"] - value["refund"], row
        # The market moved between payment and refund: EUR and JPY up (a loss), GBP down.
        assert (row["fx_gain_loss"] > 0) is (row["currency"] == "GBP"), row
    sources = {row["psp"]: row["rates"]["refund_source"] for row in foreign if row["lines"]}
    assert sources == {"stripe": "provider", "paypal": "table", "adyen": "table"}
    settled = summary["totals"]["settlement"]
    assert settled["currency"] == "USD" and settled["not_valued"] == 1  # the Adyen cancel (EUR)
    assert settled["fx_gains"] > 0 > settled["fx_losses"]
    valued = [row["settlement_value"] for row in summary["refunds"] if row["amount_refunded"]]
    assert settled["value"] == sum(value for value in valued if value is not None)
    assert set(summary["totals"]["by_currency"]) == {"EUR", "GBP", "JPY", "USD"}


def line(line_id: str, quantity: int) -> RefundLineRequest:
    return RefundLineRequest(line_id=line_id, quantity=quantity)


def test_demo_through_a_faulty_provider_still_refunds_each_payment_once(tmp_path: Path) -> None:
    env = stack_env(tmp_path / "state")
    env["REFUNDS_SANDBOX_FAULTS"] = "error_rate=0.2,drop_rate=0.1,latency=20ms,seed=11"
    answer = refunds("demo", "--count", "8", "--json", env=env, timeout=240)
    assert answer.returncode == 0, answer.stderr[-3000:]
    summary = json.loads(answer.stdout)
    assert summary["unexpected"] == []
    assert summary["by_status"] == {"SUCCEEDED": 8}  # Stripe, PayPal and Adyen, faults and all
    assert summary["ledger"]["verified"]
    refunded = {row["scenario"]: row["amount_refunded"] for row in summary["refunds"]}
    assert refunded["full refund"] == 4999, "a dropped answer was not turned into a second refund"
    assert refunded["PayPal full refund"] == 4200
    assert refunded["Adyen full refund"] == 5100
    assert refunded["partial refund"] == 3500


@pytest.mark.parametrize("currency", ["USD", "EUR", "GBP", "JPY"])
def test_a_sample_order_has_lines_a_discount_two_tax_rates_and_taxed_shipping(
    currency: str,
) -> None:
    order = sample_order("ord-1", currency, Psp.PAYPAL, "CAPTURE-1", "cus_1")
    assert len(order.lines) == 3 and any(item.quantity > 1 for item in order.lines)
    assert any(item.discount for item in order.lines)
    taxes = [tax for item in order.lines for tax in item.taxes]
    assert len({tax.rate for tax in taxes}) == 2
    for item in order.lines:  # charged once, at checkout, on the price after the discount
        assert all(tax.amount == tax_as_charged(item.net, tax.rate) for tax in item.taxes)
    assert order.shipping.amount > 0 and order.shipping.taxes
    assert (
        order.total
        == sample_total(currency)
        == sum(i.paid for i in order.lines) + order.shipping.paid
    )


async def test_the_order_event_is_signed_as_the_receiver_checks_and_a_refusal_raises() -> None:
    order = sample_order("ord-2", "EUR", Psp.STRIPE, "pi_2")
    received: list[dict[str, Any]] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        try:
            verify_signature(request.content, request.headers.get(SIGNATURE_HEADER), ["whsec"])
        except Exception as exc:
            return httpx.Response(401, json={"error": str(exc)})
        received.append(json.loads(request.content))
        return httpx.Response(200, json={"received": True})

    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as http:
        await send_order_created("http://receiver/webhooks/shop", "whsec", order, http)
        with pytest.raises(OrderEventRefused, match="answered 401"):
            await send_order_created("http://receiver/webhooks/shop", "other", order, http)
    assert [event["type"] for event in received] == ["order.created"]
    assert received[0]["data"]["order_id"] == "ord-2" and received[0]["data"]["currency"] == "EUR"


def test_a_return_that_refunds_other_than_its_quote_fails_the_demo() -> None:
    row = {
        "scenario": "line-item return",
        "lines": "L1x1",
        "quote_total": 2170,
        "amount_refunded": 2171,
        "amount_asked": None,
        "currency": "usd",
        "status": "SUCCEEDED",
        "order_id": "ord-3",
        "reason": None,
    }
    problems = quote_problems([row], {"ord-3": 5000})
    assert problems == ["line-item return: refunded 21.71 USD, quoted 21.70 USD"]
    summary = {
        "by_status": {"SUCCEEDED": 1},
        "ledger": {"verified": True, "problems": []},
        "quotes": {"verified": not problems, "problems": problems, "line_refunds": 1},
    }
    assert not demo_passed(summary)
    assert demo_passed({**summary, "quotes": {"verified": True, "problems": []}})
