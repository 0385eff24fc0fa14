"""``refunds demo``: a realistic mix of refunds pushed through the stack, then the books checked."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client

from activities.adyen_payments import AdyenPaymentBook
from activities.ledger import Ledger
from deploy.sandboxes.adyen_state import VISA as ADYEN_CARD
from deploy.sandboxes.paypal_objects import NORMAL_CARD as PAYPAL_CARD
from deploy.sandboxes.paypal_objects import PENDING_REFUND_CARD as PAYPAL_PENDING
from starters.client import RefundHandle, start_refund
from starters.demo_payments import check_sandboxes, pay_for
from starters.demo_reviews import review_as_demo
from workers.settings import Settings
from workers.worker import ledger_pool
from workflows.currencies import format_amount
from workflows.models import Psp, RefundReason, RefundRequest, RefundResult, RefundStatus


@dataclass(frozen=True)
class Scenario:
    name: str
    currency: str
    paid: int
    refund: int | None  # None: all that is refundable
    expected: RefundStatus
    capture: bool = True
    payment_method: str = "pm_card_visa"
    reason: RefundReason = RefundReason.REQUESTED_BY_CUSTOMER
    unknown_payment: bool = False
    review: str | None = None  # what the demo's reviewers do: approve, dual, partial, ...
    psp: Psp = Psp.STRIPE


S, R = RefundStatus.SUCCEEDED, RefundStatus.REJECTED
PAYPAL, ADYEN = Psp.PAYPAL, Psp.ADYEN
SCENARIOS = (
    Scenario("full refund", "USD", 4999, None, S),
    Scenario("PayPal full refund", "EUR", 4200, None, S, payment_method=PAYPAL_CARD, psp=PAYPAL),
    Scenario("Adyen full refund", "EUR", 5100, None, S, payment_method=ADYEN_CARD, psp=ADYEN),
    Scenario("high value, approved", "USD", 60000, None, S, review="approve"),
    Scenario("partial refund", "EUR", 12000, 3500, S),
    Scenario("void before capture", "USD", 2500, None, S, capture=False),
    Scenario("PayPal void", "USD", 1800, None, S, False, PAYPAL_CARD, psp=PAYPAL),
    Scenario("Adyen cancel", "EUR", 3300, None, S, False, ADYEN_CARD, psp=ADYEN),
    Scenario("over-refund attempt", "USD", 1500, 2000, R),
    Scenario("rejected in review", "USD", 70000, None, R, review="reject"),
    Scenario("unknown payment", "USD", 0, 1000, R, unknown_payment=True),
    Scenario("zero-decimal currency", "JPY", 3000, None, S),
    Scenario("dual approval", "EUR", 250000, None, S, review="dual"),
    Scenario("disputed payment", "GBP", 8000, 8000, R, payment_method="pm_card_createDispute"),
    Scenario("approved for less", "USD", 80000, None, S, review="partial"),
    Scenario("duplicate charge", "GBP", 1999, None, S, reason=RefundReason.DUPLICATE),
    Scenario("review expires", "USD", 65000, None, RefundStatus.EXPIRED, review="expire"),
    Scenario("settled by webhook", "EUR", 3100, None, S, payment_method="pm_card_pendingRefund"),
    Scenario("PayPal partial refund", "USD", 9000, 2500, S, payment_method=PAYPAL_CARD, psp=PAYPAL),
    Scenario("Adyen partial refund", "GBP", 7000, 2000, S, payment_method=ADYEN_CARD, psp=ADYEN),
    Scenario("PayPal pending refund", "EUR", 2700, None, S, True, PAYPAL_PENDING, psp=PAYPAL),
    Scenario("Adyen over-refund", "EUR", 1500, 2000, R, payment_method=ADYEN_CARD, psp=ADYEN),
)


@dataclass(frozen=True)
class DemoRefund:
    scenario: Scenario
    request: RefundRequest
    result: RefundResult | None = None
    expected: RefundStatus | None = None  # when the reviewers changed the plan

    @property
    def expected_status(self) -> RefundStatus:
        return self.expected or self.scenario.expected

    @property
    def as_expected(self) -> bool:
        return self.result is not None and self.result.status is self.expected_status


async def prepare_refunds(settings: Settings, count: int, run_id: str) -> list[DemoRefund]:
    """Pay for each refund first, at the provider, the way a shop's checkout would."""
    check_sandboxes(settings)
    async with ledger_pool(settings.require_database_url(), max_size=2) as pool:
        return await _paid_refunds(settings, count, run_id, AdyenPaymentBook(pool))


