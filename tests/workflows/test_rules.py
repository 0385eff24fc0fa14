"""The workflow's pure decisions: what is refundable, what is refused and why."""

from __future__ import annotations

import pytest

from workflows.currencies import format_amount
from workflows.models import PaymentSnapshot, PaymentState, Psp, RefundRequest
from workflows.rules import Refusal, idempotency_key, plan_refund, request_problem


def payment(**fields: object) -> PaymentSnapshot:
    values: dict[str, object] = {
        "psp": Psp.STRIPE,
        "payment_id": "pi_1",
        "state": PaymentState.CAPTURED,
        "currency": "USD",
        "amount_authorized": 0,
        "amount_captured": 10000,
        "amount_refunded": 2500,
    }
    values.update(fields)
    return PaymentSnapshot.model_validate(values)


def request(**fields: object) -> RefundRequest:
    values: dict[str, object] = {
        "request_id": "rma-1",
        "psp": "stripe",
        "payment_id": "pi_1",
        "currency": "usd",
        "customer_id": "cus_1",
        "requested_by": "ops",
    }
    values.update(fields)
    return RefundRequest.model_validate(values)


def test_currency_is_accepted_in_either_case_and_answered_upper() -> None:
    assert request(currency="eur").currency == "EUR"


def test_omitted_amount_refunds_all_that_remains() -> None:
    plan = plan_refund(request(), payment())
    assert (plan.operation, plan.amount, plan.currency) == ("refund", 7500, "USD")


def test_exactly_the_remainder_is_allowed_one_unit_more_is_not() -> None:
    assert plan_refund(request(amount=7500), payment()).amount == 7500
    with pytest.raises(Refusal, match=r"75\.01 USD is above .* 75\.00 USD"):
        plan_refund(request(amount=7501), payment())


def test_authorised_payment_is_voided_whole() -> None:
    held = payment(
        state=PaymentState.AUTHORIZED, amount_authorized=4000, amount_captured=0, amount_refunded=0
    )
    assert plan_refund(request(), held).operation == "void"
    with pytest.raises(Refusal, match="only be voided whole"):
        plan_refund(request(amount=1000), held)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"state": PaymentState.CANCELED}, "is canceled"),
        ({"state": PaymentState.UNPAID}, "is unpaid"),
        ({"amount_refunded": 10000}, "already fully refunded"),
        ({"disputed": True}, "disputed"),
        ({"currency": "EUR"}, "currency mismatch"),
    ],
)
def test_payments_that_cannot_be_refunded_say_why(changes: dict[str, object], words: str) -> None:
    with pytest.raises(Refusal, match=words):
        plan_refund(request(), payment(**changes))


def test_request_problems_before_any_provider_is_asked() -> None:
    wid = "refund-rma-1"
    assert request_problem(request(amount=0), wid) is not None
    assert request_problem(request(amount=-1), wid) is not None
    assert "larger than any payment" in (request_problem(request(amount=2**63), wid) or "")
    assert "XXX" in (request_problem(request(currency="xxx"), wid) or "")
    assert request_problem(request(amount=1), wid) is None
    assert "must be 'refund-rma-1'" in (request_problem(request(amount=1), "refund-x") or "")


def test_amounts_format_by_the_currency_minor_unit() -> None:
    assert format_amount(12345, "usd") == "123.45 USD"
    assert format_amount(500, "JPY") == "500 JPY"
    assert format_amount(1005, "KWD") == "1.005 KWD"


def test_idempotency_key_is_stable_per_refund_and_operation() -> None:
    assert idempotency_key("rma-1", "refund") == idempotency_key("rma-1", "refund")
    assert idempotency_key("rma-1", "refund") != idempotency_key("rma-1", "void")


def test_a_returned_line_is_named_as_the_order_names_it_whatever_the_spacing() -> None:
    from workflows.models import RefundLineRequest

    assert RefundLineRequest(line_id=" L1 ", quantity=1).line_id == "L1"
