"""One contract, three providers: the same refunds through Stripe, PayPal and Adyen.

Each test runs the real RefundWorkflow on the dev server against a provider's sandbox over
HTTP, through the provider's real SDK, with its webhooks delivered (signed) to the real
receiver. The provider-specific parts live in ``tests/support/{psp}_harness.py``.
"""

from __future__ import annotations

import asyncio
import importlib
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.errors import OverRefund
from activities.ledger import Ledger
from starters.client import start_refund
from starters.receiver import receiver_routers
from tests.support.harness import LATE_FAILURE, PENDING, ProviderHarness, Receiver
from tests.support.http import served_api
from tests.support.stack import running_worker
from workers.settings import Settings, parse_api_tokens
from workflows.models import (
    PaymentState,
    Psp,
    PspRefundStatus,
    RefundPlan,
    RefundReason,
    RefundRequest,
    RefundResult,
    RefundStatus,
)

PROVIDERS = [Psp.STRIPE, Psp.PAYPAL, Psp.ADYEN]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _harness(
    psp: Psp, receiver: Receiver, client: Client, pool: asyncpg.Pool
) -> AbstractAsyncContextManager[ProviderHarness]:
    module = importlib.import_module(f"tests.support.{psp.value}_harness")
    factory: Any = getattr(module, f"{psp.value}_harness")
    made: AbstractAsyncContextManager[ProviderHarness] = factory(receiver, client, pool)
    return made


@dataclass
class ContractStack:
    harness: ProviderHarness
    client: Client
    queue: str
    ledger: Ledger

    async def refund(self, payment_id: str, amount: int | None = None) -> RefundResult:
        request = RefundRequest(
            request_id=f"rma-{uuid.uuid4().hex[:10]}",
            psp=self.harness.psp,
            payment_id=payment_id,
            amount=amount,
            currency="EUR",
            reason=RefundReason.REQUESTED_BY_CUSTOMER,
            customer_id="cus_contract",
            requested_by="support@shop.example",
        )
        handle = await start_refund(self.client, request, self.queue)
        return await asyncio.wait_for(handle.result(), timeout=60)


@asynccontextmanager
async def contract_stack(
    psp: Psp, client: Client, pool: asyncpg.Pool, bad_credentials: bool = False
) -> AsyncIterator[ContractStack]:
    queue, port = f"contract-{psp.value}-{uuid.uuid4().hex[:8]}", _free_port()
    receiver = Receiver(f"http://127.0.0.1:{port}")
    async with _harness(psp, receiver, client, pool) as harness:
        settings = harness.configure_receiver(
            Settings(
                task_queue=queue,
                http_address=f"127.0.0.1:{port}",
                api_tokens=parse_api_tokens("t:admin:ops", "REFUNDS_API_TOKENS"),
            )
        )
        provider = harness.with_bad_credentials() if bad_credentials else harness.provider
        async with (
            running_worker(client, pool, None, providers={psp: provider}, task_queue=queue),
            served_api(client, settings, receiver_routers(client, settings, pool)),
        ):
            yield ContractStack(harness, client, queue, Ledger(pool))


