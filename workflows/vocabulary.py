"""The refund service's words: providers, reasons and statuses, shared by every model."""

from __future__ import annotations

from enum import StrEnum


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
