"""Shared fixtures: real PostgreSQL, the real Temporal servers and the Stripe sandbox over HTTP."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiohttp import web
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from deploy.local.temporal_server import SEARCH_ATTRIBUTES, installed_binary
from deploy.sandboxes.stripe_sandbox import StripeSandbox
from tests.starters.cli_run import TEST_KEY, TEST_KEY_ID
from workers.codec import encrypted_converter
from workers.worker import ledger_pool
from workflows.search_attributes import ALL_KEYS


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The server every test database lives on; started once, stopped even when tests fail."""
    configured = os.environ.get("REFUNDS_DATABASE_URL")
    if configured:
        yield configured
        return
    import pgserver

    with tempfile.TemporaryDirectory(prefix="refunds-pg-") as data_dir:
        server = pgserver.get_server(data_dir, cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture
async def database_url(postgres_url: str) -> AsyncIterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"refunds_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield _with_database(postgres_url, name)
    finally:
        admin = await asyncpg.connect(postgres_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


# --- Temporal: the real time-skipping test server and the real dev server -----------------

# Every test's payloads are encrypted as production's are (tests/starters/cli_run.py).
TEST_CONVERTER = encrypted_converter([(TEST_KEY_ID, TEST_KEY)])


def _binary(name: str) -> str:
    path = installed_binary(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed: pip install -e '.[test]'")
    return path


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=TEST_CONVERTER,
        test_server_existing_path=_binary("temporal-test-server"),
    )
    kinds = {
        "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT,
        "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    }
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={name: kinds[kind] for name, kind in SEARCH_ATTRIBUTES.items()},
        )
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=TEST_CONVERTER,
        dev_server_existing_path=_binary("temporal"),
        search_attributes=ALL_KEYS,
        dev_server_log_level="error",
    )
    try:
        yield env
    finally:
        await env.shutdown()


# --- The Stripe sandbox (a real HTTP server the real SDK talks to) and a migrated ledger ---


@pytest.fixture(scope="session")
async def stripe_sandbox() -> AsyncIterator[StripeSandbox]:
    sandbox = StripeSandbox()
    await sandbox.start("127.0.0.1", 0)
    try:
        yield sandbox
    finally:
        await sandbox.stop()


@pytest.fixture
async def stripe_base(stripe_sandbox: StripeSandbox) -> AsyncIterator[str]:
    """The sandbox's URL, with no scripted faults left over from another test."""
    stripe_sandbox.faults.clear()
    yield stripe_sandbox.base_url
    stripe_sandbox.faults.clear()


@pytest.fixture
async def ledger_db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a fresh, migrated ledger database (the worker's own set-up)."""
    async with ledger_pool(database_url, max_size=12) as pool:
        yield pool


# --- A subscriber of our outbound events: a real HTTP server that keeps what it gets ---


@pytest.fixture
async def subscriber() -> AsyncIterator[tuple[str, list[web.Request], list[bytes]]]:
    requests: list[web.Request] = []
    bodies: list[bytes] = []

    async def receive(request: web.Request) -> web.Response:
        requests.append(request)
        bodies.append(await request.read())
        return web.Response(status=200)

    async def unavailable(_: web.Request) -> web.Response:
        return web.Response(status=503)

    app = web.Application()
    app.router.add_post("/hooks", receive)
    app.router.add_post("/down", unavailable)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", requests, bodies
    finally:
        await runner.cleanup()