@pytest.fixture(params=PROVIDERS, ids=[p.value for p in PROVIDERS])
async def stack(
    request: pytest.FixtureRequest, dev_env: WorkflowEnvironment, ledger_db: asyncpg.Pool
) -> AsyncIterator[ContractStack]:
    async with contract_stack(request.param, dev_env.client, ledger_db) as made:
        yield made


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float) -> bool:
    """Ask ``check`` until it holds or ``seconds`` pass (what a user would do: look again)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def _position(stack: ContractStack, payment_id: str) -> tuple[int, int]:
    snapshot = await stack.harness.provider.fetch_payment(payment_id)
    position = await stack.ledger.payment_position(snapshot.payment_key)
    assert position is not None
    return position.reserved, position.refunded


async def test_a_full_refund_returns_everything_once(stack: ContractStack) -> None:
    payment = await stack.harness.paid(5000)
    result = await stack.refund(payment)
    assert result.status is RefundStatus.SUCCEEDED, result.reason
    assert (result.amount_refunded, result.currency) == (5000, "EUR")
    assert await stack.harness.refunds_made(payment) == 1
    assert await _position(stack, payment) == (0, 5000)
    assert await stack.ledger.verify() == []


async def test_partial_refunds_add_up_to_the_payment_and_no_further(stack: ContractStack) -> None:
    payment = await stack.harness.paid(5000)
    first = await stack.refund(payment, 2000)
    second = await stack.refund(payment, 3000)
    third = await stack.refund(payment, 1)
    assert [first.status, second.status] == [RefundStatus.SUCCEEDED] * 2
    assert third.status is RefundStatus.REJECTED
    assert await stack.harness.refunds_made(payment) == 2
    assert await _position(stack, payment) == (0, 5000)


async def test_an_over_refund_is_rejected_and_moves_nothing(stack: ContractStack) -> None:
    payment = await stack.harness.paid(5000)
    result = await stack.refund(payment, 6000)
    assert result.status is RefundStatus.REJECTED
    assert result.reason and "above what is still refundable" in result.reason
    assert await stack.harness.refunds_made(payment) == 0
    assert await stack.ledger.verify() == []


async def test_an_authorisation_never_captured_is_voided(stack: ContractStack) -> None:
    payment = await stack.harness.paid(3000, captured=False)
    result = await stack.refund(payment)
    assert result.status is RefundStatus.SUCCEEDED, result.reason
    assert result.amount_refunded == 3000

    async def canceled() -> bool:  # Adyen's book learns it from the CANCELLATION notice
        return (await stack.harness.provider.fetch_payment(payment)).state is PaymentState.CANCELED

    assert await eventually(canceled, 10)


async def test_a_pending_refund_succeeds_once_the_provider_settles_it(
    stack: ContractStack,
) -> None:
    payment = await stack.harness.paid(4000, refunds=PENDING)
    result = await stack.refund(payment)
    assert result.status is RefundStatus.SUCCEEDED, result.reason
    assert await _position(stack, payment) == (0, 4000)


async def test_a_late_failure_is_booked_back(stack: ContractStack) -> None:
    payment = await stack.harness.paid(4500, refunds=LATE_FAILURE)
    result = await stack.refund(payment)
    assert result.status is RefundStatus.SUCCEEDED, result.reason
    late = f"refund-{result.request_id}:late-failure"

    async def booked_back() -> bool:
        return late in {t.id for t in await stack.ledger.transfers_for_refund(result.request_id)}

    assert await eventually(booked_back, 20)
    assert await stack.ledger.verify() == []


async def test_a_retry_after_the_provider_acted_makes_exactly_one_refund(
    stack: ContractStack,
) -> None:
    payment = await stack.harness.paid(2500)
    stack.harness.drop_next_refund_answer()  # refunded, then the answer is lost
    result = await stack.refund(payment)
    assert result.status is RefundStatus.SUCCEEDED, result.reason
    assert await stack.harness.refunds_made(payment) == 1
    assert await _position(stack, payment) == (0, 2500)


@pytest.mark.parametrize("psp", PROVIDERS, ids=[p.value for p in PROVIDERS])
async def test_bad_credentials_fail_for_good_with_a_clear_reason(
    psp: Psp, dev_env: WorkflowEnvironment, ledger_db: asyncpg.Pool
) -> None:
    async with contract_stack(psp, dev_env.client, ledger_db, bad_credentials=True) as stack:
        payment = await stack.harness.paid(1500)
        result = await stack.refund(payment)
        assert await stack.harness.refunds_made(payment) == 0
    assert result.status is RefundStatus.FAILED
    assert result.reason and result.reason.lower().startswith(psp.value)
    assert await stack.ledger.verify() == []


async def test_the_same_idempotency_key_twice_is_one_refund(stack: ContractStack) -> None:
    """The adapter alone, no lookup first: the provider's own idempotency must hold."""
    payment_id = await stack.harness.paid(3000)
    payment = await stack.harness.provider.fetch_payment(payment_id)
    plan = RefundPlan(operation="refund", amount=1200, currency="EUR")
    key, refund_id = f"refund-{uuid.uuid4().hex[:8]}-refund", "contract-key"
    provider = stack.harness.provider
    first = await provider.refund(payment, plan, RefundReason.OTHER, key, refund_id)
    again = await provider.refund(payment, plan, RefundReason.OTHER, key, refund_id)
    assert again.psp_refund_id == first.psp_refund_id
    assert await stack.harness.refunds_made(payment_id) == 1


async def test_an_over_refund_the_books_allowed_is_refused_by_the_provider(
    stack: ContractStack,
) -> None:
    """Past the ledger (say, a refund made in the provider's dashboard): the provider refuses,
    at once (Stripe, PayPal) or by its notification (Adyen); no money moves either way."""
    payment_id = await stack.harness.paid(2000)
    payment = await stack.harness.provider.fetch_payment(payment_id)
    plan = RefundPlan(operation="refund", amount=2500, currency="EUR")
    key = f"refund-{uuid.uuid4().hex[:8]}-refund"
    try:
        answer = await stack.harness.provider.refund(payment, plan, RefundReason.OTHER, key, "x")
    except OverRefund:
        return
    assert stack.harness.psp is Psp.ADYEN  # the only one that answers before it checks
    assert answer.status is PspRefundStatus.PENDING

    async def failed() -> bool:
        told = await stack.harness.provider.fetch_refund(answer.psp_refund_id)
        return told.status is PspRefundStatus.FAILED

    assert await eventually(failed, 10)
