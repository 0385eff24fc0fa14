"""What risk scoring knows about a refund: the request, the payment, the customer's history.

History comes from two tables. ``refund_requests`` (migration 0002) says which customer
asked for which refund and how it ended; the ledger says which of them really moved money
(a ``post`` transfer whose ``refund_id`` is the request id) and when. A customer's refund
counts when money moved for it (a posted transfer, or a row recorded ``SUCCEEDED``); its
time is when the money moved (else when it was requested); its amount is what was posted
(else what was requested).

Earlier rejections are the customer's refunds rejected after they were scored (a reviewer
rejected them or the policy blocked them: the row has a risk score and ends ``REJECTED``).
Refusals at validation (a wrong amount, currency or payment) are mistakes in the request, often
the shop's, and say nothing about the customer, so they do not count.

Amounts in different currencies: every refund counts in ``refunds_30d`` / ``refunds_90d``
whatever its currency, but ``refunded_30d`` / ``refunded_90d`` sum only the refunds in the
request's own currency (minor units are not comparable across currencies, and risk never
converts).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from workflows.models import FINAL_STATUSES, RefundReason
from workflows.review_models import ScoreRefund

RECENT = timedelta(days=30)
LONGER = timedelta(days=90)
# A refund not final after this long is a stuck workflow, not a refund in flight.
IN_FLIGHT_AT_MOST = timedelta(days=90)

# The columns a training CSV has, in this order (plus `label`), and that a model is fed.
FEATURE_COLUMNS = (
    "amount",
    "payment_share",
    "refunds_30d",
    "refunded_30d",
    "refunds_90d",
    "refunded_90d",
    "rejections",
    "hours_since_payment",
    "reason",
    "disputed",
    "in_flight",
)


@dataclass(frozen=True)
class RiskFeatures:
    """One refund as risk sees it. Amounts are minor units of ``currency``."""

    amount: int
    currency: str
    payment_share: float  # amount / what the payment captured (or authorised, for a void)
    refunds_30d: int  # the customer's earlier refunds that moved money, any currency
    refunded_30d: int  # what they moved, in this request's currency only
    refunds_90d: int
    refunded_90d: int
    rejections: int  # the customer's earlier refunds rejected after scoring, ever
    hours_since_payment: float | None  # None when the provider gave no payment time
    reason: RefundReason
    disputed: bool
    in_flight: int  # the customer's other refunds not final yet (nor resolved in the ledger)

    def as_row(self) -> dict[str, str | int | float | bool | None]:
        """The training-CSV row of this refund (``FEATURE_COLUMNS``; add a ``label``)."""
        values = asdict(self)
        values["reason"] = self.reason.value
        return {column: values[column] for column in FEATURE_COLUMNS}


_FINAL = sorted(status.value for status in FINAL_STATUSES)

_HISTORY = """
WITH history AS (
    SELECT r.status,
           r.created_at,
           r.risk_score,
           coalesce(l.posted, r.amount) AS amount,
           coalesce(l.posted_currency, r.currency) AS currency,
           coalesce(l.posted_at, r.created_at) AS moved_at,
           (l.posted IS NOT NULL OR r.status = 'SUCCEEDED') AS moved,
           coalesce(l.resolved, false) AS resolved
    FROM refund_requests r
    LEFT JOIN LATERAL (
        SELECT sum(t.amount) FILTER (WHERE t.kind = 'post')::bigint AS posted,
               min(t.currency) FILTER (WHERE t.kind = 'post') AS posted_currency,
               max(t.created_at) FILTER (WHERE t.kind = 'post') AS posted_at,
               bool_or(t.kind IN ('post', 'void')) AS resolved
        FROM ledger_transfers t
        WHERE t.refund_id = r.request_id
    ) l ON true
    WHERE r.customer_id = $1 AND r.request_id <> $2
)
SELECT
    count(*) FILTER (WHERE moved AND moved_at > $4) AS refunds_30d,
    coalesce(sum(amount) FILTER (WHERE moved AND moved_at > $4 AND currency = $3), 0)::bigint
        AS refunded_30d,
    count(*) FILTER (WHERE moved AND moved_at > $5) AS refunds_90d,
    coalesce(sum(amount) FILTER (WHERE moved AND moved_at > $5 AND currency = $3), 0)::bigint
        AS refunded_90d,
    count(*) FILTER (WHERE status = 'REJECTED' AND risk_score IS NOT NULL) AS rejections,
    count(*) FILTER (
        WHERE NOT moved AND NOT resolved AND status <> ALL($6::text[]) AND created_at > $7
    ) AS in_flight
FROM history
"""


async def compute_features(
    conn: asyncpg.Connection | PoolConnectionProxy[asyncpg.Record],
    order: ScoreRefund,
    now: datetime,
) -> RiskFeatures:
    """The features of ``order`` as of ``now`` (the current request itself is not history)."""
    request, payment, plan = order.request, order.payment, order.plan
    currency = plan.currency.upper()
    row = await conn.fetchrow(
        _HISTORY,
        request.customer_id,
        request.request_id,
        currency,
        now - RECENT,
        now - LONGER,
        _FINAL,
        now - IN_FLIGHT_AT_MOST,
    )
    assert row is not None  # an aggregate without GROUP BY always answers one row
    base = payment.amount_authorized if plan.operation == "void" else payment.amount_captured
    return RiskFeatures(
        amount=plan.amount,
        currency=currency,
        payment_share=round(plan.amount / base, 4) if base > 0 else 1.0,
        refunds_30d=row["refunds_30d"],
        refunded_30d=row["refunded_30d"],
        refunds_90d=row["refunds_90d"],
        refunded_90d=row["refunded_90d"],
        rejections=row["rejections"],
        hours_since_payment=_hours_since(payment.created, now),
        reason=request.reason,
        disputed=payment.disputed,
        in_flight=row["in_flight"],
    )


def _hours_since(created: datetime | None, now: datetime) -> float | None:
    if created is None:
        return None
    if created.tzinfo is None:  # providers give UTC; a naive time is taken as such
        created = created.replace(tzinfo=UTC)
    return round(max(0.0, (now - created).total_seconds() / 3600), 2)
