"""The Adyen payment book: what Adyen's notifications said about each payment.

Adyen has no API to read a payment; real integrations keep what the notifications told them,
and so does this service. ``record`` is idempotent (the same item delivered twice changes
nothing) and order-tolerant: a payment's captured and refunded amounts, state and dispute flag
are recomputed from its modifications and chargebacks after every item, in one transaction.
The adapter also writes a modification as ``pending`` when Adyen answers ``received``, so a
refund is known before its REFUND notification comes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg

from activities.adyen_notifications import CHARGEBACK_EVENTS, AdyenNotification
from activities.errors import DatabaseUnavailable

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    _Conn = asyncpg.Connection | PoolConnectionProxy[asyncpg.Record]

# Notification event -> the kind of modification it settles.
_MODIFICATION_EVENTS = {
    "REFUND": "refund",
    "REFUND_FAILED": "refund",
    "REFUNDED_REVERSED": "refund",
    "CANCELLATION": "cancel",
    "CAPTURE": "capture",
}
_UNAVAILABLE = (OSError, asyncpg.exceptions.ConnectionDoesNotExistError, TimeoutError)


@dataclass(frozen=True)
class AdyenPayment:
    psp_reference: str
    merchant_account: str
    merchant_reference: str
    currency: str
    amount_authorised: int
    amount_captured: int
    amount_refunded: int
    state: str  # authorised | captured | canceled | refused
    disputed: bool
    shopper_reference: str | None
    authorised_at: datetime | None


@dataclass(frozen=True)
class AdyenModification:
    psp_reference: str
    payment_psp_reference: str
    kind: str  # refund | cancel | capture
    merchant_reference: str
    amount: int
    currency: str
    outcome: str  # pending | succeeded | failed
    reason: str | None


_UPSERT_MODIFICATION = """
INSERT INTO adyen_modifications AS m
    (psp_reference, payment_psp_reference, kind, merchant_reference, amount, currency, outcome,
     reason)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (psp_reference) DO UPDATE SET
    outcome = CASE
        -- a failure reported after the fact (REFUND_FAILED, REFUNDED_REVERSED) is final
        WHEN $9 THEN 'failed'
        -- a success or failure never returns to pending, and never undoes a later failure
        WHEN m.outcome = 'pending' THEN EXCLUDED.outcome
        ELSE m.outcome END,
    reason = CASE WHEN $9 OR m.outcome = 'pending' THEN EXCLUDED.reason ELSE m.reason END,
    merchant_reference = COALESCE(NULLIF(m.merchant_reference, ''), EXCLUDED.merchant_reference),
    updated_at = now()
"""

_REFRESH_PAYMENT = """
WITH sums AS (
    SELECT
        COALESCE(sum(amount) FILTER (WHERE kind = 'capture' AND outcome = 'succeeded'), 0)
            AS captured,
        COALESCE(sum(amount) FILTER (WHERE kind = 'refund' AND outcome = 'succeeded'), 0)
            AS refunded,
        bool_or(kind = 'cancel' AND outcome = 'succeeded') AS canceled
    FROM adyen_modifications WHERE payment_psp_reference = $1
)
UPDATE adyen_payments p SET
    amount_captured = sums.captured,
    amount_refunded = sums.refunded,
    state = CASE
        WHEN p.state = 'refused' THEN 'refused'
        WHEN COALESCE(sums.canceled, false) THEN 'canceled'
        WHEN sums.captured > 0 THEN 'captured'
        ELSE 'authorised' END,
    disputed = EXISTS (
        SELECT 1 FROM adyen_notifications_seen n
        WHERE n.payment_psp_reference = $1 AND n.event_code = ANY($2::text[])
    ),
    updated_at = now()
