"""Risk scoring on a real ledger: features from history, named reasons, the policy's thresholds."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from temporalio.testing import ActivityEnvironment

from activities.ledger import Ledger
from activities.risk import (
    RiskActivities,
    RiskFeatures,
    RiskPolicy,
    RiskPolicyError,
    assess,
    decide,
    parse_duration,
    score_rules,
)
from activities.risk_features import compute_features
from workflows.models import (
    PaymentSnapshot,
    PaymentState,
    Psp,
    RefundPlan,
    RefundReason,
    RefundRequest,
    RefundStatus,
)
from workflows.review_models import RecordOutcome, RiskDecision, ScoreRefund

CUSTOMER = "cus_risk"


def order(
    request_id: str,
    amount: int,
    *,
    captured: int = 10_000,
    currency: str = "USD",
    customer: str = CUSTOMER,
    reason: RefundReason = RefundReason.REQUESTED_BY_CUSTOMER,
    disputed: bool = False,
    paid_hours_ago: float | None = 48,
) -> ScoreRefund:
    created = (
        None if paid_hours_ago is None else datetime.now(UTC) - timedelta(hours=paid_hours_ago)
    )
    payment = PaymentSnapshot(
        psp=Psp.STRIPE,
        payment_id=f"pi_{request_id}",
        state=PaymentState.CAPTURED,
        currency=currency,
        amount_authorized=captured,
        amount_captured=captured,
        amount_refunded=0,
        disputed=disputed,
        created=created,
    )
    request = RefundRequest(
        request_id=request_id,
        psp=Psp.STRIPE,
        payment_id=payment.payment_id,
        amount=amount,
        currency=currency,
        reason=reason,
        customer_id=customer,
        requested_by="shop",
    )
    plan = RefundPlan(operation="refund", amount=amount, currency=currency)
    return ScoreRefund(request=request, payment=payment, plan=plan)


async def history(
    ledger: Ledger,
    risk: RiskActivities,
    request_id: str,
    amount: int,
    status: RefundStatus,
    *,
    currency: str = "USD",
    customer: str = CUSTOMER,
    ledger_step: str | None = "post",
) -> None:
    """An earlier refund: its row through ``record_outcome``, its money through the ledger."""
    payment_key = f"stripe:pi_{request_id}"
    await risk.record_outcome(
        RecordOutcome(
            request_id=request_id,
            customer_id=customer,
            payment_key=payment_key,
            amount=amount,
            currency=currency,
            status=status,
        )
    )
    if ledger_step is None:
        return
    await ledger.reserve(
        transfer_id=f"refund-{request_id}:reserve",
        refund_id=request_id,
        payment_key=payment_key,
        captured=amount,
        currency=currency,
        amount=amount,
        debit_account="merchant:refunds",
        credit_account="psp:stripe:clearing",
    )
    pending = f"refund-{request_id}:reserve"
    if ledger_step == "post":
        await ledger.post(transfer_id=f"refund-{request_id}:post", pending_id=pending)
    elif ledger_step == "void":
        await ledger.void(transfer_id=f"refund-{request_id}:void", pending_id=pending)


async def row_of(pool: asyncpg.Pool, request_id: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT status, risk_score, amount, currency, payment_key FROM refund_requests "
        "WHERE request_id = $1",
        request_id,
    )


# -- features from a real ledger ---------------------------------------------------------------


async def test_features_come_from_the_ledger_and_the_customers_requests(
    ledger_db: asyncpg.Pool,
) -> None:
    ledger, risk = Ledger(ledger_db), RiskActivities(ledger_db, RiskPolicy())
    # Succeeded refunds stay at the status they were scored with; the ledger post says so.
    await history(ledger, risk, "old-1", 2000, RefundStatus.APPROVED)
    await history(ledger, risk, "old-2", 1500, RefundStatus.SUCCEEDED)
    await history(ledger, risk, "old-eur", 3000, RefundStatus.APPROVED, currency="EUR")
    await risk.score_refund(order("reviewed", 900))  # then a reviewer rejected it
    await history(ledger, risk, "reviewed", 900, RefundStatus.REJECTED, ledger_step="void")
    # Refused at validation (never scored): the request's mistake, not the customer's.
    await history(ledger, risk, "refused", 900, RefundStatus.REJECTED, ledger_step=None)
    await history(ledger, risk, "waiting", 700, RefundStatus.AWAITING_REVIEW, ledger_step="reserve")
    await history(ledger, risk, "expired", 800, RefundStatus.EXPIRED, ledger_step="void")
    await history(ledger, risk, "stranger", 5000, RefundStatus.APPROVED, customer="cus_other")
    scored = order("new", 2500, captured=5000, reason=RefundReason.PRODUCT_NOT_RECEIVED)

    now = datetime.now(UTC)
    async with ledger_db.acquire() as conn:
        features = await compute_features(conn, scored, now)
        in_60_days = await compute_features(conn, scored, now + timedelta(days=60))
        in_100_days = await compute_features(conn, scored, now + timedelta(days=100))

    assert features.amount == 2500 and features.currency == "USD"
    assert features.payment_share == 0.5
    # Three refunds moved money; only the USD ones are summed.
    assert (features.refunds_30d, features.refunded_30d) == (3, 3500)
    assert (features.refunds_90d, features.refunded_90d) == (3, 3500)
    assert features.rejections == 1
    assert features.in_flight == 1  # "waiting"; "expired" is final, the posted ones moved
    assert features.hours_since_payment is not None
    assert 47.9 < features.hours_since_payment < 48.1
    assert features.reason is RefundReason.PRODUCT_NOT_RECEIVED
    assert features.disputed is False

    assert (in_60_days.refunds_30d, in_60_days.refunded_30d) == (0, 0)
    assert (in_60_days.refunds_90d, in_60_days.refunded_90d) == (3, 3500)
    assert (in_100_days.refunds_90d, in_100_days.in_flight) == (0, 0)
    assert in_100_days.rejections == 1  # earlier rejections are never forgotten


async def test_a_customer_without_history_has_none(ledger_db: asyncpg.Pool) -> None:
    scored = order("first", 10_000, disputed=True, paid_hours_ago=None)
    async with ledger_db.acquire() as conn:
        features = await compute_features(conn, scored, datetime.now(UTC))
    assert features == RiskFeatures(
        amount=10_000,
        currency="USD",
        payment_share=1.0,
        refunds_30d=0,
        refunded_30d=0,
        refunds_90d=0,
        refunded_90d=0,
        rejections=0,
        hours_since_payment=None,
        reason=RefundReason.REQUESTED_BY_CUSTOMER,
        disputed=True,
        in_flight=0,
    )


async def test_score_refund_keeps_the_request_and_record_outcome_ends_it(
    ledger_db: asyncpg.Pool,
) -> None:
    risk = RiskActivities(ledger_db, RiskPolicy())
    env = ActivityEnvironment()
    assessment = await env.run(risk.score_refund, order("rma-9", 3000))
    assert assessment.decision is RiskDecision.APPROVE
    assert assessment.scored_by == "rules"
    row = await row_of(ledger_db, "rma-9")
    assert row is not None
    assert dict(row) == {
        "status": "APPROVED",
        "risk_score": assessment.score,
        "amount": 3000,
        "currency": "USD",
        "payment_key": "stripe:pi_rma-9",
    }

    outcome = RecordOutcome(
        request_id="rma-9",
        customer_id=CUSTOMER,
        payment_key=None,
        amount=None,
        currency="usd",
        status=RefundStatus.REJECTED,
    )
    await env.run(risk.record_outcome, outcome)
    await env.run(risk.score_refund, order("rma-9", 3000))  # a late retry: the end stands
    row = await row_of(ledger_db, "rma-9")
    assert row is not None
    assert (row["status"], row["risk_score"], row["amount"]) == (
        "REJECTED",
        assessment.score,
        3000,
    )

    # A refusal before anything was planned is kept too, whatever it carried.
    early = outcome.model_copy(update={"request_id": "rma-10", "amount": 10**30})
    await env.run(risk.record_outcome, early)
    row = await row_of(ledger_db, "rma-10")
    assert row is not None and (row["status"], row["amount"]) == ("REJECTED", None)


async def test_a_flagged_refund_waits_for_review_and_counts_as_in_flight(
    ledger_db: asyncpg.Pool,
) -> None:
    risk = RiskActivities(ledger_db, RiskPolicy(review_above=1000))
    first = await risk.score_refund(order("big-1", 5000))
    assert first.decision is RiskDecision.REVIEW
    row = await row_of(ledger_db, "big-1")
    assert row is not None and row["status"] == "AWAITING_REVIEW"
    second = await risk.score_refund(order("big-2", 500))
    assert "customer has 1 other refund in flight (+10)" in second.reasons


# -- named reasons -----------------------------------------------------------------------------

QUIET = RiskFeatures(
    amount=3000,
    currency="USD",
    payment_share=0.3,
    refunds_30d=0,
    refunded_30d=0,
    refunds_90d=0,
    refunded_90d=0,
    rejections=0,
    hours_since_payment=48.0,
    reason=RefundReason.REQUESTED_BY_CUSTOMER,
    disputed=False,
    in_flight=0,
)


def test_a_refund_without_signals_scores_zero() -> None:
    assert score_rules(QUIET, RiskPolicy()) == (0, ["no risk signals (0)"])


@pytest.mark.parametrize(
    ("changes", "reason", "points"),
    [
        ({"payment_share": 1.0}, "refund is 100% of the payment (+15)", 15),
        ({"payment_share": 0.6}, "refund is 60% of the payment (+5)", 5),
        (
            {"refunds_30d": 1, "refunds_90d": 1},
            "customer had 1 refund in the last 30 days (+10)",
            10,
        ),
        (
            {"refunds_30d": 3, "refunds_90d": 3},
            "customer had 3 refunds in the last 30 days (+20)",
            20,
        ),
        ({"refunds_90d": 6}, "customer had 6 refunds in the last 90 days (+10)", 10),
        (
            {"refunded_30d": 48_000, "amount": 3000},
            "with this refund the customer gets 510.00 USD back within 30 days, "
            "above 500.00 USD (+10)",
            10,
        ),
        ({"rejections": 1}, "customer had 1 earlier refund rejected (+15)", 15),
        ({"rejections": 4}, "customer had 4 earlier refunds rejected (+25)", 25),
        ({"hours_since_payment": 0.25}, "payment was made 15 minutes ago (+10)", 10),
        (
            {"reason": RefundReason.PRODUCT_NOT_RECEIVED},
            "reason is product_not_received (+15)",
            15,
        ),
        ({"reason": RefundReason.FRAUDULENT}, "reason is fraudulent (+10)", 10),
        ({"reason": RefundReason.OTHER}, "reason is other (+10)", 10),
        ({"reason": RefundReason.PRODUCT_UNACCEPTABLE}, "reason is product_unacceptable (+5)", 5),
        ({"disputed": True}, "payment is disputed (+30)", 30),
        ({"in_flight": 2}, "customer has 2 other refunds in flight (+10)", 10),
    ],
)
def test_each_signal_is_a_named_reason_with_its_points(
    changes: dict[str, object], reason: str, points: int
) -> None:
    features = dataclasses.replace(QUIET, **changes)  # type: ignore[arg-type]
    assert score_rules(features, RiskPolicy()) == (points, [reason])


def test_scores_add_up_deterministically_and_stop_at_100() -> None:
    busy = dataclasses.replace(
        QUIET,
        payment_share=1.0,
        refunds_30d=2,
        reason=RefundReason.PRODUCT_NOT_RECEIVED,
    )
    assert score_rules(busy, RiskPolicy()) == score_rules(busy, RiskPolicy())
    assert score_rules(busy, RiskPolicy())[0] == 15 + 10 + 15
    everything = dataclasses.replace(
        busy, refunds_30d=5, refunds_90d=9, rejections=3, disputed=True, in_flight=1
    )
    score, reasons = score_rules(everything, RiskPolicy())
    assert score == 100 and len(reasons) == 7  # 15+20+10+25+15+30+10, capped


# -- the policy's thresholds -------------------------------------------------------------------


def test_amounts_are_reviewed_strictly_above_the_review_amount() -> None:
    policy = RiskPolicy(review_above=50_000)
    at = dataclasses.replace(QUIET, amount=50_000)
    assert decide(0, at, policy) == (RiskDecision.APPROVE, 1, [])
    decision, approvals, grounds = decide(0, dataclasses.replace(at, amount=50_001), policy)
    assert (decision, approvals) == (RiskDecision.REVIEW, 1)
    assert grounds == ["amount 500.01 USD is above the review amount 500.00 USD"]


def test_scores_are_reviewed_from_the_review_score() -> None:
    policy = RiskPolicy(review_score=40)
    assert decide(39, QUIET, policy)[0] is RiskDecision.APPROVE
    assert decide(40, QUIET, policy) == (
        RiskDecision.REVIEW,
        1,
        ["score 40 reaches the review score 40"],
    )


def test_scores_are_blocked_from_the_block_score_only_when_one_is_set() -> None:
    assert decide(100, QUIET, RiskPolicy())[0] is RiskDecision.REVIEW
    policy = RiskPolicy(block_score=80)
    assert decide(79, QUIET, policy)[0] is RiskDecision.REVIEW
    assert decide(80, QUIET, policy) == (
        RiskDecision.BLOCK,
        1,
        ["score 80 reaches the block score 80"],
    )


def test_two_approvals_strictly_above_the_dual_approval_amount() -> None:
    policy = RiskPolicy(dual_approval_above=200_000)
    at = dataclasses.replace(QUIET, amount=200_000)
    assert decide(0, at, policy)[:2] == (RiskDecision.REVIEW, 1)
    decision, approvals, grounds = decide(0, dataclasses.replace(at, amount=200_001), policy)
    assert (decision, approvals) == (RiskDecision.REVIEW, 2)
    assert (
        grounds[-1]
        == "amount 2000.01 USD is above 2000.00 USD: two different reviewers must approve"
    )


def test_the_assessment_carries_the_policys_review_terms() -> None:
    policy = RiskPolicy(review_score=10, escalate_after_s=900, expire_after_s=7200)
    assessment = assess(dataclasses.replace(QUIET, disputed=True), policy)
    assert assessment.decision is RiskDecision.REVIEW
    assert (assessment.escalate_after_s, assessment.expire_after_s) == (900, 7200)
    assert assessment.reasons == [
        "payment is disputed (+30)",
        "score 30 reaches the review score 10",
    ]


# -- the policy from the environment -----------------------------------------------------------


def test_policy_defaults_and_every_variable() -> None:
    assert RiskPolicy.from_env({}) == RiskPolicy(
        review_score=40,
        block_score=None,
        review_above=50_000,
        dual_approval_above=200_000,
        escalate_after_s=4 * 3600,
        expire_after_s=72 * 3600,
    )
    env = {
        "REFUNDS_REVIEW_SCORE": "30",
        "REFUNDS_BLOCK_SCORE": "90",
        "REFUNDS_REVIEW_ABOVE": "10000",
        "REFUNDS_DUAL_APPROVAL_ABOVE": "100000",
        "REFUNDS_REVIEW_ESCALATE_AFTER": "15m",
        "REFUNDS_REVIEW_EXPIRE_AFTER": "3d",
    }
    assert RiskPolicy.from_env(env) == RiskPolicy(30, 90, 10_000, 100_000, 900, 3 * 86400)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REFUNDS_REVIEW_SCORE", "high"),
        ("REFUNDS_REVIEW_SCORE", "101"),
        ("REFUNDS_BLOCK_SCORE", "-1"),
        ("REFUNDS_BLOCK_SCORE", "20"),  # below the review score 40
        ("REFUNDS_REVIEW_ABOVE", "500.00"),
        ("REFUNDS_DUAL_APPROVAL_ABOVE", "-5"),
        ("REFUNDS_REVIEW_ESCALATE_AFTER", "4"),
        ("REFUNDS_REVIEW_ESCALATE_AFTER", "80h"),  # after the expiry
        ("REFUNDS_REVIEW_EXPIRE_AFTER", "0s"),
        ("REFUNDS_REVIEW_EXPIRE_AFTER", "2 weeks"),
    ],
)
def test_a_bad_policy_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(RiskPolicyError, match=name):
        RiskPolicy.from_env({name: value})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("4h", 14_400), ("3d", 259_200), (" 2H ", 7200)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "90", "1.5h", "h", "4w", "-3m"])
def test_bad_durations_say_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match="like 90s, 15m, 4h or 3d"):
        parse_duration(text)


def test_a_dual_approval_amount_is_reviewed_even_below_a_higher_review_amount() -> None:
    policy = RiskPolicy(review_above=500_000, dual_approval_above=200_000)
    decision, approvals, grounds = decide(0, dataclasses.replace(QUIET, amount=300_000), policy)
    assert (decision, approvals) == (RiskDecision.REVIEW, 2)
    assert grounds == [
        "amount 3000.00 USD is above 2000.00 USD: two different reviewers must approve"
    ]
