"""The PayPal adapter when PayPal (or what stands in front of it) answers oddly or slowly:
its own threads and time budget, long request ids, non-JSON and minimal answers, redirects,
and orders with several purchase units."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from activities.errors import (
    ProviderAuthFailed,
    ProviderDeclined,
    ProviderUnavailable,
)
from activities.paypal_provider import (
    CALL_BUDGET_SECONDS,
    REQUEST_ID_MAX_LENGTH,
    PayPalProvider,
    paypal_request_id,
)
from deploy.sandboxes.paypal_render import order_api
from tests.support.paypal_harness import CLIENT_ID, CLIENT_SECRET, PayPalHarness, paypal_harness
from workflows.models import PspRefundStatus, RefundPlan, RefundReason

REASON = RefundReason.REQUESTED_BY_CUSTOMER


@pytest.fixture
async def paypal() -> AsyncIterator[PayPalHarness]:
    async with paypal_harness() as harness:
        yield harness


def plan(amount: int, currency: str = "EUR") -> RefundPlan:
    return RefundPlan(operation="refund", amount=amount, currency=currency)


def sent_request_ids(paypal: PayPalHarness) -> list[str]:
    """The refunds' PayPal-Request-Ids the sandbox kept (slots are ``<client hash>:<id>``;
    the shop's checkout sends ``order-...`` ids)."""
    ids = [slot.partition(":")[2] for slot in paypal.sandbox.state.idempotency]
    return [request_id for request_id in ids if request_id.startswith("refund-")]


# --- Threads and time ---------------------------------------------------------------------


async def test_sdk_calls_run_on_the_adapters_own_threads(paypal: PayPalHarness) -> None:
    capture_id = await paypal.paid(100)
    names: list[str] = []
    original = paypal.provider._api.http_call

    def recording(url: str, method: str, **kwargs: Any) -> Any:
        names.append(threading.current_thread().name)
        return original(url, method, **kwargs)

    paypal.provider._api.http_call = recording
    await paypal.provider.fetch_payment(capture_id)
    assert names and all(name.startswith("paypal") for name in names)


async def test_a_slow_paypal_leaves_the_default_executor_free(paypal: PayPalHarness) -> None:
    capture_id = await paypal.paid(100)
    paypal.sandbox.faults.script("/v2/payments/captures/", "GET", latency="500ms")
    loop = asyncio.get_running_loop()
    shared = loop._default_executor  # type: ignore[attr-defined]  # restored below
    single = ThreadPoolExecutor(1)
    loop.set_default_executor(single)  # what other providers' to_thread calls share
    try:
        slow = asyncio.create_task(paypal.provider.fetch_payment(capture_id))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await asyncio.to_thread(lambda: None)
        assert time.monotonic() - started < 0.2
        await slow
    finally:
        loop._default_executor = shared  # type: ignore[attr-defined]
        single.shutdown(wait=False)
        paypal.sandbox.faults.clear()


async def test_each_call_times_out_on_its_own(paypal: PayPalHarness) -> None:
    capture_id = await paypal.paid(100)
    quick = PayPalProvider(CLIENT_ID, CLIENT_SECRET, paypal.sandbox.base_url, read_timeout_s=0.3)
    paypal.sandbox.faults.script("/v2/payments/captures/", "GET", latency="1s")
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable, match="Timeout"):
        await quick.fetch_payment(capture_id)
    assert time.monotonic() - started < 0.9
    paypal.sandbox.faults.clear()


async def test_an_operation_ends_within_its_budget(paypal: PayPalHarness) -> None:
    """Default per-call timeouts (8 s reads) are cut to the operation's budget: the whole
    sequence of calls ends inside the local activity's 30 s."""
    assert CALL_BUDGET_SECONDS < 30
    capture_id = await paypal.paid(100)
    tight = PayPalProvider(CLIENT_ID, CLIENT_SECRET, paypal.sandbox.base_url, budget_s=1.0)
    paypal.sandbox.faults.script("/v2/payments/captures/", "GET", latency="3s")
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        await tight.fetch_payment(capture_id)
    assert time.monotonic() - started < 1.3
    paypal.sandbox.faults.clear()


# --- PayPal-Request-Id ----------------------------------------------------------------------


async def test_a_long_key_goes_short_and_the_same_on_every_retry(paypal: PayPalHarness) -> None:
    key = f"refund-{'r' * 200}-refund"
    short = paypal_request_id(key)
    assert len(short) <= REQUEST_ID_MAX_LENGTH and short == paypal_request_id(key)
    assert short.startswith("refund-") and short != paypal_request_id(key + "x")
    capture_id = await paypal.paid(2000)
    payment = await paypal.provider.fetch_payment(capture_id)
    paypal.drop_next_refund_answer()
    with pytest.raises(ProviderUnavailable):
        await paypal.provider.refund(payment, plan(2000), REASON, key, "refund-long")
    retried = await paypal.provider.refund(payment, plan(2000), REASON, key, "refund-long")
    assert retried.status is PspRefundStatus.SUCCEEDED
    assert await paypal.refunds_made(capture_id) == 1
    assert sent_request_ids(paypal) == [short]


