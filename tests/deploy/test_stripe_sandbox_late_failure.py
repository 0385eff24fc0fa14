"""`pm_card_refundLateFail`: a refund that succeeds, then fails, as Stripe warns can happen.

The refund service must book such a refund back; these tests pin down what the sandbox does
so that path can be exercised: succeeded at creation, failed `late_failure_seconds` later by
the sandbox's own timer, the money back on the charge, and the webhooks Stripe sends for it,
each verified with the stripe library's `stripe.Webhook.construct_event`.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import stripe

from deploy.sandboxes.stripe_sandbox import (
    DEFAULT_SETTLE_AFTER_SECONDS,
    SETTLE_AFTER_ENV_VAR,
    settle_after_from_env,
)
from tests.deploy.test_stripe_sandbox_webhooks import (
    Receiver,
    pay,
    receiver,  # noqa: F401  (the fixture: pytest finds it here by name)
    running,
    until,
)

LATE = 0.3


async def test_a_late_fail_refund_succeeds_then_fails_and_says_so(
    receiver: Receiver,  # noqa: F811
    http_client: stripe.HTTPXClient,
) -> None:
    async with running(receiver, http_client, late_failure_seconds=LATE) as sandbox:
        intent_id, charge_id = await pay(sandbox.shop, "pm_card_refundLateFail")
        started = time.monotonic()
        refund = await sandbox.shop.v1.refunds.create_async(
            {"payment_intent": intent_id, "amount": 400}
        )
        assert (refund.status, refund.failure_reason) == ("succeeded", None)
        charge = await sandbox.shop.v1.charges.retrieve_async(charge_id)
        assert charge.amount_refunded == 400

        failed = await receiver.wait_for("refund.failed", refund.id)  # nobody asked about it
        assert time.monotonic() - started >= LATE
        assert failed["data"]["object"]["status"] == "failed"
        assert failed["data"]["object"]["failure_reason"] == "expired_or_canceled_card"
        updated = await receiver.wait_for("refund.updated", refund.id)
        assert updated["data"]["object"]["status"] == "failed"
        assert updated["data"]["previous_attributes"]["status"] == "succeeded"
        assert updated["request"] == {"id": None, "idempotency_key": None}  # the network did it
        assert receiver.types_for(refund.id) == [
            "refund.created",
            "refund.updated",
            "refund.failed",
        ]
        created = await receiver.wait_for("refund.created", refund.id)
        assert created["data"]["object"]["status"] == "succeeded"

        await until(lambda: len(receiver.types_for(charge_id)) == 2)
        assert receiver.amounts_refunded(charge_id) == [400, 0]  # refunded, then it came back
        back = [e for e in receiver.events if e["type"] == "charge.refunded"][-1]
        assert back["data"]["previous_attributes"] == {"amount_refunded": 400}

        fetched = await sandbox.shop.v1.refunds.retrieve_async(refund.id)
        assert (fetched.status, fetched.failure_reason) == ("failed", "expired_or_canceled_card")
        charge = await sandbox.shop.v1.charges.retrieve_async(charge_id)
        assert (charge.amount_refunded, charge.refunded) == (0, False)
        # The charge is refundable again in full.
        again = await sandbox.shop.v1.refunds.create_async({"payment_intent": intent_id})
        assert (again.status, again.amount) == ("succeeded", 1000)


async def test_a_late_fail_refund_stays_succeeded_until_its_time(
    receiver: Receiver,  # noqa: F811
    http_client: stripe.HTTPXClient,
) -> None:
    async with running(receiver, http_client, late_failure_seconds=30) as sandbox:
        intent_id, charge_id = await pay(sandbox.shop, "pm_card_refundLateFail")
        refund = await sandbox.shop.v1.refunds.create_async({"payment_intent": intent_id})
        await receiver.wait_for("charge.refunded", charge_id)
        await asyncio.sleep(0.7)  # past a settle tick of the sandbox's timer
        fetched = await sandbox.shop.v1.refunds.retrieve_async(refund.id)
        assert fetched.status == "succeeded"
        assert receiver.types_for(refund.id) == ["refund.created"]


def test_the_settle_after_setting_parses() -> None:
    assert settle_after_from_env({}) == DEFAULT_SETTLE_AFTER_SECONDS == 10.0
    assert settle_after_from_env({SETTLE_AFTER_ENV_VAR: " "}) == 10.0
    assert settle_after_from_env({SETTLE_AFTER_ENV_VAR: "10s"}) == 10.0
    assert settle_after_from_env({SETTLE_AFTER_ENV_VAR: "2m"}) == 120.0
    assert settle_after_from_env({SETTLE_AFTER_ENV_VAR: "300ms"}) == pytest.approx(0.3)


@pytest.mark.parametrize("bad", ["10", "soon", "-1s", "2h"])
def test_a_bad_settle_after_setting_names_the_variable(bad: str) -> None:
    with pytest.raises(ValueError, match="REFUNDS_SANDBOX_SETTLE_AFTER") as raised:
        settle_after_from_env({SETTLE_AFTER_ENV_VAR: bad})
    assert repr(bad) in str(raised.value)
