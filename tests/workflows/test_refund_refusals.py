"""Every bad request ends REJECTED with its reason: nothing reserved, nothing refunded."""

from __future__ import annotations

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.ledger import Ledger
from deploy.sandboxes.stripe_shop import create_payment, shop_client
from starters.client import start_refund
from tests.support.stack import SANDBOX_KEY, running_worker
from tests.workflows.test_refund_paths import refund_request
from workflows.models import RefundStatus

CASES = [
    # (name, payment kwargs, request overrides, words the reason must contain)
    ("zero amount", {}, {"amount": 0}, "positive integer"),
    ("negative amount", {}, {"amount": -500}, "positive integer"),
    ("unknown currency", {}, {"currency": "xyz"}, "unknown currency 'XYZ'"),
    ("currency mismatch", {}, {"currency": "eur"}, "currency mismatch"),
    ("unknown payment", None, {}, "No such payment_intent"),
    ("above refundable", {}, {"amount": 5001}, "above what is still refundable"),
    ("disputed payment", {"payment_method": "pm_card_createDispute"}, {}, "disputed"),
]


@pytest.mark.parametrize(
    ("name", "payment", "overrides", "words"), CASES, ids=[c[0] for c in CASES]
)
async def test_bad_request_is_rejected_and_moves_nothing(
    time_skipping_env: WorkflowEnvironment,
    ledger_db: asyncpg.Pool,
    stripe_base: str,
    name: str,
    payment: dict[str, str] | None,
    overrides: dict[str, object],
    words: str,
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    if payment is None:
        payment_id = "pi_doesnotexist0000"
    else:
        payment_id = await create_payment(
            shop, amount=5000, currency="usd", customer="cus_42", **payment
        )
    request = refund_request(payment_id, **overrides)
    client = time_skipping_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        result = await (await start_refund(client, request, queue)).result()

    assert result.status is RefundStatus.REJECTED, result
    assert result.amount_refunded == 0
    assert result.reason and words in result.reason, result.reason
    assert await Ledger(ledger_db).transfers_for_refund(request.request_id) == []
    if payment is not None:
        refunds = await shop.v1.refunds.list_async({"payment_intent": payment_id})
        assert refunds.data == []