async def _paid_refunds(
    settings: Settings, count: int, run_id: str, book: AdyenPaymentBook
) -> list[DemoRefund]:
    refunds = []
    for index in range(count):
        scenario = SCENARIOS[index % len(SCENARIOS)]
        # A customer of their own each: the demo shows each path on its own merits, not on
        # the history of refunds earlier runs piled onto one customer.
        request_id = f"demo-{run_id}-{index:04d}"
        customer = f"cus_{request_id}"
        payment_id = await pay_for(settings, scenario, customer, request_id, book)
        request = RefundRequest(
            request_id=request_id,
            psp=scenario.psp,
            payment_id=payment_id,
            amount=scenario.refund,
            currency=scenario.currency.lower(),
            reason=scenario.reason,
            customer_id=customer,
            requested_by="demo@shop.example",
            metadata={"scenario": scenario.name},
        )
        refunds.append(DemoRefund(scenario, request))
    return refunds


async def run_refunds(
    client: Client,
    settings: Settings,
    refunds: list[DemoRefund],
    progress: Callable[[int, int], None],
    timeout_s: float = 600,
) -> list[DemoRefund]:
    handles = [await start_refund(client, r.request, settings.task_queue) for r in refunds]
    done = 0
    finished: list[DemoRefund] = []

    async def wait(refund: DemoRefund, handle: RefundHandle) -> None:
        nonlocal done
        expected = None
        if refund.scenario.review:
            expected = await review_as_demo(handle, refund.scenario.review)
        result = await handle.result()
        finished.append(DemoRefund(refund.scenario, refund.request, result, expected))
        done += 1
        progress(done, len(refunds))

    pending = [asyncio.create_task(wait(r, h)) for r, h in zip(refunds, handles, strict=True)]
    _, late = await asyncio.wait(pending, timeout=timeout_s)
    for task in late:
        task.cancel()
    by_id = {r.request.request_id: r for r in finished}
    return [by_id.get(r.request.request_id, r) for r in refunds]


async def demo_summary(
    settings: Settings, refunds: list[DemoRefund], seconds: float
) -> dict[str, Any]:
    async with ledger_pool(settings.require_database_url()) as pool:
        problems = await Ledger(pool).verify()
    statuses = Counter(r.result.status.value if r.result else "NOT_FINAL" for r in refunds)
    return {
        "by_status": dict(sorted(statuses.items())),
        "ledger": {"verified": not problems, "problems": problems},
        "seconds": round(seconds, 2),
        "unexpected": [
            {
                "request_id": r.request.request_id,
                "scenario": r.scenario.name,
                "expected": r.expected_status.value,
                "got": r.result.status.value if r.result else None,
            }
            for r in refunds
            if not r.as_expected
        ],
        "refunds": [
            {
                "request_id": r.request.request_id,
                "scenario": r.scenario.name,
                "psp": r.request.psp.value,
                "status": r.result.status.value if r.result else None,
                "amount_refunded": r.result.amount_refunded if r.result else 0,
                "currency": r.request.currency,
                "risk_score": r.result.risk.score if r.result else None,
                "path": r.scenario.review or "auto",
                "reason": r.result.reason if r.result else "did not finish in time",
            }
            for r in refunds
        ],
    }


def summary_table(summary: dict[str, Any]) -> str:
    lines = [f"{'scenario':<22} {'path':<8} {'risk':>4} {'status':<10} {'refunded':>14}  reason"]
    for row in summary["refunds"]:
        risk = "-" if row["risk_score"] is None else row["risk_score"]
        refunded = format_amount(row["amount_refunded"], row["currency"])
        lines.append(
            f"{row['scenario']:<22} {row['path']:<8} {risk:>4} {row['status'] or '-':<10} "
            f"{refunded:>14}  {row['reason'] or ''}"
        )
    lines.append("")
    lines.append("by status: " + ", ".join(f"{k} {v}" for k, v in summary["by_status"].items()))
    ledger = summary["ledger"]
    lines.append("ledger: " + ("verifies" if ledger["verified"] else "; ".join(ledger["problems"])))
    lines.append(f"{len(summary['refunds'])} refunds in {summary['seconds']}s")
    return "\n".join(lines)


def new_run_id() -> str:
    return time.strftime("%H%M%S") + uuid.uuid4().hex[:4]
