"""Deterministic decisions the refund workflow takes on what activities reported.

Pure functions of their inputs, so the decision is replay-safe and each one can be read off the
workflow's history (the activity result it was taken on is recorded there).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from workflows.currencies import format_amount, is_known_currency
from workflows.models import (
    PaymentSnapshot,
    PaymentState,
    Psp,
    RefundPlan,
    RefundReason,
    RefundRequest,
)


class Refusal(Exception):
    """A request that cannot be honoured; the refund ends REJECTED with this message."""


MAX_AMOUNT = 10**15  # minor units; more than any payment, and safe for every store it meets


def is_opaque_id(value: str) -> bool:
    """An id fit for a plaintext search attribute: no email address, no spaces (names)."""
    return bool(value) and "@" not in value and not any(ch.isspace() for ch in value)


def request_problem(request: RefundRequest, workflow_id: str) -> str | None:
    """What is wrong with the request on its face, before any provider is asked."""
    if workflow_id != f"refund-{request.request_id}":
        return (
            f"workflow id {workflow_id!r} must be 'refund-{request.request_id}': the request id "
            "is the refund's idempotency key"
        )
    if request.amount is not None and request.amount <= 0:
        return f"amount must be a positive integer in minor units, got {request.amount}"
    if request.amount is not None and request.amount > MAX_AMOUNT:
        return f"amount {request.amount} is larger than any payment"
    if not is_opaque_id(request.customer_id):
        return (
            "customer_id must be an opaque id such as cus_123, since it is indexed in "
            "plaintext: no email addresses or spaces"
        )
    texts = [request.request_id, request.payment_id, request.customer_id, request.requested_by]
    texts += [request.order_id or "", *request.metadata.keys(), *request.metadata.values()]
    texts += [line.line_id for line in request.lines or []]
    if any("\x00" in text for text in texts):
        return "text fields may not contain the NUL character (\\x00)"
    if request.lines is not None and not request.order_id:
        return "lines name an order's lines: order_id is needed with them"
    if not is_known_currency(request.currency):
        return f"unknown currency {request.currency!r}: expected an ISO 4217 code such as USD"
    return None


def plan_refund(request: RefundRequest, payment: PaymentSnapshot) -> RefundPlan:
    """Refund a captured payment, void an authorised one; refuse what cannot be reversed."""
    if payment.currency != request.currency:
        raise Refusal(
            f"currency mismatch: the request is in {request.currency} "
            f"but payment {payment.payment_id} is in {payment.currency}"
        )
    if payment.disputed:
        raise Refusal(
            f"payment {payment.payment_id} is disputed: the dispute decides its money, "
            "a refund would pay the customer twice"
        )
    if payment.state is PaymentState.AUTHORIZED:
        return _plan_void(request, payment)
    if payment.state is not PaymentState.CAPTURED:
        raise Refusal(f"payment {payment.payment_id} is {payment.state.value}: nothing to refund")
    refundable = payment.amount_captured - payment.amount_refunded
    if refundable <= 0:
        raise Refusal(f"payment {payment.payment_id} is already fully refunded")
    amount = refundable if request.amount is None else request.amount
    if amount > refundable:
        raise Refusal(
            f"amount {format_amount(amount, payment.currency)} is above what is still refundable "
            f"on payment {payment.payment_id}: {format_amount(refundable, payment.currency)} "
            f"(captured {format_amount(payment.amount_captured, payment.currency)}, "
            f"already refunded {format_amount(payment.amount_refunded, payment.currency)})"
        )
    return RefundPlan(operation="refund", amount=amount, currency=payment.currency)


def _plan_void(request: RefundRequest, payment: PaymentSnapshot) -> RefundPlan:
    # An authorisation is released whole: a partial void would leave a capture the shop
    # did not ask for, so only the full amount (or no amount) is accepted.
    held = payment.amount_authorized
    if request.amount is not None and request.amount != held:
        raise Refusal(
            f"payment {payment.payment_id} is only authorised "
            f"({format_amount(held, payment.currency)}); it can only be voided whole, "
            f"not refunded by {format_amount(request.amount, payment.currency)}"
        )
    return RefundPlan(operation="void", amount=held, currency=payment.currency)


def idempotency_key(request_id: str, operation: str) -> str:
    """The provider key for one operation of one refund: stable across every retry."""
    return f"refund-{request_id}-{operation}"


def undecodable_request(data: dict[str, Any], workflow_id: str) -> RefundRequest:
    """A stand-in for a start input that is not a valid RefundRequest, so the refund can end
    REJECTED with its problem and still answer queries with what it was given."""

    def text(name: str, default: str = "") -> str:
        value = data.get(name)
        return value if isinstance(value, str) else default

    return RefundRequest.model_construct(
        request_id=text("request_id", workflow_id.removeprefix("refund-")),
        psp=Psp.STRIPE,
        payment_id=text("payment_id"),
        amount=None,
        currency=text("currency").upper(),
        reason=RefundReason.OTHER,
        customer_id=text("customer_id"),
        requested_by=text("requested_by"),
        order_id=None,
        metadata={},
    )


def describe_invalid(error: ValidationError) -> str:
    parts = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "input"
        parts.append(f"{where}: {problem['msg']}")
    return "invalid refund request: " + "; ".join(parts)
