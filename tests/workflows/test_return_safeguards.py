"""What keeps a return's books straight when reviewers, retries and webhooks get in the way."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from activities.ledger import Ledger
from activities.orders import OrderBook
from activities.risk import RiskPolicy
from activities.stripe_provider import StripeProvider
from deploy.sandboxes.stripe_shop import create_payment, shop_client
from starters.client import start_refund
from tests.support.stack import SANDBOX_KEY, running_worker
from tests.workflows.review_support import reach
from tests.workflows.test_fx_refunds import IN_USD, tell_rate
from tests.workflows.test_line_item_refunds import lines, order_of
from tests.workflows.test_refund_paths import refund_request
from workers.money_settings import MoneySettings
from workers.worker import refund_workers, running, worker_activities
from workflows.models import (
    ProviderRefundUpdate,
    Psp,
    PspRefundStatus,
    RefundReason,
    RefundStatus,
    ReserveRefund,
)
from workflows.orders import Order, OrderLine
from workflows.refund import RefundWorkflow
from workflows.refund_policy import RefundPolicy
from workflows.review_models import ApproveDecision


async def test_a_reviewer_approves_a_return_whole_or_not_at_all(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    """A lower amount would refund less than the units the return holds: refused, named."""
    shop = shop_client(stripe_base, SANDBOX_KEY)
    book = OrderBook(ledger_db)
    payment = await create_payment(shop, amount=60_000, currency="usd", customer="cus_42")
    order = Order(
        order_id=f"ord-{uuid.uuid4().hex[:8]}",
        psp="stripe",
        payment_id=payment,
        currency="usd",
        lines=[OrderLine(line_id="L1", sku="TV", quantity=2, unit_price=30_000)],
    )
    await book.save(order, source="test")
    request = refund_request(
        payment, order_id=order.order_id, lines=lines(L1=2), reason=RefundReason.OUT_OF_STOCK
    )
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        handle = await start_refund(client, request, queue)
        await reach(handle, RefundStatus.AWAITING_REVIEW)  # 600.00 is above REFUNDS_REVIEW_ABOVE
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                RefundWorkflow.approve_refund, ApproveDecision(reviewer="rita", amount=30_000)
            )
        await handle.execute_update(RefundWorkflow.approve_refund, ApproveDecision(reviewer="rita"))
        result = await handle.result()

    assert "refunds its quote of 600.00 USD" in str(refused.value.cause)
    assert (result.status, result.amount_refunded) == (RefundStatus.SUCCEEDED, 60_000)
    assert await book.taken_units(order.order_id) == {"L1": [1, 2]}


async def test_a_retried_reservation_is_never_judged_again(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    """The reservation commits, its answer is lost, the refund window closes before the retry:
    the retry finds its own reservation and the refund goes on, refunded once."""
    shop = shop_client(stripe_base, SANDBOX_KEY)
    book = OrderBook(ledger_db)
    payment = await create_payment(shop, amount=13015, currency="usd", customer="cus_42")
    order = order_of(payment)
    await book.save(order, source="test")
    calls = 0
    start = datetime.now(UTC)

    def clock() -> datetime:
        late = timedelta(days=180, seconds=1) if calls > 1 else timedelta(days=179, hours=23)
        return start + late

    providers = {Psp.STRIPE: StripeProvider(SANDBOX_KEY, stripe_base)}
    acts = worker_activities(providers, ledger_db, RiskPolicy(), now=clock)
    real: Callable[..., object] = next(a for a in acts if a.__name__ == "reserve_refund")

    @activity.defn(name="reserve_refund")
    async def reserve_answer_lost(order: ReserveRefund) -> None:
        nonlocal calls
        calls += 1
        await real(order)  # type: ignore[misc]
        if calls == 1:
            raise RuntimeError("the worker lost the answer after the commit")

    acts = [a for a in acts if a is not real] + [reserve_answer_lost]
    request = refund_request(
        payment, order_id=order.order_id, lines=lines(L2=1), reason=RefundReason.OUT_OF_STOCK
    )
    client = time_skipping_env.client
    queue = f"refunds-test-{uuid.uuid4().hex[:8]}"
    async with running(refund_workers(client, queue, acts, providers)):
        result = await (await start_refund(client, request, queue)).result()

    assert calls == 2
    assert result.status is RefundStatus.SUCCEEDED, result
    made = await Ledger(ledger_db).transfers_for_refund(request.request_id)
    assert [t.kind for t in made] == ["pending", "post"]
    refunds = await shop.v1.refunds.list_async({"payment_intent": payment})
    assert [r.amount for r in refunds.data] == [result.amount_refunded]


async def test_a_refund_settled_by_webhook_keeps_the_providers_rate(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    await tell_rate(stripe_base, "eur", "1.10")
    payment = await create_payment(
        shop,
        amount=4000,
        currency="eur",
        customer="cus_42",
        payment_method="pm_card_pendingRefund",
    )
    await tell_rate(stripe_base, "eur", "1.15")
    request = refund_request(payment, currency="eur")
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base, money=IN_USD) as queue:
        handle = await start_refund(client, request, queue)
        view = await reach(handle, RefundStatus.AWAITING_SETTLEMENT)
        refund_id = view.psp_refund_id
        assert refund_id
        async with httpx.AsyncClient(base_url=stripe_base) as raw:
            settled = await raw.post(
                f"/_sandbox/refunds/{refund_id}/settle", json={"status": "succeeded"}
            )
            settled.raise_for_status()
        # What the receiver sends for Stripe's refund.updated: no exchange rate in it.
        told = ProviderRefundUpdate(
            event_id="evt_1",
            psp_refund_id=refund_id,
            status=PspRefundStatus.SUCCEEDED,
            amount=4000,
            currency="EUR",
        )
        await handle.signal(RefundWorkflow.provider_update, told)
        result = await handle.result()

    assert result.status is RefundStatus.SUCCEEDED
    movement = await ledger_db.fetchrow(
        "SELECT * FROM fx_movements WHERE refund_id = $1", request.request_id
    )
    assert movement is not None
    assert movement["refund_rate_source"] == "provider"
    assert movement["fx_difference"] == 200  # 40.00 EUR at 1.15, not 1.10: 2.00 USD lost


async def test_a_refund_refused_in_its_reservation_leaves_no_valuation(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    await tell_rate(stripe_base, "eur", "1.10")
    payment = await create_payment(shop, amount=4000, currency="eur", customer="cus_42")
    money = MoneySettings(
        settlement_currency="USD", refund_policy=RefundPolicy(max_refunds_per_payment=1)
    )
    first = refund_request(payment, currency="eur", amount=1000)
    second = refund_request(payment, currency="eur", amount=1000)
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base, money=money) as queue:
        done = await (await start_refund(client, first, queue)).result()
        refused = await (await start_refund(client, second, queue)).result()

    assert done.status is RefundStatus.SUCCEEDED
    assert refused.status is RefundStatus.REJECTED
    valued = await ledger_db.fetch(
        "SELECT refund_id FROM fx_valuations WHERE payment_key = $1", f"stripe:{payment}"
    )
    assert [row["refund_id"] for row in valued] == [first.request_id]


async def test_a_workflow_task_run_again_after_the_reservation_quotes_the_same_units(
    dev_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    """A crash (here: a reset) after the reservation committed runs the quote and the reserve
    again: the refund's own units count as free for it, so it quotes and reserves the same and
    goes on, instead of refusing itself with its money held."""
    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest

    shop = shop_client(stripe_base, SANDBOX_KEY)
    book = OrderBook(ledger_db)
    payment = await create_payment(shop, amount=60_000, currency="usd", customer="cus_42")
    order = Order(
        order_id=f"ord-{uuid.uuid4().hex[:8]}",
        psp="stripe",
        payment_id=payment,
        currency="usd",
        lines=[OrderLine(line_id="L1", sku="TV", quantity=2, unit_price=30_000)],
    )
    await book.save(order, source="test")
    request = refund_request(
        payment, order_id=order.order_id, lines=lines(L1=2), reason=RefundReason.OUT_OF_STOCK
    )
    client = dev_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        handle = await start_refund(client, request, queue)
        await reach(handle, RefundStatus.AWAITING_REVIEW)  # quoted, reserved, claimed
        history = await handle.fetch_history()
        first_task = next(
            e.event_id
            for e in history.events
            if e.HasField("workflow_task_completed_event_attributes")
        )
        reset = await client.workflow_service.reset_workflow_execution(
            ResetWorkflowExecutionRequest(
                namespace=client.namespace,
                workflow_execution=WorkflowExecution(workflow_id=handle.id),
                workflow_task_finish_event_id=first_task,
                request_id=uuid.uuid4().hex,
                reason="the worker died after the reservation committed",
            )
        )
        again = client.get_workflow_handle_for(RefundWorkflow.run, handle.id, run_id=reset.run_id)
        await reach(again, RefundStatus.AWAITING_REVIEW)
        await again.execute_update(RefundWorkflow.approve_refund, ApproveDecision(reviewer="rita"))
        result = await again.result()

    assert (result.status, result.amount_refunded) == (RefundStatus.SUCCEEDED, 60_000), result
    assert await book.taken_units(order.order_id) == {"L1": [1, 2]}
    made = await Ledger(ledger_db).transfers_for_refund(request.request_id)
    assert [t.kind for t in made] == ["pending", "post"]
