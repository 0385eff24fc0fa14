"""Refunds in a foreign currency, valued in the merchant's settlement currency.

A refund goes back in the payment's own currency, as a share of what was paid, and is never
re-converted: its ledger transfers (``refund-{id}:reserve`` / ``:post``) stay in that
currency. Beside them the ledger books, in the settlement currency and as ordinary one-phase
transfers (so each stays single-currency and balanced):

    refund-{id}:value   merchant:refunds -> psp:{psp}:clearing, the refund at the value it
                        was booked in at capture: Vc = amount x capture rate
    refund-{id}:fx      |Vr - Vc|, Vr = amount x refund rate, between merchant:fx_gain_loss
                        and psp:{psp}:clearing: Vr > Vc is a loss (fx_gain_loss debited),
                        Vr < Vc a gain (credited); none when they are equal

and one ``fx_movements`` row with both rates and values, written in the same transaction.
A late failure books both back (``:value-back``, ``:fx-back``). Rates are the provider's
where it tells one (Stripe's balance transaction), otherwise the ``fx_rates`` table's.
With no settlement currency configured nothing is valued: every currency stands alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from activities.errors import DatabaseUnavailable, ExchangeRateMissing, LedgerConflict
from activities.fx_rates import Connection, newest_rate
from activities.ledger_models import Transfer
from activities.ledger_sql import UNAVAILABLE, fetch_transfer, insert_transfer, refusal_of
from activities.transfer_ids import back_id, fx_id, post_id, value_id
from workflows.currencies import MINOR_UNITS
from workflows.models import PaymentSnapshot, PaymentState, ProviderRate
from workflows.orders import MAX_AMOUNT as MAX_VALUE

FX_ACCOUNT = "merchant:fx_gain_loss"
REFUNDS_ACCOUNT = "merchant:refunds"
NO_RATE_AT_REFUND = "capture (no rate at refund)"


def clearing_account(psp: str) -> str:
    return f"psp:{psp}:clearing"


def settlement_value(amount: int, currency: str, rate: Decimal, settlement_currency: str) -> int:
    """``amount`` (minor units of ``currency``) times ``rate``, in minor units of
    ``settlement_currency``, rounded half up (away from zero): Decimal only, never float."""
    if not isinstance(rate, Decimal) or not rate.is_finite() or rate <= 0:
        raise ValueError(f"an exchange rate is a Decimal above 0, got {rate!r}")
    exponents = [MINOR_UNITS.get(code.upper()) for code in (currency, settlement_currency)]
    if exponents[0] is None or exponents[1] is None:
        raise ValueError(f"unknown currency in {currency}/{settlement_currency}")
    with localcontext(prec=80):  # exact: amounts and rates are far below 80 digits
        value = Decimal(amount).scaleb(exponents[1] - exponents[0]) * rate
        return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


class FxBook:
    """Values foreign-currency refunds in ``settlement_currency`` (None: values nothing)."""

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record], settlement_currency: str | None) -> None:
        self._pool = pool
        self.settlement_currency = settlement_currency.upper() if settlement_currency else None

    async def value_at_capture(self, refund_id: str, payment: PaymentSnapshot) -> None:
        """Record the rate the payment was captured at, for refund ``refund_id`` (once: a
        second call keeps the first). Raises ``ExchangeRateMissing`` when neither the
        provider nor the rates table has one."""
        async with self._transaction() as conn:
            await self.value_on(conn, refund_id, payment)

    async def value_on(self, conn: Connection, refund_id: str, payment: PaymentSnapshot) -> None:
        """``value_at_capture`` inside the caller's transaction (the refund's reservation, so
        a refused reservation leaves no valuation). A payment is valued once: every refund of
        it reuses the rate its first refund was valued at, whatever the table learns later."""
        settlement, currency = self.settlement_currency, payment.currency.upper()
        if settlement is None or currency == settlement:
            return
        if payment.state is not PaymentState.CAPTURED:
            return  # an authorisation is voided, never converted: nothing to value
        at = _aware(payment.captured_at or payment.created or datetime.now(UTC))
        if await conn.fetchval("SELECT 1 FROM fx_valuations WHERE refund_id = $1", refund_id):
            return
        earlier = await conn.fetchrow(
            "SELECT capture_rate, capture_rate_source FROM fx_valuations "
            "WHERE payment_key = $1 AND settlement_currency = $2 ORDER BY created_at LIMIT 1",
            payment.payment_key,
            settlement,
        )
        told = payment.settlement_rate
        if earlier is not None:
            rate, source = earlier["capture_rate"], earlier["capture_rate_source"]
        elif told is not None and told.settlement_currency.upper() == settlement:
            rate, source = told.rate, "provider"
        else:
            found = await newest_rate(conn, currency, settlement, at)
            if found is None:
                raise ExchangeRateMissing(
                    f"no {currency}/{settlement} exchange rate valid on {at:%Y-%m-%d %H:%M} "
                    f"UTC to value payment {payment.payment_key} in {settlement}: the "
                    f"provider told none; add one with `refunds fx import`"
                )
            rate, source = found.rate, "table"
        await conn.execute(
            "INSERT INTO fx_valuations (refund_id, payment_key, currency, "
            "settlement_currency, capture_rate, capture_rate_source, captured_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (refund_id) DO NOTHING",
            refund_id,
            payment.payment_key,
            currency,
            settlement,
            rate,
            source,
            at,
        )

    async def book_refund(
        self, refund_id: str, psp: str, amount: int, refund_rate: ProviderRate | None
    ) -> None:
        """Book the posted refund's value and FX difference in the settlement currency, with
        its ``fx_movements`` row, in one transaction. Nothing when the refund was not valued
        at capture; nothing again once booked. Never refuses for want of a rate: the money
        has already moved (with no rate at refund, the capture rate values it)."""
        async with self._transaction() as conn:
            valuation = await conn.fetchrow(
                "SELECT currency, settlement_currency, capture_rate FROM fx_valuations "
                "WHERE refund_id = $1 FOR UPDATE",
                refund_id,
            )
            if valuation is None:
                return
            posted_id = post_id(refund_id)
            if await conn.fetchval("SELECT 1 FROM fx_movements WHERE transfer_id = $1", posted_id):
                return
            currency, settlement = valuation["currency"], valuation["settlement_currency"]
            capture_rate: Decimal = valuation["capture_rate"]
            posted = await fetch_transfer(conn, posted_id)
            debit, credit = REFUNDS_ACCOUNT, clearing_account(psp)
            if posted is None or posted.kind != "post":
                raise LedgerConflict(f"refund {refund_id} has no posted transfer {posted_id}")
            if (posted.amount, posted.currency) != (amount, currency) or (
                posted.debit_account,
                posted.credit_account,
            ) != (debit, credit):
                raise LedgerConflict(
                    f"{posted_id} posted {posted.amount} {posted.currency} from "
                    f"{posted.debit_account} to {posted.credit_account}; asked to value "
                    f"{amount} {currency} from {debit} to {credit}"
                )
            if refund_rate is not None and refund_rate.settlement_currency.upper() == settlement:
                rate, source = refund_rate.rate, "provider"
            else:
                found = await newest_rate(conn, currency, settlement, datetime.now(UTC))
                rate, source = (found.rate, "table") if found else (capture_rate, NO_RATE_AT_REFUND)
            at_capture = settlement_value(amount, currency, capture_rate, settlement)
            at_refund = settlement_value(amount, currency, rate, settlement)
            if max(at_capture, at_refund) > MAX_VALUE:
                raise LedgerConflict(
                    f"refund {refund_id}: {amount} {currency} at {capture_rate} or {rate} is "
                    f"worth more than any payment in {settlement}; a rate is wrong"
                )
            difference = at_refund - at_capture
            for transfer in _valuation_transfers(
                refund_id, posted, settlement, at_capture, difference
            ):
                await insert_transfer(conn, transfer)
            await conn.execute(
                "INSERT INTO fx_movements (transfer_id, refund_id, currency, amount, "
                "settlement_currency, capture_rate, value_at_capture, refund_rate, "
                "refund_rate_source, value_at_refund, fx_difference) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                posted_id,
                refund_id,
                currency,
                amount,
                settlement,
                capture_rate,
                at_capture,
                rate,
                source,
                at_refund,
                difference,
            )

    async def book_back(self, refund_id: str) -> None:
        """A posted refund the provider failed later: reverse its ``:value`` and ``:fx``
        transfers (accounts swapped, ids ``:value-back``, ``:fx-back``) where they exist."""
        async with self._transaction() as conn:
            for original_id in (value_id(refund_id), fx_id(refund_id)):
                original = await fetch_transfer(conn, original_id)
                if original is None:
                    continue
                await insert_transfer(
                    conn,
                    Transfer(
                        id=back_id(original_id),
                        kind="single",
                        debit_account=original.credit_account,
                        credit_account=original.debit_account,
                        amount=original.amount,
                        currency=original.currency,
                        payment_key=original.payment_key,
                        refund_id=refund_id,
                    ),
                )

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[PoolConnectionProxy[asyncpg.Record]]:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                yield conn
        except UNAVAILABLE as exc:
            raise DatabaseUnavailable(f"the ledger database is unavailable: {exc}") from exc
        except asyncpg.IntegrityConstraintViolationError as exc:
            refusal = refusal_of(exc)
            if refusal is None:
                raise
            raise refusal from exc


def _valuation_transfers(
    refund_id: str, posted: Transfer, settlement: str, at_capture: int, difference: int
) -> list[Transfer]:
    """The ``:value`` and ``:fx`` transfers of a posted refund, in the settlement currency."""
    debit, credit = posted.debit_account, posted.credit_account
    legs = [(value_id(refund_id), debit, credit, at_capture)]
    if difference > 0:  # paid out more than it was worth at capture: a loss
        legs.append((fx_id(refund_id), FX_ACCOUNT, credit, difference))
    elif difference < 0:
        legs.append((fx_id(refund_id), credit, FX_ACCOUNT, -difference))
    return [
        Transfer(
            id=transfer_id,
            kind="single",
            debit_account=debit_account,
            credit_account=credit_account,
            amount=value,
            currency=settlement,
            payment_key=posted.payment_key,
            refund_id=refund_id,
        )
        for transfer_id, debit_account, credit_account, value in legs
        if value > 0
    ]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
