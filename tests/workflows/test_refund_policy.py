"""The refund policy's pure checks: each refusal says what the policy is and what was asked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from workflows.models import RefundReason
from workflows.refund_policy import (
    DEFAULT_SHIPPING,
    RefundPolicy,
    ShippingRule,
    count_refusal,
    reason_refusal,
    window_refusal,
)

CAPTURED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_every_reason_has_a_default_shipping_rule() -> None:
    assert set(DEFAULT_SHIPPING) == set(RefundReason)
    policy = RefundPolicy()
    assert policy.shipping_rule("requested_by_customer") is ShippingRule.NEVER
    assert policy.shipping_rule("out_of_stock") is ShippingRule.REFUND
    assert policy.shipping_rule("product_unacceptable") is ShippingRule.ON_REQUEST
    # A reason the policy does not name is refunded shipping on request.
    assert RefundPolicy(shipping={}).shipping_rule("duplicate") is ShippingRule.ON_REQUEST
    assert policy.restocking_bps("other") == 0


def test_an_allowed_reason_passes() -> None:
    assert reason_refusal(RefundPolicy(), RefundReason.OTHER) is None
    strict = RefundPolicy(allowed_reasons=[RefundReason.DUPLICATE])
    assert reason_refusal(strict, RefundReason.DUPLICATE) is None


def test_a_reason_the_policy_does_not_accept_is_refused_with_the_accepted_ones() -> None:
    strict = RefundPolicy(allowed_reasons=[RefundReason.DUPLICATE, RefundReason.OUT_OF_STOCK])
    assert reason_refusal(strict, RefundReason.REQUESTED_BY_CUSTOMER) == (
        "reason 'requested_by_customer' is not accepted by the refund policy "
        "(REFUNDS_ALLOWED_REASONS: duplicate, out_of_stock)"
    )
    nothing = RefundPolicy(allowed_reasons=[])
    assert reason_refusal(nothing, RefundReason.OTHER) == (
        "reason 'other' is not accepted by the refund policy (REFUNDS_ALLOWED_REASONS: none)"
    )


def test_the_window_edge_itself_is_inside_the_window() -> None:
    policy = RefundPolicy(window_days=30)
    edge = CAPTURED + timedelta(days=30)
    assert window_refusal(policy, CAPTURED, edge, "pi_1") is None
    assert window_refusal(policy, CAPTURED, CAPTURED, "pi_1") is None


def test_just_past_the_window_is_refused() -> None:
    policy = RefundPolicy(window_days=30)
    just_past = CAPTURED + timedelta(days=30, microseconds=1)
    assert window_refusal(policy, CAPTURED, just_past, "pi_1") == (
        "payment pi_1 was captured on 2026-03-01, more than 30 days ago (30 days): "
        "the refund window is 30 days (REFUNDS_REFUND_WINDOW_DAYS)"
    )
    a_day_late = CAPTURED + timedelta(days=31, hours=1)
    refusal = window_refusal(policy, CAPTURED, a_day_late, "pi_1")
    assert refusal is not None
    assert "more than 30 days ago (31 days and 1 hours)" in refusal


def test_no_window_or_no_capture_time_never_refuses() -> None:
    long_after = CAPTURED + timedelta(days=10_000)
    assert window_refusal(RefundPolicy(window_days=None), CAPTURED, long_after, "pi_1") is None
    assert window_refusal(RefundPolicy(window_days=1), None, long_after, "pi_1") is None


# The settings accept any positive number of days (workers.money_settings), but one past what a
# timedelta holds (999 999 999 days) makes this check raise OverflowError on every refund.
def test_a_window_longer_than_a_timedelta_is_refused_as_a_setting() -> None:
    with pytest.raises(ValidationError, match="window_days"):
        RefundPolicy(window_days=10**10)
    policy = RefundPolicy(window_days=36_500)
    assert window_refusal(policy, CAPTURED, CAPTURED + timedelta(days=1), "pi_1") is None


def test_refunds_below_the_limit_pass() -> None:
    policy = RefundPolicy(max_refunds_per_payment=3)
    assert count_refusal(policy, 0, "pi_1") is None
    assert count_refusal(policy, 2, "pi_1") is None
    assert count_refusal(RefundPolicy(max_refunds_per_payment=None), 10_000, "pi_1") is None


def test_the_refund_that_would_pass_the_limit_is_refused() -> None:
    policy = RefundPolicy(max_refunds_per_payment=3)
    assert count_refusal(policy, 3, "pi_1") == (
        "payment pi_1 already has 3 refunds: the policy allows at most 3 per payment "
        "(REFUNDS_MAX_REFUNDS_PER_PAYMENT)"
    )
    assert count_refusal(policy, 4, "pi_1") is not None
