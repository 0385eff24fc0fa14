"""Schema-driven: schemathesis generates requests from the API's own OpenAPI document and no
answer may be a 5xx (the real app, a worker, the dev server, the Stripe sandbox)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import asyncpg
from temporalio.testing import WorkflowEnvironment

from starters.webhooks import webhook_router
from tests.support.http import served_api
from tests.support.stack import running_worker
from workers.settings import Settings, parse_api_tokens


async def test_no_generated_request_gets_a_server_error(
    dev_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    client = dev_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        settings = Settings(
            task_queue=queue,
            http_address="127.0.0.1:0",
            api_tokens=parse_api_tokens("t-admin:admin:ops", "REFUNDS_API_TOKENS"),
        )
        routers = [webhook_router(client, queue, ["whsec_schema"], ["shop_schema"])]
        async with served_api(client, settings, routers) as base_url:
            run = await asyncio.to_thread(
                subprocess.run,
                [
                    sys.executable,
                    "-m",
                    "schemathesis.cli",
                    "run",
                    f"{base_url}/openapi.json",
                    "--checks",
                    "not_a_server_error",
                    "-H",
                    "Authorization: Bearer t-admin",
                    "--max-examples",
                    "15",
                    "--seed",
                    "1",
                    "--request-timeout",
                    "20",
                    "--phases",
                    "examples,coverage,fuzzing",
                ],
                capture_output=True,
                text=True,
                timeout=240,
            )

    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "Tested: 8" in run.stdout, run.stdout[-2000:]  # every operation was exercised
