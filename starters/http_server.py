"""Serving the HTTP API with uvicorn inside a running event loop, until told to stop.

``serve_http`` is what ``refunds serve`` runs, and what ``refunds dev`` runs beside its
worker: it shares the caller's loop and Temporal client, listens on ``REFUNDS_HTTP_ADDRESS``
and, when ``stop`` is set, stops accepting connections and lets requests in flight finish
(for at most ``GRACE_S`` seconds). The caller owns the signal handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterator, Sequence

import uvicorn
from fastapi import APIRouter
from temporalio.client import Client

from activities.orders import OrderBook
from starters.http_api import create_app
from workers.settings import Settings, http_host_port

log = logging.getLogger("refunds.http")

GRACE_S = 30  # longer than any Temporal call a request makes (15 s)


class _Server(uvicorn.Server):
    """Stops when ``should_exit`` is set; leaves SIGINT/SIGTERM to the command."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.ready.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listen(address: str) -> socket.socket:
    """A listening socket on ``host:port``; OSError naming REFUNDS_HTTP_ADDRESS if it fails."""
    host, port = http_host_port(address)
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise OSError(f"cannot listen on {address} (REFUNDS_HTTP_ADDRESS): {why}") from exc


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve_http(
    settings: Settings,
    client: Client,
    stop: asyncio.Event,
    *,
    insecure_no_auth: bool = False,
    listening: Callable[[str], None] | None = None,
    routers: Sequence[APIRouter] = (),
    orders: OrderBook | None = None,
) -> None:
    """Serve the API on ``settings.http_address`` until ``stop`` is set.

    ``listening`` is called with the base URL once connections are accepted (with port 0,
    the one chosen). Without API tokens this refuses to run (SettingsError) unless
    ``insecure_no_auth``, which makes every caller the admin ``anonymous``. ``routers`` (the
    webhook receiver) are served on the same address; ``orders`` (the order store) serves
    ``POST /v1/refunds/quote``.
    """
    app = create_app(
        client, settings, allow_anonymous=insecure_no_auth, routers=routers, orders=orders
    )
    if insecure_no_auth and not settings.api_tokens:
        log.warning(
            "the HTTP API on %s has NO authentication (--insecure-no-auth): anyone who can "
            "reach it may start, approve and cancel refunds as admin 'anonymous'",
            settings.http_address,
        )
    sock = listen(settings.http_address)
    config = uvicorn.Config(
        app,
        log_config=None,
        lifespan="off",
        server_header=False,
        timeout_graceful_shutdown=GRACE_S,
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    ready = asyncio.create_task(server.ready.wait())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({serving, ready, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if server.ready.is_set() and listening is not None:
            listening(url_of(sock))
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ready.cancel()
        stopping.cancel()
        server.should_exit = True
        try:
            await serving
        finally:
            sock.close()
    if not (server.started or stop.is_set()):
        raise OSError(f"the HTTP API did not start on {settings.http_address}")
