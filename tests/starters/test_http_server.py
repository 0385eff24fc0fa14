"""`serve_http`: stopping is graceful, and an address in use is one clear error."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from starters.http_server import serve_http
from tests.starters.test_http_api import RITA, TOKENS
from workers.settings import Settings, parse_api_tokens


async def test_stopping_lets_a_request_in_flight_finish_then_refuses_new_ones(
    dev_env: WorkflowEnvironment,
) -> None:
    settings = Settings(
        http_address="127.0.0.1:0", api_tokens=parse_api_tokens(TOKENS, "REFUNDS_API_TOKENS")
    )
    stop = asyncio.Event()
    listening = asyncio.Event()
    urls: list[str] = []

    def ready(url: str) -> None:
        urls.append(url)
        listening.set()

    server = asyncio.create_task(serve_http(settings, dev_env.client, stop, listening=ready))
    await asyncio.wait_for(listening.wait(), 10)

    async def slow_body() -> AsyncIterator[bytes]:
        yield b"{"
        stop.set()  # Ctrl-C while this request is still arriving
        await asyncio.sleep(0.5)
        yield b"}"

    async with httpx.AsyncClient(base_url=urls[0]) as http:
        in_flight = await http.post(
            "/v1/refunds/rma-unknown/cancel",
            content=slow_body(),
            headers=RITA | {"Content-Type": "application/json"},
        )
    await asyncio.wait_for(server, 10)
    async with httpx.AsyncClient(base_url=urls[0]) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/openapi.json")

    assert in_flight.status_code == 404, in_flight.text


async def test_a_busy_address_is_one_clear_error(dev_env: WorkflowEnvironment) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        settings = Settings(
            http_address=f"127.0.0.1:{port}",
            api_tokens=parse_api_tokens(TOKENS, "REFUNDS_API_TOKENS"),
        )
        with pytest.raises(OSError, match=rf"cannot listen on 127.0.0.1:{port} \(REFUNDS_HTTP"):
            await serve_http(settings, dev_env.client, asyncio.Event())
