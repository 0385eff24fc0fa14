"""Disputed payments, as the providers' webhooks reported them (migration 0003)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from temporalio import activity

from workflows.models import RecordDispute


class DisputeRegistry:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def mark(self, payment_key: str, dispute_id: str) -> None:
        await self._pool.execute(
            "INSERT INTO disputed_payments (payment_key, dispute_id) VALUES ($1, $2) "
            "ON CONFLICT (payment_key) DO NOTHING",
            payment_key,
            dispute_id,
        )

    async def dispute_of(
        self, payment_key: str, conn: PoolConnectionProxy[asyncpg.Record] | None = None
    ) -> str | None:
        """The dispute of the payment, if any; on ``conn`` when given (a caller's transaction
        must not wait for a second connection of the pool it may have exhausted)."""
        found: str | None = await (conn or self._pool).fetchval(
            "SELECT dispute_id FROM disputed_payments WHERE payment_key = $1", payment_key
        )
        return found


class DisputeActivities:
    def __init__(self, registry: DisputeRegistry) -> None:
        self._registry = registry

    @activity.defn(name="record_dispute")
    async def record_dispute(self, dispute: RecordDispute) -> None:
        for payment_key in dispute.payment_keys:
            await self._registry.mark(payment_key, dispute.dispute_id)

    def all(self) -> list[Callable[..., Any]]:
        return [self.record_dispute]
