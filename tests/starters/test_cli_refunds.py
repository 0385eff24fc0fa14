"""``refunds start`` and ``refunds status`` against the real dev server, as operators use them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from deploy.sandboxes.stripe_shop import create_payment, shop_client
from tests.starters.cli_run import refunds
from tests.support.stack import SANDBOX_KEY, running_worker


async def visible_refunds(client: Client, query: str) -> list[str]:
    """Workflow ids the visibility query finds, once visibility has caught up (it lags)."""
    async with asyncio.timeout(15):
        while True:
            found = [execution.id async for execution in client.list_workflows(query)]
            if found:
                return found
            await asyncio.sleep(0.2)


async def test_start_status_and_a_repeated_start_through_the_cli(
    dev_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str, tmp_path: Path
) -> None:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(shop, amount=6000, currency="gbp", customer="cus_cli")
    request = tmp_path / "refund.json"
    request.write_text(
        json.dumps(
            {
                "request_id": "rma-cli-7",
                "psp": "stripe",
                "payment_id": payment,
                "amount": 2000,
                "currency": "gbp",
                "reason": "product_unacceptable",
                "customer_id": "cus_cli",
                "requested_by": "returns-desk",
            }
        )
    )
    client = dev_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        env = {
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "REFUNDS_TASK_QUEUE": queue,
        }
        started = await asyncio.to_thread(
            refunds, "start", "--file", str(request), "--wait", "--json", env=env
        )
        again = await asyncio.to_thread(refunds, "start", "--file", str(request), "--json", env=env)
        status = await asyncio.to_thread(refunds, "status", "rma-cli-7", "--json", env=env)
        listed = await visible_refunds(
            client,
            'RefundStatus = "SUCCEEDED" AND Psp = "stripe" AND CustomerId = "cus_cli" '
            "AND RefundAmount = 2000",
        )

    assert started.returncode == 0, started.stderr
    result = json.loads(started.stdout)
    assert (result["status"], result["amount_refunded"], result["currency"]) == (
        "SUCCEEDED",
        2000,
        "GBP",
    )
    assert json.loads(again.stdout)["workflow_id"] == "refund-rma-cli-7"
    view = json.loads(status.stdout)
    assert (view["status"], view["amount_refunded"]) == ("SUCCEEDED", 2000)
    assert view["psp_refund_id"] == result["psp_refund_id"]
    refunds_made = await shop.v1.refunds.list_async({"payment_intent": payment})
    assert len(refunds_made.data) == 1, "the repeated start joined the same refund"
    assert listed == ["refund-rma-cli-7"]


async def test_a_return_of_order_lines_started_from_flags_refunds_its_quote(
    dev_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    from activities.orders import OrderBook
    from tests.workflows.test_line_item_refunds import order_of

    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(shop, amount=13015, currency="usd", customer="cus_cli")
    order = order_of(payment)
    await OrderBook(ledger_db).save(order, source="test")
    client = dev_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        env = {
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "REFUNDS_TASK_QUEUE": queue,
        }
        flags = ["--psp", "stripe", "--payment-id", payment, "--currency", "usd"]
        flags += ["--customer-id", "cus_cli", "--requested-by", "returns-desk"]
        flags += ["--order-id", order.order_id, "--line", "L2=1", "--refund-shipping"]
        flags += ["--reason", "product_unacceptable", "--request-id", f"rma-{order.order_id}"]
        started = await asyncio.to_thread(refunds, "start", *flags, "--wait", "--json", env=env)
        malformed = await asyncio.to_thread(refunds, "start", *flags, "--line", "L1", env=env)

    result = json.loads(started.stdout)
    # L2: 55.00 + 3.44 tax; shipping asked for: 12.00 + 0.75 tax.
    assert (result["status"], result["amount_refunded"]) == ("SUCCEEDED", 5844 + 1275), result
    assert malformed.returncode == 2
    assert "expected LINE=QUANTITY" in malformed.stderr
