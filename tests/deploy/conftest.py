"""Provider sandbox fixtures: a fresh Stripe sandbox per test, the real SDK aimed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import stripe

from deploy.sandboxes.stripe_sandbox import StripeSandbox
from deploy.sandboxes.stripe_shop import shop_client

RAW_KEY = "sk_test_raw_http"


@pytest.fixture
async def sandbox() -> AsyncIterator[StripeSandbox]:
    """Its own server on a free port, stopped even when the test fails."""
    box = StripeSandbox(pending_refund_seconds=0.3)
    await box.start("127.0.0.1", 0)
    try:
        yield box
    finally:
        await box.stop()


@pytest.fixture
async def http_client() -> AsyncIterator[stripe.HTTPXClient]:
    """The SDK's httpx transport, closed after the test so no connection pool is left open."""
    client = stripe.HTTPXClient()
    try:
        yield client
    finally:
        await client.close_async()  # type: ignore[no-untyped-call]


@pytest.fixture
def shop(sandbox: StripeSandbox, http_client: stripe.HTTPXClient) -> stripe.StripeClient:
    """The real SDK, as a shop (or the refund service) would configure it: no SDK retries."""
    return shop_client(sandbox.base_url, http_client=http_client)


@pytest.fixture
async def raw(sandbox: StripeSandbox) -> AsyncIterator[httpx.AsyncClient]:
    """Plain HTTP, for what the SDK hides: headers, exact bytes, the /_sandbox controls."""
    headers = {"Authorization": f"Bearer {RAW_KEY}"}
    async with httpx.AsyncClient(base_url=sandbox.base_url, headers=headers) as client:
        yield client
