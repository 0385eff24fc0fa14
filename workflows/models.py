"""The refund contract: what callers send and what they read back.

Field names are the stable JSON contract (README, "Contract"); money is an integer in minor
units plus an ISO 4217 currency, never a float. What activities exchange with the workflow is
in ``workflows.provider_models`` and re-exported here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints, field_validator

from workflows.provider_models import (
    CompensateRefund,
    FetchPayment,
    FetchRefund,
    LateFailureResult,
    LateSettlement,
    LateSettlementResult,
    Operation,
    PaymentDisputed,
    PaymentSnapshot,
    PaymentState,
    ProviderRate,
    ProviderRefundUpdate,
    PspRefund,
    PspRefundStatus,
    RefundPlan,
    ReserveRefund,
    ReverseAtProvider,
    SettlementOverdue,
    SettleRefund,
)
from workflows.vocabulary import FINAL_STATUSES, Psp, RefundReason, RefundStatus

__all__ = [
    "FINAL_STATUSES",
    "Approval",
    "CancelRequest",
    "CompensateRefund",
    "FetchPayment",
    "FetchRefund",
    "Identity",
    "LateFailureResult",
    "LateSettlement",
    "LateSettlementResult",
    "Operation",
    "PaymentDisputed",
    "PaymentSnapshot",
    "PaymentState",
    "ProviderRate",
    "ProviderRefundUpdate",
    "Psp",
    "PspRefund",
    "PspRefundStatus",
    "RecordDispute",
    "RefundInput",
    "RefundLineRequest",
    "RefundOutcomeEvent",
    "RefundPlan",
    "RefundReason",
    "RefundRequest",
    "RefundResult",
    "RefundStatus",
    "RefundView",
    "RefusedDecision",
    "ReserveRefund",
    "ReverseAtProvider",
    "ReviewView",
    "RiskView",
    "SettleRefund",
    "SettlementOverdue",
    "same_person",
]


def _upper_currency(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


class RefundLineRequest(BaseModel):
    """One order line to refund, and how many of its units."""

    line_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    quantity: int = Field(gt=0, strict=True)


class RefundRequest(BaseModel):
    """Start input of ``RefundWorkflow``. ``amount`` omitted means all that is still refundable.

    Values are checked by the workflow (see ``workflows.rules``), not here, so that a bad value
    from any client ends as a REJECTED refund with a reason rather than an undecodable input.
    """

    request_id: str = Field(min_length=1, max_length=200)
    psp: Psp
    payment_id: str = Field(min_length=1)
    amount: int | None = Field(default=None, strict=True)  # no 10.5, "100" or true
    currency: str
    reason: RefundReason = RefundReason.REQUESTED_BY_CUSTOMER
    customer_id: str
    requested_by: Identity
    order_id: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    # A return of order lines: the amount is the order's quote for them (``order_id`` needed).
    lines: list[RefundLineRequest] | None = None
    refund_shipping: bool | None = Field(default=None, strict=True)  # None: the refund policy

    _normalise_currency = field_validator("currency", mode="before")(_upper_currency)


class RiskView(BaseModel):
    """The risk score (0-100), the policy's decision on it, and the named reasons behind it."""

    score: int | None = None
    decision: str | None = None  # approve | review | block
    reasons: list[str] = Field(default_factory=list)


# What RefundWorkflow accepts: a RefundRequest, or any JSON object, which the workflow then
# checks itself, so a malformed start from any client ends REJECTED with the reason instead
# of a workflow that cannot decode its input.
RefundInput = Annotated[RefundRequest | dict[str, Any], Field(union_mode="left_to_right")]


class RefundResult(BaseModel):
    request_id: str
    status: RefundStatus
    amount_refunded: int
    currency: str
    psp_refund_id: str | None = None
    reason: str | None = None
    risk: RiskView = Field(default_factory=RiskView)


class RefusedDecision(BaseModel):
    reviewer: str
    action: str
    why: str


class Approval(BaseModel):
    reviewer: str
    note: str = ""
    amount: int | None = None  # a lower amount than requested, when the reviewer chose one


class ReviewView(BaseModel):
    approvals: list[Approval] = Field(default_factory=list)
    approvals_required: int = 0
    refused_decisions: list[RefusedDecision] = Field(default_factory=list)
    escalates_at: datetime | None = None
    deadline: datetime | None = None
    rejected_by: str | None = None


class RefundView(BaseModel):
    """Answer of the ``status`` query (and of ``GET /v1/refunds/{id}``)."""

    request_id: str
    status: RefundStatus
    amount: int | None
    amount_refunded: int
    currency: str
    risk: RiskView = Field(default_factory=RiskView)
    review: ReviewView = Field(default_factory=ReviewView)
    psp_refund_id: str | None = None
    last_error: str | None = None


# Who acted: surrounding blanks dropped, never empty. Rules compare identities with
# ``same_person`` (case and inner spacing do not make a second person).
Identity = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


def same_person(one: str, other: str) -> bool:
    return " ".join(one.split()).casefold() == " ".join(other.split()).casefold()


class CancelRequest(BaseModel):
    requested_by: Identity


class RefundOutcomeEvent(BaseModel):
    """What subscribers are told when a refund ends (``refund.succeeded``, ``.failed``,
    ``.rejected``; EXPIRED and CANCELED go out as ``refund.rejected`` with their status)."""

    request_id: str
    status: RefundStatus
    amount_refunded: int
    currency: str
    customer_id: str
    psp_refund_id: str | None = None
    reason: str | None = None

    @property
    def event_type(self) -> str:
        return {
            RefundStatus.SUCCEEDED: "refund.succeeded",
            RefundStatus.FAILED: "refund.failed",
        }.get(self.status, "refund.rejected")


class RecordDispute(BaseModel):
    dispute_id: str
    payment_keys: list[str]  # every ledger key the payment may be known by
