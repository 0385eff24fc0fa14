"""``refunds demo``: a realistic mix of refunds pushed through the stack, then the books checked.

The scenarios are in ``demo_scenarios``; the summary and its table in ``demo_summary``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from temporalio.client import Client

from activities.adyen_payments import AdyenPaymentBook
from starters.client import start_refund
from starters.demo_fx import rates_at_capture, rates_at_refund
from starters.demo_orders import (
    DemoOrderFailed,
    line_requests,
    order_paid_and_told,
    quote_lines,
)
from starters.demo_payments import check_sandboxes, pay_for
from starters.demo_reviews import review_as_demo
from starters.demo_scenarios import SCENARIOS, Scenario
from starters.demo_summary import demo_passed, demo_summary, summary_table
from workers.settings import Settings
from workers.worker import ledger_pool
from workflows.models import RefundRequest, RefundResult, RefundStatus
from workflows.orders import Order, RefundQuote

__all__ = [
    "SCENARIOS",
    "DemoRefund",
    "Scenario",
    "demo_passed",
    "demo_summary",
    "new_run_id",
    "prepare_refunds",
    "run_refunds",
    "summary_table",
]


@dataclass(frozen=True)
class DemoRefund:
    scenario: Scenario
    request: RefundRequest
    result: RefundResult | None = None
    expected: RefundStatus | None = None  # when the reviewers changed the plan
    order: Order | None = None  # the order whose lines this refund returns
    quote: RefundQuote | None = None  # what the service quoted for them, before the refund
    after: str | None = None  # the request id of the refund this one waits for
    error: str | None = None  # why it could not be asked (a quote refused, say)

    @property
    def expected_status(self) -> RefundStatus:
        return self.expected or self.scenario.expected

    @property
    def as_expected(self) -> bool:
        return self.result is not None and self.result.status is self.expected_status


async def prepare_refunds(settings: Settings, count: int, run_id: str) -> list[DemoRefund]:
    """Pay for each refund first, at the provider, the way a shop's checkout would (and tell
    the service of each order); the exchange rates move once everything is paid."""
    check_sandboxes(settings)
    scenarios = [SCENARIOS[index % len(SCENARIOS)] for index in range(count)]
    currencies = {scenario.currency for scenario in scenarios}
    async with ledger_pool(settings.require_database_url(), max_size=2) as pool:
        await rates_at_capture(settings, pool, currencies)
        refunds = await _paid_refunds(settings, scenarios, run_id, AdyenPaymentBook(pool))
        await rates_at_refund(settings, pool, currencies)
    return refunds


async def _paid_refunds(
    settings: Settings, scenarios: list[Scenario], run_id: str, book: AdyenPaymentBook
) -> list[DemoRefund]:
    refunds: list[DemoRefund] = []
    in_this_round: dict[str, DemoRefund] = {}  # scenario name -> its refund, this round
    for index, scenario in enumerate(scenarios):
        if index % len(SCENARIOS) == 0:
            in_this_round = {}
        # A customer of their own each: the demo shows each path on its own merits, not on
        # the history of refunds earlier runs piled onto one customer.
        request_id = f"demo-{run_id}-{index:04d}"
        customer, order, after = f"cus_{request_id}", None, None
        earlier = in_this_round.get(scenario.order_of or "")
        if earlier is not None and earlier.order is not None:
            order, after = earlier.order, earlier.request.request_id
            customer, payment_id = earlier.request.customer_id, order.payment_id
        elif scenario.returns_lines:
            order = await order_paid_and_told(
                settings, scenario, customer, f"ord-{request_id}", book
            )
            payment_id = order.payment_id
        else:
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
            order_id=order.order_id if order else None,
            lines=line_requests(scenario) if scenario.returns_lines else None,
            refund_shipping=scenario.refund_shipping,
            metadata={"scenario": scenario.name},
        )
        refund = DemoRefund(scenario, request, order=order, after=after)
        in_this_round[scenario.name] = refund
        refunds.append(refund)
    return refunds


async def run_refunds(
    client: Client,
    settings: Settings,
    refunds: list[DemoRefund],
    progress: Callable[[int, int], None],
    timeout_s: float = 600,
) -> list[DemoRefund]:
    """Ask every refund (a return of lines quoted first) and wait for each to end; a refund
    that returns more of an order is asked once the one before it has ended."""
    done = 0
    finished: dict[str, DemoRefund] = {}
    followers = {r.after: r for r in refunds if r.after}

    async def run(refund: DemoRefund) -> None:
        nonlocal done
        try:
            refund = await _asked(client, settings, refund)
        except DemoOrderFailed as exc:
            finished[refund.request.request_id] = replace(refund, error=str(exc))
        else:
            finished[refund.request.request_id] = refund
        done += 1
        progress(done, len(refunds))
        follower = followers.get(refund.request.request_id)
        if follower is not None:
            await run(follower)

    pending = [asyncio.create_task(run(r)) for r in refunds if not r.after]
    if pending:
        _, late = await asyncio.wait(pending, timeout=timeout_s)
        for task in late:
            task.cancel()
    return [finished.get(r.request.request_id, r) for r in refunds]


async def _asked(client: Client, settings: Settings, refund: DemoRefund) -> DemoRefund:
    """Quote the refund's lines (if any), start it, review it as planned, wait for its end."""
    request, quote = refund.request, None
    if refund.order is not None and refund.scenario.returns_lines:
        quote = await quote_lines(settings, refund.order.order_id, refund.scenario)
        if refund.scenario.off_quote:
            request = request.model_copy(update={"amount": quote.total + refund.scenario.off_quote})
    handle = await start_refund(client, request, settings.task_queue)
    expected = None
    if refund.scenario.review:
        expected = await review_as_demo(handle, refund.scenario.review)
    result = await handle.result()
    return replace(refund, request=request, quote=quote, result=result, expected=expected)


def new_run_id() -> str:
    return time.strftime("%H%M%S") + uuid.uuid4().hex[:4]
