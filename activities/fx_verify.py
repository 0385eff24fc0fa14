"""Verifying the FX valuation of refunds: each ``fx_movements`` row against its transfers.

A movement says what was refunded (its post transfer, in the payment's currency), at which
rates, and what that was worth in the settlement currency at capture and at refund. Its
``refund-{id}:value`` transfer must carry the value at capture on the post's accounts, its
``:fx`` transfer the difference in the right direction (none when there is none), and a late
failure that booked the refund back must have booked these back too. Each problem is one
sentence naming the refund. Called inside ``find_ledger_problems``' snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from activities.fx import FX_ACCOUNT, settlement_value
from activities.ledger_models import Transfer
from activities.ledger_sql import COLUMNS, transfer_from_row
from activities.transfer_ids import back_id, fx_id, value_id

_MOVEMENTS = """
SELECT m.transfer_id, m.refund_id, m.currency, m.amount, m.settlement_currency,
       m.capture_rate, m.value_at_capture, m.refund_rate, m.value_at_refund, m.fx_difference,
       p.kind AS post_kind, p.amount AS post_amount, p.currency AS post_currency,
       p.debit_account, p.credit_account,
       v.refund_id IS NOT NULL AS valued, v.currency AS valued_currency,
       v.settlement_currency AS valued_settlement, v.capture_rate AS valued_rate
FROM fx_movements m
LEFT JOIN ledger_transfers p ON p.id = m.transfer_id
LEFT JOIN fx_valuations v ON v.refund_id = m.refund_id
ORDER BY m.refund_id
"""

# Valuation transfers (``refund-{id}:value``, ``:fx`` and their ``-back``) and late failures.
_FX_TRANSFERS = f"""
SELECT {COLUMNS} FROM ledger_transfers t
WHERE t.refund_id IS NOT NULL
  AND t.id IN ('refund-' || t.refund_id || ':value', 'refund-' || t.refund_id || ':fx',
               'refund-' || t.refund_id || ':value-back', 'refund-' || t.refund_id || ':fx-back',
               'refund-' || t.refund_id || ':late-failure')
