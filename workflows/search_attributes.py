"""Search attributes engineers filter refunds by in the Temporal UI (never personal data)."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

REFUND_STATUS = SearchAttributeKey.for_keyword("RefundStatus")
REFUND_AMOUNT = SearchAttributeKey.for_int("RefundAmount")
PSP = SearchAttributeKey.for_keyword("Psp")
CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
RISK_SCORE = SearchAttributeKey.for_int("RiskScore")
REVIEW_DEADLINE = SearchAttributeKey.for_datetime("ReviewDeadline")
PAYMENT_ID = SearchAttributeKey.for_keyword("PaymentId")  # the provider's opaque payment id

ALL_KEYS = (REFUND_STATUS, REFUND_AMOUNT, PSP, CUSTOMER_ID, RISK_SCORE, REVIEW_DEADLINE, PAYMENT_ID)
