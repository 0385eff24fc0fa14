"""Risk scoring: a score 0-100 with named reasons, and the policy's decision on it.

The score is a sum of explainable contributions from ``RiskFeatures`` (see
``activities.risk_features``), capped at 100; the same refund with the same history always
gets the same score. Each contribution is one reason, a sentence with its figure and its
points, e.g. "refund is 100% of the payment (+15)".

    signal                                       condition                        points
    -------------------------------------------  -------------------------------  ------
    share of the payment                         the whole payment (100%)          +15
                                                 half of it or more                 +5
    customer's refunds in the last 30 days       3 or more                         +20
                                                 1 or 2                            +10
    customer's refunds in the last 90 days       6 or more                         +10
    refunded within 30 days, with this refund    above REFUNDS_REVIEW_ABOVE        +10
    customer's earlier rejected refunds          3 or more                         +25
                                                 1 or 2                            +15
    time since the payment                       under 1 hour                      +10
    reason code                                  product_not_received              +15
                                                 fraudulent, other                 +10
                                                 product_unacceptable               +5
    dispute on the payment                       disputed                          +30
    customer's other refunds in flight           1 or more                         +10

Decision (``RiskPolicy``): BLOCK when a block score is set and the score reaches it; REVIEW
when the score reaches the review score or the amount is above the review amount; else
APPROVE. Two approvals are required above the dual-approval amount. The decision's grounds
are appended to the reasons, without points.

A trained model (``activities.risk_model``) replaces the rules' score and reasons when the
worker has one; when it fails, the rules score and a warning is logged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
from temporalio import activity

from activities.durations import parse_duration
from activities.errors import DatabaseUnavailable, to_application_error
from activities.ledger_sql import UNAVAILABLE
from activities.risk_features import RiskFeatures, compute_features
from activities.risk_model import RiskModel
from activities.risk_policy import RiskPolicy, RiskPolicyError
from workflows.currencies import format_amount
from workflows.models import FINAL_STATUSES, RefundReason, RefundStatus
from workflows.review_models import RecordOutcome, RiskAssessment, RiskDecision, ScoreRefund

__all__ = [
    "RiskActivities",
    "RiskFeatures",
    "RiskModel",
    "RiskPolicy",
    "RiskPolicyError",
    "assess",
    "decide",
    "parse_duration",
    "score_rules",
]

log = logging.getLogger(__name__)

_REASON_POINTS = {
    RefundReason.PRODUCT_NOT_RECEIVED: 15,
    RefundReason.FRAUDULENT: 10,
    RefundReason.OTHER: 10,
    RefundReason.PRODUCT_UNACCEPTABLE: 5,
}


def score_rules(features: RiskFeatures, policy: RiskPolicy) -> tuple[int, list[str]]:
    """The rules' score and one reason per contribution (see the table above)."""
    f = features
    found: list[tuple[int, str]] = []
    share = math.floor(f.payment_share * 100)
    if f.payment_share >= 1:
        found.append((15, f"refund is {share}% of the payment"))
    elif f.payment_share >= 0.5:
        found.append((5, f"refund is {share}% of the payment"))
    if f.refunds_30d:
        found.append((20 if f.refunds_30d >= 3 else 10, _refunds(f.refunds_30d, "30 days")))
    if f.refunds_90d >= 6:
        found.append((10, _refunds(f.refunds_90d, "90 days")))
    total = f.refunded_30d + f.amount
    if f.refunded_30d and total > policy.review_above:
        found.append(
            (
                10,
                f"with this refund the customer gets {format_amount(total, f.currency)} back "
                f"within 30 days, above {format_amount(policy.review_above, f.currency)}",
            )
        )
    if f.rejections:
        noun = "refund" if f.rejections == 1 else "refunds"
        found.append(
            (
                25 if f.rejections >= 3 else 15,
                f"customer had {f.rejections} earlier {noun} rejected",
            )
        )
    if f.hours_since_payment is not None and f.hours_since_payment < 1:
        minutes = round(f.hours_since_payment * 60)
        found.append((10, f"payment was made {minutes} minutes ago"))
    reason_points = _REASON_POINTS.get(f.reason)
    if reason_points:
        found.append((reason_points, f"reason is {f.reason.value}"))
    if f.disputed:
        found.append((30, "payment is disputed"))
    if f.in_flight:
        noun = "refund" if f.in_flight == 1 else "refunds"
        found.append((10, f"customer has {f.in_flight} other {noun} in flight"))
    score = min(100, sum(points for points, _ in found))
    return score, [f"{why} (+{points})" for points, why in found] or ["no risk signals (0)"]


def _refunds(count: int, window: str) -> str:
    return f"customer had {count} {'refund' if count == 1 else 'refunds'} in the last {window}"


def decide(
    score: int, features: RiskFeatures, policy: RiskPolicy
) -> tuple[RiskDecision, int, list[str]]:
    """(decision, approvals required, the decision's grounds) for a score under ``policy``."""
    amount = format_amount(features.amount, features.currency)
    grounds: list[str] = []
    if policy.block_score is not None and score >= policy.block_score:
        return (
            RiskDecision.BLOCK,
            1,
            [f"score {score} reaches the block score {policy.block_score}"],
        )
    if score >= policy.review_score:
        grounds.append(f"score {score} reaches the review score {policy.review_score}")
    if features.amount > policy.review_above:
        limit = format_amount(policy.review_above, features.currency)
        grounds.append(f"amount {amount} is above the review amount {limit}")
    approvals = 2 if features.amount > policy.dual_approval_above else 1
    if approvals == 2:  # a dual-approval amount is always reviewed, whatever the review amount
        limit = format_amount(policy.dual_approval_above, features.currency)
        grounds.append(f"amount {amount} is above {limit}: two different reviewers must approve")
    decision = RiskDecision.REVIEW if grounds else RiskDecision.APPROVE
    return decision, approvals, grounds


