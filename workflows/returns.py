"""Plan and reserve a refund: for a return of order lines, quote them first.

The quote is an activity (it reads the order and the units earlier refunds hold), so the figures
the workflow decided on are in its history. The reservation then claims exactly the quoted units
in the same transaction as the ledger reservation; when another refund of the same order took
one of them in between (``QuoteStale``), the lines are quoted again on what is left.
"""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.currencies import format_amount
    from workflows.models import (
        PaymentSnapshot,
        RefundLineRequest,
        RefundPlan,
        RefundRequest,
        ReserveRefund,
    )
    from workflows.orders import RefundQuote
    from workflows.rules import Refusal, plan_refund
    from workflows.steps import StepFailed, local_step

QUOTE_ATTEMPTS = 3


class QuoteOrder(BaseModel):
    """Input of the ``quote_refund`` activity: the lines of the refund's order, and the payment
    the refund is against (the order must be paid by it, in its currency)."""

    request_id: str
    order_id: str
    lines: list[RefundLineRequest]
    reason: str
    refund_shipping: bool | None = None
    payment: PaymentSnapshot


async def plan_and_reserve(request: RefundRequest, payment: PaymentSnapshot) -> RefundPlan:
    """The plan for the request, reserved in the ledger (and its order units claimed)."""
    for attempt in range(1, QUOTE_ATTEMPTS + 1):
        quote = await _quote(request, payment) if request.lines is not None else None
        plan = (
            _plan_of_quote(request, payment, quote)
            if quote is not None
            else plan_refund(request, payment)
        )
        reservation = ReserveRefund(
            request_id=request.request_id,
            payment=payment,
            plan=plan,
            reason=request.reason,
            order_id=request.order_id if quote is not None else None,
            units=quote.taken() if quote is not None else {},
        )
        try:
            await local_step("reserve_refund", reservation, type(None))
        except StepFailed as failed:
            if failed.error_type != "QuoteStale" or attempt == QUOTE_ATTEMPTS:
                raise
            continue
        return plan
    raise AssertionError("unreachable")


async def _quote(request: RefundRequest, payment: PaymentSnapshot) -> RefundQuote:
    assert request.order_id is not None and request.lines is not None  # see rules
    asked = QuoteOrder(
        request_id=request.request_id,
        order_id=request.order_id,
        lines=request.lines,
        reason=request.reason.value,
        refund_shipping=request.refund_shipping,
        payment=payment,
    )
    return await local_step("quote_refund", asked, RefundQuote)


def _plan_of_quote(
    request: RefundRequest, payment: PaymentSnapshot, quote: RefundQuote
) -> RefundPlan:
    money = quote.currency
    if request.amount is not None and request.amount != quote.total:
        raise Refusal(
            f"amount {format_amount(request.amount, money)} disagrees with the quote for "
            f"these lines of order {quote.order_id}: {format_amount(quote.total, money)} "
            f"({_parts(quote)}); send the quoted amount or leave amount out"
        )
    return plan_refund(request.model_copy(update={"amount": quote.total}), payment)


def _parts(quote: RefundQuote) -> str:
    money = quote.currency
    parts = [
        f"lines {format_amount(sum(line.amount for line in quote.lines), money)}",
        f"tax {format_amount(sum(line.tax for line in quote.lines), money)}",
    ]
    if quote.refunds_shipping:
        parts.append(f"shipping {format_amount(quote.shipping + quote.shipping_tax, money)}")
    if quote.restocking_fee:
        parts.append(f"restocking fee -{format_amount(quote.restocking_fee, money)}")
    return ", ".join(parts)