ORDER BY t.id
"""


async def find_fx_problems(
    conn: asyncpg.Connection | PoolConnectionProxy[asyncpg.Record],
) -> list[str]:
    if await conn.fetchval("SELECT to_regclass('fx_movements')") is None:
        return []  # a database from before FX valuation: nothing to check
    transfers = {row["id"]: transfer_from_row(row) for row in await conn.fetch(_FX_TRANSFERS)}
    problems: list[str] = []
    valued_refunds: set[str] = set()
    for row in await conn.fetch(_MOVEMENTS):
        valued_refunds.add(row["refund_id"])
        problems.extend(_movement_problems(row, transfers))
    for transfer in transfers.values():
        if transfer.refund_id not in valued_refunds and not transfer.id.endswith(":late-failure"):
            problems.append(
                f"transfer {transfer.id} values refund {transfer.refund_id} in "
                f"{transfer.currency}, but the refund has no FX movement"
            )
    for row in await conn.fetch(_UNBOOKED):
        problems.append(
            f"refund {row['refund_id']} is posted and was valued at capture in "
            f"{row['settlement_currency']}, but its FX movement is not booked"
        )
    return problems


# Posted refunds valued at capture whose value at refund never got booked (a rate past any
# payment, a crash between the post and the valuation before the retry healed it).
_UNBOOKED = """
SELECT v.refund_id, v.settlement_currency FROM fx_valuations v
JOIN ledger_transfers t ON t.id = 'refund-' || v.refund_id || ':post'
LEFT JOIN fx_movements m ON m.transfer_id = t.id
WHERE m.transfer_id IS NULL ORDER BY v.refund_id
"""


def _movement_problems(row: asyncpg.Record, transfers: Mapping[str, Transfer]) -> list[str]:
    refund, settlement = row["refund_id"], row["settlement_currency"]
    name = f"FX movement of refund {refund}"
    if row["post_kind"] != "post":
        return [f"{name} names {row['transfer_id']}, which is not a posted transfer"]
    problems: list[str] = []
    if (row["post_amount"], row["post_currency"]) != (row["amount"], row["currency"]):
        problems.append(
            f"{name} is for {row['amount']} {row['currency']}, but {row['transfer_id']} "
            f"posted {row['post_amount']} {row['post_currency']}"
        )
    if not row["valued"]:
        problems.append(f"{name} has no valuation at capture")
    elif (row["valued_currency"], row["valued_settlement"], row["valued_rate"]) != (
        row["currency"],
        settlement,
        row["capture_rate"],
    ):
        problems.append(
            f"{name} uses capture rate {row['capture_rate']} {row['currency']}/{settlement}, "
            f"but the refund was valued at {row['valued_rate']} "
            f"{row['valued_currency']}/{row['valued_settlement']}"
        )
    at_capture = settlement_value(row["amount"], row["currency"], row["capture_rate"], settlement)
    at_refund = settlement_value(row["amount"], row["currency"], row["refund_rate"], settlement)
    if (row["value_at_capture"], row["value_at_refund"], row["fx_difference"]) != (
        at_capture,
        at_refund,
        at_refund - at_capture,
    ):
        problems.append(
            f"{name} records values {row['value_at_capture']} and {row['value_at_refund']} "
            f"(difference {row['fx_difference']}) {settlement}, but its amount and rates give "
            f"{at_capture} and {at_refund} (difference {at_refund - at_capture})"
        )
    debit, credit = row["debit_account"], row["credit_account"]
    difference = row["value_at_refund"] - row["value_at_capture"]
    expected = {
        value_id(refund): (debit, credit, row["value_at_capture"]),
        fx_id(refund): (FX_ACCOUNT, credit, difference)
        if difference >= 0
        else (credit, FX_ACCOUNT, -difference),
    }
    for transfer_id, (debit_account, credit_account, amount) in expected.items():
        problems.extend(
            _leg_problems(
                transfers.get(transfer_id),
                transfer_id,
                (debit_account, credit_account, amount, settlement),
            )
        )
        back = transfers.get(back_id(transfer_id))
        if back is not None:
            problems.extend(
                _leg_problems(back, back.id, (credit_account, debit_account, amount, settlement))
            )
    problems.extend(_late_failure_problems(refund, transfers))
    return problems


def _leg_problems(
    found: Transfer | None, transfer_id: str, expected: tuple[str, str, int, str]
) -> list[str]:
    debit, credit, amount, currency = expected
    if amount == 0:
        return [] if found is None else [f"transfer {transfer_id} moves a value of 0"]
    if found is None:
        return [
            f"transfer {transfer_id} is missing: expected {amount} {currency} {debit} -> {credit}"
        ]
    actual = (found.kind, found.debit_account, found.credit_account, found.amount, found.currency)
    if actual != ("single", debit, credit, amount, currency):
        return [
            f"transfer {transfer_id} moves {found.amount} {found.currency} "
            f"{found.debit_account} -> {found.credit_account} ({found.kind}); its FX movement "
            f"says {amount} {currency} {debit} -> {credit}"
        ]
    return []


def _late_failure_problems(refund: str, transfers: Mapping[str, Transfer]) -> list[str]:
    failed = f"refund-{refund}:late-failure" in transfers
    valued = value_id(refund) in transfers
    booked_back = back_id(value_id(refund)) in transfers
    if failed and valued and not booked_back:
        return [
            f"refund {refund} failed late and was booked back in its own currency, but its "
            f"value {value_id(refund)} was not (no {back_id(value_id(refund))})"
        ]
    if booked_back and not failed:
        return [f"refund {refund} has {back_id(value_id(refund))} but no late failure to undo"]
    return []
