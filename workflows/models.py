"""The refund contract: what callers send, what they read back, and what activities exchange.

Field names are the stable JSON contract (README, "Contract"); money is an integer in minor
units plus an ISO 4217 currency, never a float.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator


class Psp(StrEnum):
    STRIPE = "stripe"
    PAYPAL = "paypal"
    ADYEN = "adyen"


class RefundReason(StrEnum):
    DUPLICATE = "duplicate"
    FRAUDULENT = "fraudulent"
    REQUESTED_BY_CUSTOMER = "requested_by_customer"
    PRODUCT_NOT_RECEIVED = "product_not_received"
    PRODUCT_UNACCEPTABLE = "product_unacceptable"
    OUT_OF_STOCK = "out_of_stock"
    DELIVERY_FAILED = "delivery_failed"
    OTHER = "other"


class RefundStatus(StrEnum):
    RECEIVED = "RECEIVED"
    VALIDATING = "VALIDATING"
    AWAITING_REVIEW = "AWAITING_REVIEW"
    APPROVED = "APPROVED"
    REFUNDING = "REFUNDING"
    AWAITING_SETTLEMENT = "AWAITING_SETTLEMENT"
    SUCCEEDED = "SUCCEEDED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    CANCELED = "CANCELED"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {
        RefundStatus.SUCCEEDED,
        RefundStatus.REJECTED,
        RefundStatus.FAILED,
        RefundStatus.EXPIRED,
        RefundStatus.CANCELED,
    }
)


def _upper_currency(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


class RefundLineRequest(BaseModel):
    """One order line to refund, and how many of its units."""

    line_id: str = Field(min_length=1)
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
    refund_shipping: bool | None = None  # None: as the refund policy says for the reason

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


# --- What activities exchange with the workflow -------------------------------------------


class PaymentState(StrEnum):
    AUTHORIZED = "authorized"  # money held, not captured: reversed by a void
    CAPTURED = "captured"  # money taken: reversed by a refund
    CANCELED = "canceled"
    UNPAID = "unpaid"  # never completed (failed, awaiting the buyer)


class ProviderRate(BaseModel):
    """The exchange rate a provider applied between a payment's currency and the merchant's
    settlement currency: an amount in the payment's currency times ``rate`` is its value in
    ``settlement_currency`` (Stripe's balance transaction ``exchange_rate``)."""

    settlement_currency: str
    rate: Decimal = Field(gt=0)


class PaymentSnapshot(BaseModel):
    """A payment as the provider reports it, in the provider-neutral shape every adapter gives."""

    psp: Psp
    payment_id: str
    state: PaymentState
    currency: str
    amount_authorized: int
    amount_captured: int
    amount_refunded: int
    disputed: bool = False
    customer: str | None = None
    created: datetime | None = None
    # One payment can have several ids (a Stripe PaymentIntent and its Charge); the ledger
    # limits refunds per payment, so it keys them by the one id the provider adapter chose.
    canonical_id: str | None = None
    captured_at: datetime | None = None  # when unknown, the refund window counts from created
    # The provider's own rate at capture, where it tells one (Stripe); otherwise the ledger
    # values the payment with the configured rates table.
    settlement_rate: ProviderRate | None = None

    @property
    def payment_key(self) -> str:
        return f"{self.psp.value}:{self.canonical_id or self.payment_id}"


class FetchPayment(BaseModel):
    psp: Psp
    payment_id: str


Operation = Literal["refund", "void"]


class RefundPlan(BaseModel):
    """What the workflow decided to do with a validated request."""

    operation: Operation
    amount: int
    currency: str


class ReserveRefund(BaseModel):
    request_id: str
    payment: PaymentSnapshot
    plan: RefundPlan
    reason: RefundReason = RefundReason.REQUESTED_BY_CUSTOMER
    # A return of order lines: the units of each line (and ``#shipping``) the quote took,
    # claimed in the same transaction as the reservation.
    order_id: str | None = None
    units: dict[str, list[int]] = Field(default_factory=dict)


class ReverseAtProvider(BaseModel):
    request_id: str
    payment: PaymentSnapshot
    plan: RefundPlan
    reason: RefundReason
    idempotency_key: str


class PspRefundStatus(StrEnum):
    SUCCEEDED = "succeeded"
    PENDING = "pending"
    FAILED = "failed"


class PspRefund(BaseModel):
    """The provider's answer to a refund or void: its id and whether money has moved."""

    psp_refund_id: str
    status: PspRefundStatus
    amount: int
    currency: str
    failure_reason: str | None = None
    settlement_rate: ProviderRate | None = None  # the provider's rate for the refund, if told
    # A provider with no status poll (Adyen) tells the outcome only by notification: the
    # workflow then waits for it instead of polling, and escalates after this many seconds.
    notification_only_escalate_after_s: int | None = None


class SettlementOverdue(BaseModel):
    """A provider that only notifies (Adyen) has not told a refund's outcome in time."""

    request_id: str
    psp: Psp
    psp_refund_id: str
    amount: int
    currency: str
    waiting_s: int


class FetchRefund(BaseModel):
    psp: Psp
    psp_refund_id: str


class SettleRefund(BaseModel):
    request_id: str
    amount: int | None = None
    settlement_rate: ProviderRate | None = None


class ProviderRefundUpdate(BaseModel):
    """Signal ``provider_update``: what a verified provider webhook said about our refund.

    Sent by the webhook receiver; ``event_id`` is the provider's event id, so a webhook
    delivered many times changes the refund once.
    """

    event_id: str
    psp_refund_id: str
    status: PspRefundStatus
    amount: int
    currency: str
    failure_reason: str | None = None

    def as_outcome(self) -> PspRefund:
        return PspRefund(
            psp_refund_id=self.psp_refund_id,
            status=self.status,
            amount=self.amount,
            currency=self.currency,
            failure_reason=self.failure_reason,
        )


class PaymentDisputed(BaseModel):
    """Signal ``payment_disputed``: the customer disputed the payment at the provider; the
    dispute now decides its money, so a refund still in review must not pay it out again."""

    event_id: str
    dispute_id: str


class CompensateRefund(BaseModel):
    """A refund the provider failed after it had succeeded (and the ledger had posted it)."""

    request_id: str
    event_id: str
    psp_refund_id: str
    amount: int
    currency: str
    failure_reason: str | None = None


class LateSettlement(BaseModel):
    """The provider's final word on a refund whose workflow had ended without it."""

    request_id: str
    event_id: str
    psp_refund_id: str
    status: PspRefundStatus
    amount: int
    currency: str
    failure_reason: str | None = None
    settlement_rate: ProviderRate | None = None


class LateSettlementResult(BaseModel):
    request_id: str
    action: Literal["posted", "released", "nothing kept"]
    transfer_id: str | None = None


class LateFailureResult(BaseModel):
    request_id: str
    compensation_transfer_id: str | None  # None when the refund had never been posted
    amount: int
    currency: str


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
