"""The ledger's SQL: transfer rows, insert-or-compare by id, and the database's refusals
translated into the error taxonomy.

    check ledger_payments_within_captured       -> OverRefund
    check ledger_transfers_post_within_pending  -> OverRefund
    check ledger_transfers_currency_of_payment  -> CurrencyMismatch
    check ledger_transfers_matches_pending      -> LedgerConflict
    unique ledger_transfers_resolved_once       -> LedgerConflict
    foreign key (unknown payment or pending)    -> LedgerConflict
    any other check (malformed arguments)       -> ValueError
    connection lost, refused, server shut down  -> DatabaseUnavailable (retryable)
"""

from __future__ import annotations

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from activities.errors import CurrencyMismatch, LedgerConflict, OverRefund, RefundError
from activities.ledger_models import Transfer

COLUMNS = (
    "id, kind, debit_account, credit_account, amount, currency, payment_key, pending_id, refund_id"
)
_INSERT = f"""
INSERT INTO ledger_transfers ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (id) DO NOTHING
RETURNING {COLUMNS}
"""
UNAVAILABLE = (
    OSError,  # refused, reset, timed out (TimeoutError is an OSError)
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    # Transient by nature: the same call succeeds when tried again.
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
)
_REFUSALS: dict[str, type[RefundError]] = {
    "ledger_payments_within_captured": OverRefund,
    "ledger_transfers_post_within_pending": OverRefund,
    "ledger_transfers_currency_of_payment": CurrencyMismatch,
    "ledger_transfers_matches_pending": LedgerConflict,
    "ledger_transfers_resolved_once": LedgerConflict,
}


async def fetch_transfer(
    conn: PoolConnectionProxy[asyncpg.Record], transfer_id: str
) -> Transfer | None:
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM ledger_transfers WHERE id = $1", transfer_id)
    return None if row is None else transfer_from_row(row)


async def insert_transfer(
    conn: PoolConnectionProxy[asyncpg.Record], intended: Transfer
) -> Transfer:
    row = await conn.fetchrow(
        _INSERT,
        intended.id,
        intended.kind,
        intended.debit_account,
        intended.credit_account,
        intended.amount,
        intended.currency,
        intended.payment_key,
        intended.pending_id,
        intended.refund_id,
    )
    if row is not None:
        return transfer_from_row(row)
    # Another caller inserted the same id between our look-up and our insert.
    existing = await fetch_transfer(conn, intended.id)
    if existing is None:  # ON CONFLICT skipped a row this snapshot cannot see: never, in practice
        raise LedgerConflict(f"transfer {intended.id} conflicted but cannot be found")
    return same_or_conflict(existing, intended)


def same_or_conflict(existing: Transfer, intended: Transfer) -> Transfer:
    if existing == intended:
        return existing
    differing = [
        f"{field} {getattr(existing, field)!r} (asked {getattr(intended, field)!r})"
        for field in Transfer.__dataclass_fields__
        if getattr(existing, field) != getattr(intended, field)
    ]
    raise LedgerConflict(
        f"transfer id {existing.id} is already used with other fields: " + ", ".join(differing)
    )


def refusal_of(exc: asyncpg.IntegrityConstraintViolationError) -> Exception | None:
    error_class = _REFUSALS.get(exc.constraint_name or "")
    if error_class is not None:
        return error_class(exc.message)
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return LedgerConflict(f"the ledger refused the transfer: {exc.message} ({exc.detail})")
    if isinstance(exc, asyncpg.CheckViolationError):
        # The arguments themselves are malformed (an account name, an empty id): a bug in
        # the caller, not a state of the books.
        return ValueError(f"the ledger refused the arguments: {exc.message}")
    return None


def transfer_from_row(row: asyncpg.Record) -> Transfer:
    return Transfer(**dict(row.items()))