async def test_a_key_paypal_takes_is_sent_as_it_is(paypal: PayPalHarness) -> None:
    key = f"refund-{'q' * (REQUEST_ID_MAX_LENGTH - 14)}-refund"
    assert len(key) == REQUEST_ID_MAX_LENGTH and paypal_request_id(key) == key
    payment = await paypal.provider.fetch_payment(await paypal.paid(700))
    await paypal.provider.refund(payment, plan(700), REASON, key, "refund-exact")
    assert sent_request_ids(paypal) == [key]


# --- Odd answers ----------------------------------------------------------------------------


async def test_a_400_that_is_not_json_is_declined_not_retried(paypal: PayPalHarness) -> None:
    payment = await paypal.provider.fetch_payment(await paypal.paid(1000))
    paypal.sandbox.answers.script(
        "/v2/payments/captures/", "POST", status=400, body="<html><h1>Bad Request</h1></html>"
    )
    with pytest.raises(ProviderDeclined, match="not PayPal's JSON error") as declined:
        await paypal.provider.refund(payment, plan(100), REASON, "k-html", "r-html")
    assert not declined.value.retryable and "Bad Request" in declined.value.message


async def test_a_408_is_retried(paypal: PayPalHarness) -> None:
    capture_id = await paypal.paid(1000)
    paypal.sandbox.answers.script("/v2/payments/captures/", "GET", status=408, body="timeout")
    with pytest.raises(ProviderUnavailable) as unavailable:
        await paypal.provider.fetch_payment(capture_id)
    assert unavailable.value.retryable
    assert (await paypal.provider.fetch_payment(capture_id)).amount_captured == 1000


async def test_a_redirect_is_not_followed_and_names_the_setting(paypal: PayPalHarness) -> None:
    capture_id = await paypal.paid(1000)
    payment = await paypal.provider.fetch_payment(capture_id)
    for status in (301, 302, 307, 308):
        paypal.sandbox.answers.script(
            "/v2/payments/captures/",
            "POST",
            status=status,
            location=f"{paypal.sandbox.base_url}/v2/payments/captures/{capture_id}/refund",
        )
        with pytest.raises(ProviderAuthFailed, match="PAYPAL_API_BASE") as refused:
            await paypal.provider.refund(payment, plan(100), REASON, f"k-{status}", "r-redir")
        assert not refused.value.retryable
    assert await paypal.refunds_made(capture_id) == 0


async def test_a_minimal_refund_answer_is_read_in_full(paypal: PayPalHarness) -> None:
    payment = await paypal.provider.fetch_payment(await paypal.paid(5000))
    paypal.sandbox.answers.script("/v2/payments/captures/", "POST", minimal=True)
    refund = await paypal.provider.refund(payment, plan(1500), REASON, "k-min", "r-min")
    assert (refund.status, refund.amount, refund.currency) == (
        PspRefundStatus.SUCCEEDED,
        1500,
        "EUR",
    )
    assert refund.psp_refund_id in paypal.sandbox.state.refunds


async def test_a_minimal_void_answer_still_voids(paypal: PayPalHarness) -> None:
    payment = await paypal.provider.fetch_payment(await paypal.paid(700, "USD", captured=False))
    paypal.sandbox.answers.script("/v2/payments/authorizations/", "POST", minimal=True)
    voided = await paypal.provider.void(payment, "void-min")
    assert voided.status is PspRefundStatus.SUCCEEDED


# --- Orders with several purchase units ------------------------------------------------------


async def test_refunds_count_from_every_purchase_unit(paypal: PayPalHarness) -> None:
    capture_id = await paypal.paid(5000)
    payment = await paypal.provider.fetch_payment(capture_id)
    await paypal.provider.refund(payment, plan(1500), REASON, "k-pu", "r-pu")
    state = paypal.sandbox.state
    order = state.orders[state.captures[capture_id].order_id]
    shown = order_api(state, paypal.sandbox.base_url, order)
    ours = shown["purchase_units"][0]
    other_refund = {
        "id": "9OTHERREFUND0001",
        "status": "COMPLETED",
        "amount": {"currency_code": "EUR", "value": "9.99"},
        "links": [
            {"href": f"{paypal.sandbox.base_url}/v2/payments/captures/0OTHERCAPTURE01", "rel": "up"}
        ],
    }
    other = {"reference_id": "second", "payments": {"refunds": [other_refund]}}
    shown["purchase_units"] = [other, ours]  # ours is not the first unit
    paypal.sandbox.answers.script(
        f"/v2/checkout/orders/{order.id}",
        "GET",
        status=200,
        body=json.dumps(shown),
        content_type="application/json",
    )
    snapshot = await paypal.provider.fetch_payment(capture_id)
    assert snapshot.amount_refunded == 1500  # not 0 (only unit 0), not 2499 (another capture)
