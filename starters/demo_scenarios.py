"""The scenarios ``refunds demo`` runs, in turn: each a payment and the refund asked of it.

A scenario with ``lines`` is a return of the shop's sample order (``deploy.sandboxes.
order_shop``): the shop pays the order's total and sends the signed ``order.created`` event,
then asks the refund of those lines, the amount left out (the service quotes it) or, with
``off_quote``, an amount that disagrees with the quote. A scenario with ``order_of`` returns
more of the order of that earlier scenario, once the earlier refund has ended.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploy.sandboxes.adyen_state import VISA as ADYEN_CARD
from deploy.sandboxes.paypal_objects import NORMAL_CARD as PAYPAL_CARD
from deploy.sandboxes.paypal_objects import PENDING_REFUND_CARD as PAYPAL_PENDING
from workflows.models import Psp, RefundReason, RefundStatus


@dataclass(frozen=True)
class Scenario:
    name: str
    currency: str
    paid: int  # for a return of order lines: 0, the order's total is paid
    refund: int | None  # None: all that is refundable (or, with lines, the quote)
    expected: RefundStatus
    capture: bool = True
    payment_method: str = "pm_card_visa"
    reason: RefundReason = RefundReason.REQUESTED_BY_CUSTOMER
    unknown_payment: bool = False
    review: str | None = None  # what the demo's reviewers do: approve, dual, partial, ...
    psp: Psp = Psp.STRIPE
    lines: tuple[tuple[str, int], ...] = ()  # (line id, units) of the sample order returned
    refund_shipping: bool | None = None  # None: as the refund policy says for the reason
    order_of: str | None = None  # the earlier scenario whose order this one returns more of
    off_quote: int = 0  # asks for the quote plus this (0: leaves the amount to the quote)

    @property
    def returns_lines(self) -> bool:
        return bool(self.lines)


S, R = RefundStatus.SUCCEEDED, RefundStatus.REJECTED
PAYPAL, ADYEN = Psp.PAYPAL, Psp.ADYEN
UNACCEPTABLE = RefundReason.PRODUCT_UNACCEPTABLE
SCENARIOS = (
    Scenario("full refund", "USD", 4999, None, S),
    Scenario("PayPal full refund", "EUR", 4200, None, S, payment_method=PAYPAL_CARD, psp=PAYPAL),
    Scenario("Adyen full refund", "EUR", 5100, None, S, payment_method=ADYEN_CARD, psp=ADYEN),
    Scenario("high value, approved", "USD", 60000, None, S, review="approve"),
    Scenario("partial refund", "EUR", 12000, 3500, S),
    Scenario("void before capture", "USD", 2500, None, S, capture=False),
    Scenario("PayPal void", "USD", 1800, None, S, False, PAYPAL_CARD, psp=PAYPAL),
    Scenario("Adyen cancel", "EUR", 3300, None, S, False, ADYEN_CARD, psp=ADYEN),
    Scenario("over-refund attempt", "USD", 1500, 2000, R),
    Scenario("rejected in review", "USD", 70000, None, R, review="reject"),
    Scenario("unknown payment", "USD", 0, 1000, R, unknown_payment=True),
    Scenario("zero-decimal currency", "JPY", 3000, None, S),
    Scenario("dual approval", "EUR", 250000, None, S, review="dual"),
    Scenario("disputed payment", "GBP", 8000, 8000, R, payment_method="pm_card_createDispute"),
    Scenario("approved for less", "USD", 80000, None, S, review="partial"),
    Scenario("duplicate charge", "GBP", 1999, None, S, reason=RefundReason.DUPLICATE),
    Scenario("review expires", "USD", 65000, None, RefundStatus.EXPIRED, review="expire"),
    Scenario("settled by webhook", "EUR", 3100, None, S, payment_method="pm_card_pendingRefund"),
    Scenario("PayPal partial refund", "USD", 9000, 2500, S, payment_method=PAYPAL_CARD, psp=PAYPAL),
    Scenario("Adyen partial refund", "GBP", 7000, 2000, S, payment_method=ADYEN_CARD, psp=ADYEN),
    Scenario("PayPal pending refund", "EUR", 2700, None, S, True, PAYPAL_PENDING, psp=PAYPAL),
    Scenario("Adyen over-refund", "EUR", 1500, 2000, R, payment_method=ADYEN_CARD, psp=ADYEN),
    # Returns of order lines: the service quotes each (price after discount, tax as charged,
    # shipping as the policy says for the reason) and refunds exactly the quote.
    Scenario("line-item return", "USD", 0, None, S, lines=(("L1", 1), ("L2", 2))),
    Scenario(
        "out of stock +shipping",
        "EUR",
        0,
        None,
        S,
        reason=RefundReason.OUT_OF_STOCK,
        lines=(("L3", 1),),
    ),
    Scenario(
        "whole order, part 1", "JPY", 0, None, S, reason=UNACCEPTABLE, lines=(("L1", 2), ("L2", 1))
    ),
    Scenario(
        "whole order, part 2",
        "JPY",
        0,
        None,
        S,
        reason=UNACCEPTABLE,
        lines=(("L2", 2), ("L3", 1)),
        refund_shipping=True,
        order_of="whole order, part 1",
    ),
    Scenario(
        "PayPal line return",
        "EUR",
        0,
        None,
        S,
        payment_method=PAYPAL_CARD,
        psp=PAYPAL,
        lines=(("L2", 3),),
    ),
    Scenario(
        "Adyen line return",
        "GBP",
        0,
        None,
        S,
        payment_method=ADYEN_CARD,
        psp=ADYEN,
        lines=(("L1", 1), ("L3", 1)),
    ),
    Scenario("amount off the quote", "USD", 0, None, R, lines=(("L1", 1),), off_quote=100),
)
