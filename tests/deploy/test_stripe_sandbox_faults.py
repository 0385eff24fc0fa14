"""Sandbox faults and restarts: what the refund service must survive, produced on purpose."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import stripe

from deploy.sandboxes.faults import SandboxFaults
from deploy.sandboxes.stripe_sandbox import StripeSandbox
from deploy.sandboxes.stripe_shop import create_payment, shop_client


async def pay(shop: stripe.StripeClient, amount: int = 1000) -> str:
    return await create_payment(shop, amount=amount, currency="usd", customer="cus_faults")


async def refunds_of(shop: stripe.StripeClient, intent_id: str) -> list[stripe.Refund]:
    return (await shop.v1.refunds.list_async({"payment_intent": intent_id})).data


async def test_a_scripted_500_answers_before_doing_anything(
    sandbox: StripeSandbox, shop: stripe.StripeClient
) -> None:
    intent_id = await pay(shop)
    sandbox.faults.script("/v1/refunds", "POST", fail_times=1, status=500)
    with pytest.raises(stripe.APIError) as failed:
        await shop.v1.refunds.create_async({"payment_intent": intent_id})
    assert failed.value.http_status == 500
    assert await refunds_of(shop, intent_id) == []  # GETs are not faulted by a POST rule
    refund = await shop.v1.refunds.create_async({"payment_intent": intent_id})  # rule spent
    assert refund.status == "succeeded"


async def test_a_scripted_drop_makes_the_refund_but_loses_the_answer(
    sandbox: StripeSandbox, shop: stripe.StripeClient
) -> None:
    intent_id = await pay(shop)
    sandbox.faults.script("/v1/refunds", "POST", drop_times=1)
    options: stripe.RequestOptions = {"idempotency_key": "refund-dropped-1"}
    params: stripe.params.RefundCreateParams = {"payment_intent": intent_id, "amount": 250}
    with pytest.raises(stripe.APIConnectionError):
        await shop.v1.refunds.create_async(params, options)
    made = await refunds_of(shop, intent_id)
    assert [(r.amount, r.status) for r in made] == [(250, "succeeded")]
    retried = await shop.v1.refunds.create_async(params, options)  # the same key replays
    assert retried.id == made[0].id
    assert len(await refunds_of(shop, intent_id)) == 1


async def test_scripted_latency_answers_later(
    sandbox: StripeSandbox, shop: stripe.StripeClient
) -> None:
    intent_id = await pay(shop)
    sandbox.faults.script("/v1/payment_intents/", "GET", latency="200ms")
    started = time.perf_counter()
    await shop.v1.payment_intents.retrieve_async(intent_id)
    assert time.perf_counter() - started >= 0.2
    sandbox.faults.clear()
    started = time.perf_counter()
    await shop.v1.payment_intents.retrieve_async(intent_id)
    assert time.perf_counter() - started < 0.2


async def test_faults_are_steered_over_http(
    shop: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    intent_id = await pay(shop)
    rule = {"path_prefix": "/v1/refunds", "method": "POST", "fail_times": 2, "status": 429}
    assert (await raw.post("/_sandbox/faults", json=rule)).status_code == 200
    assert (await raw.get("/_sandbox/faults")).json()["rules"][0]["fail_times"] == 2
    with pytest.raises(stripe.RateLimitError):
        await shop.v1.refunds.create_async({"payment_intent": intent_id})
    assert (await raw.delete("/_sandbox/faults")).json()["rules"] == []
    await shop.v1.refunds.create_async({"payment_intent": intent_id})

    assert (await raw.post("/_sandbox/faults", json={"spec": "error_rate=1,seed=3"})).is_success
    with pytest.raises((stripe.APIError, stripe.RateLimitError)):
        await shop.v1.payment_intents.retrieve_async(intent_id)
    assert (await raw.get("/_sandbox/health")).json()["ok"] is True  # never faulted
    await raw.delete("/_sandbox/faults")
    bad = await raw.post("/_sandbox/faults", json={"path_prefix": "/v1", "fail_times": "x"})
    assert bad.status_code == 400


async def test_random_drops_really_cut_the_connection(http_client: stripe.HTTPXClient) -> None:
    box = StripeSandbox(SandboxFaults.parse("drop_rate=1"))
    await box.start("127.0.0.1", 0)
    try:
        with pytest.raises(stripe.APIConnectionError):
            await pay(shop_client(box.base_url, http_client=http_client))
        assert len(box.state.payment_intents) == 1  # made, then the answer was lost
    finally:
        await box.stop()


def test_fault_settings_parse_from_the_environment() -> None:
    faults = SandboxFaults.from_env(
        {"REFUNDS_SANDBOX_FAULTS": " latency=300ms, error_rate=0.3,drop_rate=0.1,seed=7 "}
    )
    assert (faults.latency, faults.error_rate, faults.drop_rate, faults.seed) == (
        0.3,
        0.3,
        0.1,
        7,
    )
    assert SandboxFaults.parse("latency=1.5s").latency == 1.5
    quiet = SandboxFaults.from_env({})
    assert (quiet.latency, quiet.error_rate, quiet.drop_rate) == (0.0, 0.0, 0.0)
    same = [SandboxFaults.parse("error_rate=0.5,seed=1").plan("GET", "/v1/x") for _ in range(2)]
    assert same[0] == same[1]  # a seed makes random faults repeatable


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("latency=fast", "latency=fast"),
        ("latency=300", "latency=300"),
        ("error_rate=1.5", "error_rate=1.5"),
        ("drop_rate=lots", "drop_rate=lots"),
        ("seed=x", "seed=x"),
        ("jitter=1ms", "jitter=1ms"),
        ("latency", "latency"),
    ],
)
def test_bad_fault_settings_name_the_bad_item(text: str, named: str) -> None:
    with pytest.raises(ValueError, match="REFUNDS_SANDBOX_FAULTS") as problem:
        SandboxFaults.from_env({"REFUNDS_SANDBOX_FAULTS": f"seed=1,{text}"})
    assert repr(named) in str(problem.value)


async def test_state_survives_a_restart(tmp_path: Path, http_client: stripe.HTTPXClient) -> None:
    state_file = tmp_path / "state" / "stripe-sandbox.json"
    box = StripeSandbox(state_file=state_file)
    try:
        shop = shop_client(await box.start("127.0.0.1", 0), http_client=http_client)
        intent_id = await pay(shop, 900)
        options: stripe.RequestOptions = {"idempotency_key": "before-restart"}
        refund = await shop.v1.refunds.create_async(
            {"payment_intent": intent_id, "amount": 400}, options
        )
        await box.stop()
        assert state_file.exists() and not list(state_file.parent.glob("*.tmp"))

        box = StripeSandbox(state_file=state_file)
        shop = shop_client(await box.start("127.0.0.1", 0), http_client=http_client)
        intent = await shop.v1.payment_intents.retrieve_async(intent_id)
        assert (intent.status, intent.amount_received) == ("succeeded", 900)
        replayed = await shop.v1.refunds.create_async(
            {"payment_intent": intent_id, "amount": 400}, options
        )
        assert replayed.id == refund.id  # idempotency keys survive too
        assert [r.id for r in await refunds_of(shop, intent_id)] == [refund.id]
        with pytest.raises(stripe.InvalidRequestError) as too_much:
            await shop.v1.refunds.create_async({"payment_intent": intent_id, "amount": 501})
        assert too_much.value.code == "amount_too_large"
    finally:
        await box.stop()
