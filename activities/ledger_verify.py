"""Verifying the books: what the ledger's constraints should have made impossible.

The schema refuses these states as they are written; verification finds them anyway when
something got past the constraints (a restore, a replica, a superuser with triggers off).
Each problem is one sentence that names the transfer or payment, for finance to read.
Foreign-currency refunds are also checked against their FX valuation (``fx_verify``).
"""

from __future__ import annotations

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from activities.fx_verify import find_fx_problems

_UNBALANCED = """
SELECT transfer_id, currency, sum(amount)::bigint AS total
FROM ledger_entries
GROUP BY transfer_id, currency
HAVING sum(amount) <> 0
ORDER BY transfer_id, currency
"""

_ORPHAN_ENTRIES = """
SELECT DISTINCT e.transfer_id
FROM ledger_entries e LEFT JOIN ledger_transfers t ON t.id = e.transfer_id
WHERE t.id IS NULL
ORDER BY e.transfer_id
"""

_ENTRIES_PER_TRANSFER = """
SELECT t.id, t.kind, t.debit_account, t.credit_account, t.amount, t.currency,
       count(e.id) AS entries,
       count(e.id) FILTER (WHERE e.account = t.debit_account AND e.amount = t.amount
                                 AND e.currency = t.currency) AS debits,
       count(e.id) FILTER (WHERE e.account = t.credit_account AND e.amount = -t.amount
                                 AND e.currency = t.currency) AS credits
FROM ledger_transfers t LEFT JOIN ledger_entries e ON e.transfer_id = t.id
GROUP BY t.id
ORDER BY t.id
"""

_RESOLUTIONS = """
SELECT r.id, r.kind, r.pending_id, r.amount, r.currency,
       p.id IS NOT NULL AS pending_exists, p.kind AS pending_kind, p.amount AS pending_amount,
       (r.payment_key IS DISTINCT FROM p.payment_key OR r.currency <> p.currency
        OR r.debit_account <> p.debit_account
        OR r.credit_account <> p.credit_account) AS differs
FROM ledger_transfers r LEFT JOIN ledger_transfers p ON p.id = r.pending_id
WHERE r.kind IN ('post', 'void') OR r.pending_id IS NOT NULL
ORDER BY r.id
"""

_TRANSFERS_VS_PAYMENTS = """
SELECT t.id, t.kind, t.payment_key, t.currency,
       p.payment_key IS NOT NULL AS payment_exists, p.currency AS payment_currency
FROM ledger_transfers t LEFT JOIN ledger_payments p ON p.payment_key = t.payment_key
WHERE t.payment_key IS NOT NULL
  AND (p.payment_key IS NULL OR (t.kind <> 'single' AND t.currency <> p.currency))
ORDER BY t.id
"""

_PAYMENT_COUNTERS = """
SELECT p.payment_key, p.currency, p.captured, p.reserved, p.refunded,
       coalesce(o.open_reserved, 0)::bigint AS open_reserved,
       coalesce(o.posted, 0)::bigint AS posted
FROM ledger_payments p
LEFT JOIN (
    SELECT t.payment_key,
           sum(t.amount) FILTER (
               WHERE t.kind = 'pending'
                 AND NOT EXISTS (SELECT 1 FROM ledger_transfers r WHERE r.pending_id = t.id)
           ) AS open_reserved,
           sum(t.amount) FILTER (WHERE t.kind = 'post') AS posted
    FROM ledger_transfers t
    GROUP BY t.payment_key
) o ON o.payment_key = p.payment_key
ORDER BY p.payment_key
"""