FROM sums WHERE p.psp_reference = $1
"""


class AdyenPaymentBook:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(self, item: AdyenNotification) -> None:
        """Keep what one verified notification item says; a repeat changes nothing."""
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                first_time = await conn.fetchval(
                    "INSERT INTO adyen_notifications_seen "
                    "(notification_id, event_code, psp_reference, payment_psp_reference) "
                    "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
                    item.notification_id,
                    item.event_code,
                    item.psp_reference,
                    item.payment_reference,
                )
                if not first_time:
                    return
                # One notification of a payment at a time: its totals are recomputed from
                # all of its modifications, and two at once would each miss the other's.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext('adyen:' || $1))",
                    item.payment_reference,
                )
                if item.event_code == "AUTHORISATION":
                    await _record_authorisation(conn, item)
                elif item.event_code in _MODIFICATION_EVENTS:
                    await _record_modification(conn, item)
                elif item.event_code not in CHARGEBACK_EVENTS:
                    return
                await conn.execute(
                    _REFRESH_PAYMENT, item.payment_reference, sorted(CHARGEBACK_EVENTS)
                )
        except _UNAVAILABLE as exc:
            raise DatabaseUnavailable(f"the Adyen payment book is unreachable: {exc}") from exc

    async def record_requested(
        self,
        *,
        psp_reference: str,
        payment_psp_reference: str,
        kind: str,
        merchant_reference: str,
        amount: int,
        currency: str,
    ) -> None:
        """A modification Adyen answered ``received``: pending until its notification."""
        try:
            await self._pool.execute(
                _UPSERT_MODIFICATION,
                psp_reference,
                payment_psp_reference,
                kind,
                merchant_reference,
                amount,
                currency.upper(),
                "pending",
                None,
                False,
            )
        except _UNAVAILABLE as exc:
            raise DatabaseUnavailable(f"the Adyen payment book is unreachable: {exc}") from exc

    async def payment(self, psp_reference: str) -> AdyenPayment | None:
        row = await self._fetch(
            "SELECT * FROM adyen_payments WHERE psp_reference = $1", [psp_reference]
        )
        if row is None:
            return None
        return AdyenPayment(**{k: row[k] for k in AdyenPayment.__dataclass_fields__})

    async def modification(self, psp_reference: str) -> AdyenModification | None:
        row = await self._fetch(
            "SELECT * FROM adyen_modifications WHERE psp_reference = $1", [psp_reference]
        )
        return _modification(row)

    async def modification_by_reference(
        self, payment_ref: str, merchant_reference: str
    ) -> AdyenModification | None:
        """The modification of ``payment_ref`` we made for our request ``merchant_reference``
        (the latest, should there be several)."""
        row = await self._fetch(
            "SELECT * FROM adyen_modifications "
            "WHERE payment_psp_reference = $1 AND merchant_reference = $2 "
            "ORDER BY updated_at DESC LIMIT 1",
            [payment_ref, merchant_reference],
        )
        return _modification(row)

    async def _fetch(self, query: str, args: list[object]) -> asyncpg.Record | None:
        try:
            return await self._pool.fetchrow(query, *args)
        except _UNAVAILABLE as exc:
            raise DatabaseUnavailable(f"the Adyen payment book is unreachable: {exc}") from exc


def _modification(row: asyncpg.Record | None) -> AdyenModification | None:
    if row is None:
        return None
    return AdyenModification(**{k: row[k] for k in AdyenModification.__dataclass_fields__})


async def _record_authorisation(conn: _Conn, item: AdyenNotification) -> None:
    await conn.execute(
        """
        INSERT INTO adyen_payments (psp_reference, merchant_account, merchant_reference,
            currency, amount_authorised, state, shopper_reference, authorised_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (psp_reference) DO UPDATE SET
            state = CASE WHEN EXCLUDED.state = 'refused' THEN adyen_payments.state
                         ELSE EXCLUDED.state END,
            amount_authorised = EXCLUDED.amount_authorised,
            authorised_at = EXCLUDED.authorised_at
        """,
        item.psp_reference,
        item.merchant_account,
        item.merchant_reference,
        item.currency,
        item.value,
        "authorised" if item.success else "refused",
        item.shopper_reference,
        item.event_date,
    )


async def _record_modification(conn: _Conn, item: AdyenNotification) -> None:
    undone = item.event_code in ("REFUND_FAILED", "REFUNDED_REVERSED")
    if undone and not item.success:
        return
    succeeded = item.success and not undone
    await conn.execute(
        _UPSERT_MODIFICATION,
        item.psp_reference,
        item.payment_reference,
        _MODIFICATION_EVENTS[item.event_code],
        item.merchant_reference,
        item.value,
        item.currency,
        "succeeded" if succeeded else "failed",
        None if succeeded else (item.reason or item.event_code),
        undone,
    )
