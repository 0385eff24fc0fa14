"""What risk scoring and human review exchange with the refund workflow."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from workflows.models import (
    Identity,
    PaymentSnapshot,
    RefundPlan,
    RefundRequest,
    RefundStatus,
)


class RiskDecision(StrEnum):
    APPROVE = "approve"  # below the review score and the review amount: no human needed
    REVIEW = "review"  # a reviewer must approve (two above the dual-approval amount)
    BLOCK = "block"  # at or above the block score: rejected outright


class ScoreRefund(BaseModel):
    request: RefundRequest
    payment: PaymentSnapshot
    plan: RefundPlan


class RiskAssessment(BaseModel):
    """The score, the policy's decision, and the review terms the policy sets for this refund.

    Everything the workflow needs from configuration arrives here, recorded in its history,
    so the workflow never reads the environment.
    """

    score: int = Field(ge=0, le=100)
    reasons: list[str]
    decision: RiskDecision
    approvals_required: int = Field(default=1, ge=1, le=2)
    escalate_after_s: int = Field(default=4 * 3600, gt=0)
    expire_after_s: int = Field(default=72 * 3600, gt=0)
    scored_by: str = "rules"  # "rules" or "model:<file name>"
    # Event subscribers are configured: announce the outcome (one more action on success).
    notify_outcomes: bool = False


class RecordOutcome(BaseModel):
    """A refund's final status, kept for later risk scoring (earlier rejections and so on)."""

    request_id: str
    customer_id: str
    payment_key: str | None
    amount: int | None
    currency: str
    status: RefundStatus


class ApproveDecision(BaseModel):
    """Signal/update ``approve``: the reviewer's identity, a note, optionally a lower amount."""

    reviewer: Identity
    note: str = ""
    amount: int | None = Field(default=None, strict=True)


class RejectDecision(BaseModel):
    """Signal/update ``reject``."""

    reviewer: Identity
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class EscalateReview(BaseModel):
    request_id: str
    customer_id: str
    amount: int
    currency: str
    score: int
    waiting_s: int
