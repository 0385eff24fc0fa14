"""The double-entry ledger in PostgreSQL (vocabulary of TigerBeetle and Formance).

A refund reserves its amount with a pending transfer against the payment's refund limit,
then posts it (money moves: two entries) or voids it (the reservation is released).
Transfer ids are idempotency keys: the same id with the same fields is the transfer that
already exists; with other fields it is a `LedgerConflict`. The schema
(`deploy/migrations/0001_ledger.sql`) keeps reserved + refunded <= captured and every
transfer balanced under any concurrency; this module asks, and `ledger_sql` translates the
database's refusals into the error taxonomy.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from activities.errors import CurrencyMismatch, DatabaseUnavailable, LedgerConflict
from activities.ledger_models import AccountBalance, PaymentPosition, Transfer, TransferKind
from activities.ledger_sql import (
    COLUMNS,
    UNAVAILABLE,
    fetch_transfer,
    insert_transfer,
    refusal_of,
    same_or_conflict,
    transfer_from_row,
)
from activities.ledger_verify import find_ledger_problems

__all__ = ["AccountBalance", "Ledger", "PaymentPosition", "Transfer", "TransferKind"]

_CURRENCY = re.compile(r"^[A-Z]{3}$")

Connection: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"
Within: TypeAlias = Callable[[Connection], Awaitable[None]]


class Ledger:
    def __init__(self, pool: asyncpg.Pool[asyncpg.Record]) -> None:
        self._pool = pool

    async def reserve(
        self,
        *,
        transfer_id: str,
        refund_id: str,
        payment_key: str,
        captured: int,
        currency: str,
        amount: int,
        debit_account: str,
        credit_account: str,
        within: Within | None = None,
    ) -> Transfer:
        """Reserve `amount` of the payment's refund limit with a pending transfer.

        ``within`` runs in the same transaction, with the payment's row locked, before the
        reservation is written (the refund policy's count, the order units a return claims):
        what it raises undoes everything. A reservation that exists already is returned as is.
        """
        if captured < 0:
            raise ValueError(f"captured must not be negative, got {captured}")
        intended = Transfer(
            id=transfer_id,
            kind="pending",
            debit_account=debit_account,
            credit_account=credit_account,
            amount=amount,
            currency=_currency(currency),
            payment_key=payment_key,
            refund_id=refund_id,
        )
        async with self._transaction() as conn:
            existing = await fetch_transfer(conn, transfer_id)
            if existing is not None:
                return same_or_conflict(existing, intended)
            await conn.execute(
                "INSERT INTO ledger_payments (payment_key, currency, captured) "
                "VALUES ($1, $2, $3) ON CONFLICT (payment_key) DO NOTHING",
                payment_key,
                intended.currency,
                captured,
            )
            payment_currency = await conn.fetchval(
                "SELECT currency FROM ledger_payments WHERE payment_key = $1", payment_key
            )
            if payment_currency != intended.currency:
                raise CurrencyMismatch(
                    f"payment {payment_key} is in {payment_currency}; "
                    f"refund {refund_id} asks for {intended.currency}"
                )
            if within is not None:
                # NO KEY UPDATE like the reservation's own trigger: concurrent reservations of
                # one payment run their checks one after another.
                await conn.execute(
                    "SELECT 1 FROM ledger_payments WHERE payment_key = $1 FOR NO KEY UPDATE",
                    payment_key,
                )
                await within(conn)
            return await insert_transfer(conn, intended)

    async def post(
        self, *, transfer_id: str, pending_id: str, amount: int | None = None
    ) -> Transfer:
        """Move the reserved money (all of it, or a smaller `amount`)."""
        return await self._resolve(transfer_id, pending_id, "post", amount)

    async def void(self, *, transfer_id: str, pending_id: str) -> Transfer:
        """Release the reservation; no money moves."""
        return await self._resolve(transfer_id, pending_id, "void", None)

    async def transfer(
        self,
        *,
        transfer_id: str,
        debit_account: str,
        credit_account: str,
        amount: int,
        currency: str,
        payment_key: str | None = None,
        refund_id: str | None = None,
    ) -> Transfer:
        """A one-phase transfer (a correction, a fee, an FX difference). It names a payment
        for lookups only: it is outside the payment's refund limit."""
        intended = Transfer(
            id=transfer_id,
            kind="single",
            debit_account=debit_account,
            credit_account=credit_account,
            amount=amount,
            currency=_currency(currency),
            payment_key=payment_key,
            refund_id=refund_id,
        )
        async with self._transaction() as conn:
            return await insert_transfer(conn, intended)

    async def live_refunds(self, conn: Connection, payment_key: str, besides: str) -> int:
        """How many refunds of the payment are reserved or posted, other than ``besides``."""
        count: int = await conn.fetchval(
            "SELECT count(*) FROM ledger_transfers t WHERE t.payment_key = $1 "
            "AND t.kind = 'pending' AND t.refund_id IS DISTINCT FROM $2 AND NOT EXISTS "
            "(SELECT 1 FROM ledger_transfers v WHERE v.pending_id = t.id AND v.kind = 'void')",
            payment_key,
            besides,
        )
        return count

    async def payment_position(self, payment_key: str) -> PaymentPosition | None:
        async with self._transaction() as conn:
            row = await conn.fetchrow(
                "SELECT payment_key, currency, captured, reserved, refunded "
                "FROM ledger_payments WHERE payment_key = $1",
                payment_key,
            )
        return None if row is None else PaymentPosition(**dict(row.items()))

    async def transfers_for_refund(self, refund_id: str) -> list[Transfer]:
        async with self._transaction() as conn:
            rows = await conn.fetch(
                f"SELECT {COLUMNS} FROM ledger_transfers WHERE refund_id = $1 "
                "ORDER BY created_at, id",
                refund_id,
            )
        return [transfer_from_row(row) for row in rows]

    async def balances(self) -> list[AccountBalance]:
        """Every account's balance per currency (debit +, credit -); they sum to zero."""
        async with self._transaction() as conn:
            rows = await conn.fetch(
                "SELECT account, currency, balance FROM ledger_balances ORDER BY account, currency"
            )
        return [AccountBalance(**dict(row.items())) for row in rows]

    async def verify(self) -> list[str]:
        """The books' problems in plain words; an empty list means they verify."""
        async with self._connection() as conn:
            return await find_ledger_problems(conn)

    async def _resolve(
        self, transfer_id: str, pending_id: str, kind: TransferKind, amount: int | None
    ) -> Transfer:
        async with self._transaction() as conn:
            pending = await fetch_transfer(conn, pending_id)
            if pending is None or pending.kind != "pending":
                raise LedgerConflict(
                    f"cannot {kind} {transfer_id}: {pending_id} is not a pending transfer"
                )
            intended = Transfer(
                id=transfer_id,
                kind=kind,
                debit_account=pending.debit_account,
                credit_account=pending.credit_account,
                amount=pending.amount if amount is None else amount,
                currency=pending.currency,
                payment_key=pending.payment_key,
                pending_id=pending_id,
                refund_id=pending.refund_id,
            )
            existing = await fetch_transfer(conn, transfer_id)
            if existing is not None:
                return same_or_conflict(existing, intended)
            resolution = await conn.fetchrow(
                "SELECT id, kind FROM ledger_transfers WHERE pending_id = $1", pending_id
            )
            if resolution is not None:
                raise LedgerConflict(
                    f"cannot {kind} pending transfer {pending_id} with {transfer_id}: it was "
                    f"already resolved by {resolution['kind']} {resolution['id']}"
                )
            return await insert_transfer(conn, intended)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[PoolConnectionProxy[asyncpg.Record]]:
        try:
            async with self._pool.acquire() as conn:
                yield conn
        except UNAVAILABLE as exc:
            raise DatabaseUnavailable(f"the ledger database is unavailable: {exc}") from exc
        except asyncpg.IntegrityConstraintViolationError as exc:
            refusal = refusal_of(exc)
            if refusal is None:
                raise
            raise refusal from exc

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[PoolConnectionProxy[asyncpg.Record]]:
        async with self._connection() as conn, conn.transaction():
            yield conn


def _currency(currency: str) -> str:
    code = currency.upper()
    if not _CURRENCY.match(code):
        raise ValueError(f"not an ISO 4217 currency code: {currency!r}")
    return code