# A request may ask for a human (never for less): the webhook receiver sets it on refunds it
# starts for early fraud warnings under REFUNDS_EFW_POLICY=review.
REVIEW_REQUIRED_KEY = "review_required"


def assess(
    features: RiskFeatures, policy: RiskPolicy, model: RiskModel | None = None
) -> RiskAssessment:
    """Score (the model's when there is one and it works, else the rules') and decide."""
    scored_by = "rules"
    if model is not None:
        try:
            score, reasons = model.score(features)
            scored_by = model.scored_by
        except Exception as exc:  # any failure of the model falls back to the rules
            log.warning(
                "risk model %s failed to score (%s: %s); scoring by the rules instead",
                model.path,
                type(exc).__name__,
                exc,
            )
    if scored_by == "rules":
        score, reasons = score_rules(features, policy)
    decision, approvals, grounds = decide(score, features, policy)
    return RiskAssessment(
        score=score,
        reasons=[*reasons, *grounds],
        decision=decision,
        approvals_required=approvals,
        escalate_after_s=policy.escalate_after_s,
        expire_after_s=policy.expire_after_s,
        scored_by=scored_by,
    )


# The status a scored refund enters: the workflow records the final one later.
_STATUS_AFTER = {
    RiskDecision.APPROVE: RefundStatus.APPROVED,
    RiskDecision.REVIEW: RefundStatus.AWAITING_REVIEW,
    RiskDecision.BLOCK: RefundStatus.VALIDATING,
}
_FINAL = sorted(status.value for status in FINAL_STATUSES)
_BIGINT_MIN, _BIGINT_MAX = -(2**63), 2**63 - 1

# A final status is never replaced by a non-final one (a late retry of score_refund).
_UPSERT = """
INSERT INTO refund_requests
    (request_id, customer_id, payment_key, amount, currency, status, risk_score)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (request_id) DO UPDATE SET
    customer_id = EXCLUDED.customer_id,
    payment_key = coalesce(EXCLUDED.payment_key, refund_requests.payment_key),
    amount = coalesce(EXCLUDED.amount, refund_requests.amount),
    currency = EXCLUDED.currency,
    status = CASE
        WHEN refund_requests.status = ANY($8::text[]) AND NOT EXCLUDED.status = ANY($8::text[])
        THEN refund_requests.status ELSE EXCLUDED.status END,
    risk_score = coalesce(EXCLUDED.risk_score, refund_requests.risk_score),
    updated_at = now()
"""


@contextmanager
def _database_errors() -> Iterator[None]:
    try:
        yield
    except UNAVAILABLE as exc:
        error = DatabaseUnavailable(f"the risk database is unavailable: {exc}")
        raise to_application_error(error) from exc


class RiskActivities:
    """``score_refund`` and ``record_outcome``, on the ledger's database."""

    def __init__(
        self,
        pool: asyncpg.Pool[asyncpg.Record],
        policy: RiskPolicy | None = None,
        model: RiskModel | None = None,
        notify_outcomes: bool = False,
    ) -> None:
        self._pool = pool
        self._policy = policy or RiskPolicy()
        self._model = model
        self._notify_outcomes = notify_outcomes  # subscribers want refund.* events

    @activity.defn(name="score_refund")
    async def score_refund(self, order: ScoreRefund) -> RiskAssessment:
        """Score the refund, decide by the policy, and keep the request for later scoring."""
        with _database_errors():
            async with self._pool.acquire() as conn:
                features = await compute_features(conn, order, datetime.now(UTC))
            assessment = assess(features, self._policy, self._model)
            if order.request.metadata.get(REVIEW_REQUIRED_KEY) and (
                assessment.decision is RiskDecision.APPROVE
            ):
                asked = order.request.metadata[REVIEW_REQUIRED_KEY]
                why = f"review required by the request ({asked})"
                assessment = assessment.model_copy(
                    update={"decision": RiskDecision.REVIEW, "reasons": [*assessment.reasons, why]}
                )
            if self._notify_outcomes:
                assessment = assessment.model_copy(update={"notify_outcomes": True})
            request, plan = order.request, order.plan
            await self._upsert(
                request.request_id,
                request.customer_id,
                order.payment.payment_key,
                plan.amount,
                plan.currency,
                _STATUS_AFTER[assessment.decision],
                assessment.score,
            )
        return assessment

    @activity.defn(name="record_outcome")
    async def record_outcome(self, outcome: RecordOutcome) -> None:
        """Keep how a refund ended (earlier rejections and so on, for later scoring)."""
        with _database_errors():
            await self._upsert(
                outcome.request_id,
                outcome.customer_id,
                outcome.payment_key,
                outcome.amount,
                outcome.currency,
                outcome.status,
                None,
            )

    async def _upsert(
        self,
        request_id: str,
        customer_id: str,
        payment_key: str | None,
        amount: int | None,
        currency: str,
        status: RefundStatus,
        risk_score: int | None,
    ) -> None:
        if amount is not None and not _BIGINT_MIN <= amount <= _BIGINT_MAX:
            amount = None  # a refused, absurd amount is not kept
        await self._pool.execute(
            _UPSERT,
            request_id,
            customer_id,
            payment_key,
            amount,
            currency.upper(),
            status.value,
            risk_score,
            _FINAL,
        )

    def all(self) -> list[Callable[..., Any]]:
        return [self.score_refund, self.record_outcome]