async def find_ledger_problems(
    conn: asyncpg.Connection | PoolConnectionProxy[asyncpg.Record],
) -> list[str]:
    """Every inconsistency in the books, in plain words; an empty list means they verify."""
    problems: list[str] = []
    # One snapshot, so a transfer committed half-way through cannot look inconsistent.
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        for row in await conn.fetch(_UNBALANCED):
            problems.append(
                f"transfer {row['transfer_id']} does not balance: its {row['currency']} "
                f"entries sum to {row['total']:+d}, not 0"
            )
        for row in await conn.fetch(_ORPHAN_ENTRIES):
            problems.append(
                f"entries belong to transfer {row['transfer_id']}, which does not exist"
            )
        for row in await conn.fetch(_ENTRIES_PER_TRANSFER):
            problems.extend(_entry_problems(row))
        for row in await conn.fetch(_RESOLUTIONS):
            problems.extend(_resolution_problems(row))
        for row in await conn.fetch(_TRANSFERS_VS_PAYMENTS):
            if not row["payment_exists"]:
                problems.append(
                    f"transfer {row['id']} ({row['kind']}) names payment "
                    f"{row['payment_key']}, which is not in the ledger"
                )
            else:
                problems.append(
                    f"transfer {row['id']} ({row['kind']}) is in {row['currency']} but "
                    f"payment {row['payment_key']} is in {row['payment_currency']}"
                )
        for row in await conn.fetch(_PAYMENT_COUNTERS):
            problems.extend(_payment_problems(row))
        problems.extend(await find_fx_problems(conn))
    return problems


def _entry_problems(row: asyncpg.Record) -> list[str]:
    name = f"transfer {row['id']} ({row['kind']})"
    if row["kind"] in ("pending", "void"):
        if row["entries"]:
            return [f"{name} has {row['entries']} entries, but reservations move no money"]
        return []
    if row["entries"] == 0:
        return [f"{name} is posted but has no entries"]
    if row["entries"] != 2 or row["debits"] != 1 or row["credits"] != 1:
        return [
            f"{name} has entries that are not its movement: expected "
            f"{row['debit_account']} +{row['amount']} and {row['credit_account']} "
            f"-{row['amount']} {row['currency']}, found {row['entries']} entries"
        ]
    return []


def _resolution_problems(row: asyncpg.Record) -> list[str]:
    name = f"transfer {row['id']} ({row['kind']})"
    if row["kind"] not in ("post", "void"):
        return [f"{name} names pending transfer {row['pending_id']}, but only posts and voids may"]
    if not row["pending_exists"]:
        return [f"{name} resolves pending transfer {row['pending_id']}, which does not exist"]
    if row["pending_kind"] != "pending":
        return [
            f"{name} resolves transfer {row['pending_id']}, which is a "
            f"{row['pending_kind']} transfer, not a pending one"
        ]
    problems: list[str] = []
    if row["differs"]:
        problems.append(
            f"{name} differs from its pending transfer {row['pending_id']} "
            "in payment, currency or accounts"
        )
    if row["kind"] == "post" and row["amount"] > row["pending_amount"]:
        problems.append(
            f"{name} posts {row['amount']} {row['currency']}, more than the "
            f"{row['pending_amount']} reserved by {row['pending_id']}"
        )
    if row["kind"] == "void" and row["amount"] != row["pending_amount"]:
        problems.append(
            f"{name} voids {row['amount']} {row['currency']}, not the "
            f"{row['pending_amount']} reserved by {row['pending_id']}"
        )
    return problems


def _payment_problems(row: asyncpg.Record) -> list[str]:
    name = f"payment {row['payment_key']}"
    currency = row["currency"]
    problems: list[str] = []
    if row["reserved"] != row["open_reserved"]:
        problems.append(
            f"{name}: reserved is {row['reserved']} {currency}, but its open pending "
            f"transfers add up to {row['open_reserved']}"
        )
    if row["refunded"] != row["posted"]:
        problems.append(
            f"{name}: refunded is {row['refunded']} {currency}, but its posted "
            f"transfers add up to {row['posted']}"
        )
    if row["reserved"] < 0 or row["refunded"] < 0:
        problems.append(
            f"{name}: reserved {row['reserved']} and refunded {row['refunded']} "
            "must not be negative"
        )
    if row["reserved"] + row["refunded"] > row["captured"]:
        problems.append(
            f"{name}: reserved {row['reserved']} plus refunded {row['refunded']} "
            f"exceed captured {row['captured']} {currency}"
        )
    if row["open_reserved"] + row["posted"] > row["captured"]:
        problems.append(
            f"{name}: its transfers reserve {row['open_reserved']} and refund "
            f"{row['posted']}, more than captured {row['captured']} {currency}"
        )
    return problems
