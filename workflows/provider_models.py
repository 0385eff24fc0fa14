"""What the refund workflow and its activities exchange: payments, plans, provider outcomes.

Not part of the public start/result contract (``workflows.models``), but recorded in every
refund's history, so fields are only ever added with defaults.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from workflows.vocabulary import Psp, RefundReason


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
