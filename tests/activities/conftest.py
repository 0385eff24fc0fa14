"""Ledger fixtures: a migrated database per test, a pool, and a way to plant corruption."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from activities.ledger import Ledger
from deploy.migrations import migrate


@pytest.fixture
async def ledger_pool(database_url: str) -> AsyncIterator[asyncpg.Pool[asyncpg.Record]]:
    await migrate(database_url)
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=12)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def ledger(ledger_pool: asyncpg.Pool[asyncpg.Record]) -> Ledger:
    return Ledger(ledger_pool)


@pytest.fixture
async def tamper(
    ledger_pool: asyncpg.Pool[asyncpg.Record], database_url: str
) -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    """A superuser session with triggers and foreign keys off: writes what the schema refuses."""
    conn: asyncpg.Connection[asyncpg.Record] = await asyncpg.connect(database_url)
    try:
        if not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
            pytest.skip("planting corruption needs a superuser (session_replication_role)")
        await conn.execute("SET session_replication_role = replica")
        yield conn
    finally:
        await conn.close()
