"""The API (and any routers) served by uvicorn on a free port, for the length of a test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter
from temporalio.client import Client

from starters.http_server import serve_http
from workers.settings import Settings


@asynccontextmanager
async def served_api(
    client: Client, settings: Settings, routers: Sequence[APIRouter] = ()
) -> AsyncIterator[str]:
    """Yield the base URL; the server stops (requests in flight finish) on the way out."""
    stop, up = asyncio.Event(), asyncio.Queue[str]()
    server = asyncio.create_task(
        serve_http(settings, client, stop, listening=up.put_nowait, routers=routers)
    )
    try:
        async with asyncio.timeout(10):
            base_url = await up.get()
        yield base_url
    finally:
        stop.set()
        await server
