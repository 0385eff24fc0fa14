"""The review queue from Temporal visibility (dev server), and decisions through the CLI."""

from __future__ import annotations

import asyncio
import json

import asyncpg
from temporalio.testing import WorkflowEnvironment

from starters.client import start_refund
from tests.starters.cli_run import refunds
from tests.support.stack import running_worker
from tests.workflows.review_support import paid, reach
from tests.workflows.test_refund_paths import refund_request
from workflows.models import RefundStatus


async def queue_of(env: dict[str, str], want: set[str]) -> list[dict[str, object]]:
    """`refunds reviews --json`, once visibility shows the refunds in ``want``."""
    async with asyncio.timeout(20):
        while True:
            answer = await asyncio.to_thread(refunds, "reviews", "--json", env=env)
            assert answer.returncode == 0, answer.stderr
            rows: list[dict[str, object]] = json.loads(answer.stdout)["reviews"]
            if want <= {str(row["request_id"]) for row in rows}:
                return rows
            await asyncio.sleep(0.3)


async def test_the_queue_lists_flagged_refunds_and_the_cli_decides_them(
    dev_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    client = dev_env.client
    big = refund_request(await paid(stripe_base, 90_000), requested_by="sam")
    risky = refund_request(
        await paid(stripe_base, 70_000), reason="product_not_received", requested_by="sam"
    )
    async with running_worker(client, ledger_db, stripe_base) as queue:
        env = {
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "REFUNDS_TASK_QUEUE": queue,
        }
        handles = [await start_refund(client, r, queue) for r in (big, risky)]
        for handle in handles:
            await reach(handle, RefundStatus.AWAITING_REVIEW)
        rows = await queue_of(env, {big.request_id, risky.request_id})
        by_risk = await asyncio.to_thread(refunds, "reviews", "--sort", "risk", env=env)

        mine = [row for row in rows if row["request_id"] in (big.request_id, risky.request_id)]
        assert {row["amount"] for row in mine} == {90_000, 70_000}
        assert all(row["reasons"] and row["deadline"] for row in mine)
        text = by_risk.stdout
        assert text.index(risky.request_id) < text.index(big.request_id), "riskiest first"
        assert "product_not_received" in text

        own = await asyncio.to_thread(
            refunds, "approve", big.request_id, "--reviewer", "sam", env=env
        )
        assert own.returncode == 1
        assert "approval refused: sam requested this refund, so cannot approve it" in own.stderr
        ok = await asyncio.to_thread(
            refunds, "approve", big.request_id, "--reviewer", "rita", "--note", "ok", env=env
        )
        assert ok.returncode == 0, ok.stderr
        no = await asyncio.to_thread(
            refunds,
            "reject",
            risky.request_id,
            "--reviewer",
            "rita",
            "--reason",
            "no proof",
            env=env,
        )
        assert no.returncode == 0, no.stderr
        results = [await handle.result() for handle in handles]
        late = await asyncio.to_thread(
            refunds, "approve", risky.request_id, "--reviewer", "tom", env=env
        )

    assert [r.status for r in results] == [RefundStatus.SUCCEEDED, RefundStatus.REJECTED]
    assert late.returncode == 1
    assert "approval refused: the refund has ended (REJECTED)" in late.stderr
