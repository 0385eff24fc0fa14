"""The quote arithmetic as a finance team checks it: every quote's parts add up to its total,
refunding every unit in any sequence of partial refunds (with releases in between) returns what
was paid to the minor unit, no line goes beyond its quantity, and shipping follows the policy.

The property tests play random orders (JPY, USD and KWD; 1-6 lines of 1-50 units at up to
10^7 minor units, discounts, 0-2 taxes per line and on shipping) through random sequences of
partial refunds, refusals and releases, against a book of the refunds still live. Each quote is
compared with shares computed independently here (exact fractions, rounded half up), and with the
invariants that need no formula at all. The example tests below them are small enough to check by
hand.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from workflows.models import Psp, RefundLineRequest, RefundReason
from workflows.orders import (
    SHIPPING_LINE,
    Order,
    OrderLine,
    QuoteInput,
    RefundQuote,
    Shipping,
    TakenUnits,
    TaxLine,
)
from workflows.quotes import QuoteRefused, quote_refund, tax_as_charged
from workflows.refund_policy import RefundPolicy, ShippingRule

QUICK = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CURRENCIES = ["JPY", "USD", "KWD"]
JURISDICTIONS = ["US-CA", "US-CA-LA", "DE", "JP", "KW", "GB"]
NO_FEES = RefundPolicy()


# -- the arithmetic, written out independently: exact fractions, rounded half up ---------------


def half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def unit_share(total: int, unit: int, quantity: int) -> int:
    """Unit ``unit`` of ``quantity``: a(unit) - a(unit - 1), a(i) = round-half-up(total*i/q)."""
    return half_up(Fraction(total * unit, quantity)) - half_up(
        Fraction(total * (unit - 1), quantity)
    )


def share(total: int, units: list[int], quantity: int) -> int:
    return sum(unit_share(total, unit, quantity) for unit in units)


def line_value(line: OrderLine, units: list[int]) -> int:
    """What the given units of a line were paid, with every tax."""
    parts = [line.net, *(tax.amount for tax in line.taxes)]
    return sum(share(part, units, line.quantity) for part in parts)


def fee_of(amount: int, bps: int) -> int:
    return half_up(Fraction(amount * bps, 10_000))


def runs(units: list[int]) -> int:
    """How many blocks of consecutive unit numbers ``units`` is made of."""
    ordered = sorted(units)
    return sum(1 for i, unit in enumerate(ordered) if i == 0 or unit != ordered[i - 1] + 1)


def figure(value: int, message: str) -> bool:
    """``value`` appears in ``message`` as a number of its own (not inside another)."""
    return re.search(rf"(?<!\d){value}(?!\d)", message) is not None


# -- random orders and policies ------------------------------------------------------------------

LINE_IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,9}", fullmatch=True)
RATES = st.decimals(min_value=0, max_value=Decimal("0.25"), places=4)


def money(maximum: int) -> st.SearchStrategy[int]:
    # Small amounts often: that is where a split over up to 50 units rounds the most.
    return st.one_of(st.integers(1, 3), st.integers(0, 200), st.integers(0, maximum))


@st.composite
def taxes_on(draw: st.DrawFn, net: int) -> list[TaxLine]:
    # Now and then two taxes of one jurisdiction (a state's and a special district's rate).
    places = draw(st.lists(st.sampled_from(JURISDICTIONS), max_size=2))
    taxes = []
    for jurisdiction in places:
        rate = draw(RATES)
        amount = draw(st.one_of(st.just(tax_as_charged(net, rate)), money(10**7)))
        taxes.append(TaxLine(jurisdiction=jurisdiction, rate=rate, amount=amount))
    return taxes


@st.composite
def order_lines(draw: st.DrawFn, line_id: str) -> OrderLine:
    quantity = draw(st.one_of(st.integers(1, 4), st.integers(1, 50)))
    unit_price = draw(money(10**7))
    gross = quantity * unit_price
    discount = draw(st.one_of(st.just(0), st.just(gross), st.integers(0, gross)))
    return OrderLine(
        line_id=line_id,
        sku=f"SKU-{line_id}",
        quantity=quantity,
        unit_price=unit_price,
        discount=discount,
        taxes=draw(taxes_on(gross - discount)),
    )


@st.composite
def orders(draw: st.DrawFn, most_lines: int = 6) -> Order:
    count = draw(st.integers(1, most_lines))
    ids = draw(st.lists(LINE_IDS, min_size=count, max_size=count, unique=True))
    shipping = draw(money(10**6))
    return Order(
        order_id="ord-1",
        psp=Psp.STRIPE,
        payment_id="pi_1",
        currency=draw(st.sampled_from(CURRENCIES)),
        lines=[draw(order_lines(line_id)) for line_id in ids],
        shipping=Shipping(amount=shipping, taxes=draw(taxes_on(shipping))),
    )


REASONS = st.sampled_from(list(RefundReason))
policies = st.builds(
    RefundPolicy,
    shipping=st.dictionaries(REASONS, st.sampled_from(list(ShippingRule))),
    restocking_fee_bps=st.dictionaries(
        REASONS, st.one_of(st.integers(0, 10_000), st.sampled_from([0, 1, 1250, 5000, 10_000]))
    ),
)
fee_free_policies = st.builds(
    RefundPolicy, shipping=st.dictionaries(REASONS, st.sampled_from(list(ShippingRule)))
)


# -- the book of live refunds, and one attempt at a quote checked against it ---------------------


@dataclass
class Book:
    order: Order
    policy: RefundPolicy
    live: list[RefundQuote] = field(default_factory=list)

    def taken(self) -> TakenUnits:
        taken: dict[str, list[int]] = {}
        for quote in self.live:
            for line_id, units in quote.taken().items():
                held = taken.setdefault(line_id, [])
                assert not set(held) & set(units), f"two live refunds hold units of {line_id}"
                held.extend(units)
        return taken

    def free(self, line: OrderLine) -> list[int]:
        held = set(self.taken().get(line.line_id, []))
        return [unit for unit in range(1, line.quantity + 1) if unit not in held]

    def shipping_free(self) -> bool:
        return 1 not in self.taken().get(SHIPPING_LINE, [])

    def quoted(self) -> int:
        """What the live refunds took of the order: what they return and the fees they keep."""
        return sum(quote.total + quote.restocking_fee for quote in self.live)

    def left(self) -> int:
        """What the units and shipping no live refund holds were paid."""
        lines = sum(line_value(line, self.free(line)) for line in self.order.lines)
        return lines + (self.order.shipping.paid if self.shipping_free() else 0)

    def ask(self, asked: QuoteInput) -> RefundQuote:
        return quote_refund(self.order, self.taken(), asked, self.policy)


def attempt(book: Book, asked: QuoteInput) -> RefundQuote | None:
    """Quote ``asked`` (valid lines only); check the quote, or that its refusal was due."""
    order, policy = book.order, book.policy
    reason = RefundReason(asked.reason)
    rule = policy.shipping_rule(reason.value)
    wanted = asked.refund_shipping
    shipping_free = book.shipping_free()

    if wanted and rule is ShippingRule.NEVER:
        with pytest.raises(QuoteRefused) as refused:
            book.ask(asked)
        assert reason.value in str(refused.value)
        assert "REFUNDS_SHIPPING_REFUND" in str(refused.value)
        event("refused: " + "shipping never")
        return None
    if wanted and not shipping_free:
        with pytest.raises(QuoteRefused, match="already refunded") as refused:
            book.ask(asked)
        assert order.order_id in str(refused.value)
        event("refused: " + "shipping twice")
        return None

    with_shipping = (
        order.shipping.paid > 0
        and shipping_free
        and wanted is not False
        and (rule is ShippingRule.REFUND or (rule is ShippingRule.ON_REQUEST and bool(wanted)))
    )
    expected_lines = {}
    for request in asked.lines:
        line = order.line(request.line_id)
        assert line is not None
        free = book.free(line)
        expected_lines[line.line_id] = (line, free[: request.quantity], free[request.quantity :])
    amounts = sum(
        share(line.net, units, line.quantity) for line, units, _ in expected_lines.values()
    )
    value = sum(line_value(line, units) for line, units, _ in expected_lines.values())
    value += order.shipping.paid if with_shipping else 0
    bps = policy.restocking_bps(reason.value)
    fee = fee_of(amounts, bps)

    if value - fee <= 0:
        with pytest.raises(QuoteRefused, match="nothing to refund") as refused:
            book.ask(asked)
        assert order.order_id in str(refused.value)
        event("refused: " + "nothing to refund")
        return None

    before = book.quoted()
    quote = book.ask(asked)

    # Its parts add up exactly, and each line's tax is the sum of its taxes.
    assert (
        sum(line.amount + line.tax for line in quote.lines)
        + quote.shipping
        + quote.shipping_tax
        - quote.restocking_fee
        == quote.total
    )
    for quoted in quote.lines:
        assert quoted.tax == sum(tax.amount for tax in quoted.taxes)
        assert quoted.total == quoted.amount + quoted.tax
    assert quote.total == value - fee
    assert quote.restocking_fee == fee
    assert quote.restocking_fee_bps == bps
    assert (quote.currency, quote.reason, quote.order_id) == (
        order.currency,
        reason,
        order.order_id,
    )

    # The units are the lowest still free, each carrying its share of the price and each tax.
    assert [line.line_id for line in quote.lines] == [r.line_id for r in asked.lines]
    for quoted, request in zip(quote.lines, asked.lines, strict=True):
        line, units, rest = expected_lines[quoted.line_id]
        q = line.quantity
        assert quoted.quantity == request.quantity == len(quoted.units)
        assert quoted.units == units
        assert quoted.sku == line.sku
        assert quoted.amount == share(line.net, units, q)
        assert [(t.jurisdiction, t.rate) for t in quoted.taxes] == [
            (t.jurisdiction, t.rate) for t in line.taxes
        ]
        assert [t.amount for t in quoted.taxes] == [share(t.amount, units, q) for t in line.taxes]
        assert quoted.refundable_quantity_before == len(units) + len(rest)
        assert quoted.refundable_quantity_after == len(rest)
        assert quoted.refundable_amount_after == line_value(line, rest)

        # k of q units get their exact proportional share of each part to within a minor unit
        # when the units are consecutive (always, unless a release left a gap), and to within
        # one minor unit per block of consecutive units otherwise.
        k = len(units)
        parts = [(line.net, quoted.amount)] + [
            (tax.amount, got.amount) for tax, got in zip(line.taxes, quoted.taxes, strict=True)
        ]
        for charged, got in parts:
            error = abs(got - Fraction(charged * k, q))
            assert error < max(1, runs(units)), (charged, k, q, units, got)
            if error >= 1:
                event("a refund over a gap is a minor unit or more off its share")
        if runs(units) > 1:
            event("a refund takes units either side of a gap")

    # Shipping: all of it, with its taxes, or none.
    assert quote.shipping == (order.shipping.amount if with_shipping else 0)
    assert quote.shipping_tax == (
        sum(tax.amount for tax in order.shipping.taxes) if with_shipping else 0
    )

    # What is left is the order's total less everything the live refunds (this one too) took.
    assert quote.refundable_after == order.total - before - quote.total - quote.restocking_fee

    event(f"quoted in {order.currency}")
    if quote.restocking_fee:
        event("a quote keeps a restocking fee")
    book.live.append(quote)
    check_book(book)
    return quote


def check_book(book: Book) -> None:
    """Across the live refunds: no unit twice, no line beyond its quantity, no tax beyond what
    was charged per jurisdiction, and exactly what was charged once a line is fully refunded."""
    taken = book.taken()
    assert book.quoted() + book.left() == book.order.total
    for line in book.order.lines:
        held = taken.get(line.line_id, [])
        assert len(held) == len(set(held)) <= line.quantity
        assert all(1 <= unit <= line.quantity for unit in held)
        quoted = [ql for quote in book.live for ql in quote.lines if ql.line_id == line.line_id]
        amount = sum(ql.amount for ql in quoted)
        charged: dict[str, int] = {}
        for tax in line.taxes:
            charged[tax.jurisdiction] = charged.get(tax.jurisdiction, 0) + tax.amount
        refunded = dict.fromkeys(charged, 0)
        for ql in quoted:
            for qt in ql.taxes:
                refunded[qt.jurisdiction] += qt.amount
        assert amount <= line.net
        assert all(refunded[place] <= charged[place] for place in charged), (refunded, charged)
        if len(held) == line.quantity:
            assert amount == line.net
            assert refunded == charged
    assert taken.get(SHIPPING_LINE, []) in ([], [1])


# -- playing random sequences --------------------------------------------------------------------


def a_few_of(free: int) -> st.SearchStrategy[int]:
    # Often one or two units: many small refunds, which releases then leave gaps between.
    return st.one_of(st.integers(1, min(2, free)), st.integers(1, free))


def refund_some(book: Book, data: st.DataObject) -> None:
    order = book.order
    open_lines = [line for line in order.lines if book.free(line)]
    # Now and then no line at all: a refund of the shipping alone.
    chosen = data.draw(
        st.lists(
            st.sampled_from(open_lines),
            min_size=data.draw(st.sampled_from([0, 1, 1, 1])),
            unique_by=lambda line: line.line_id,
        )
        if open_lines
        else st.just([])
    )
    requests = [
        RefundLineRequest(line_id=line.line_id, quantity=data.draw(a_few_of(len(book.free(line)))))
        for line in chosen
    ]
    attempt(
        book,
        QuoteInput(
            order_id=order.order_id,
            lines=requests,
            reason=data.draw(REASONS).value,
            refund_shipping=data.draw(st.sampled_from([None, True, False])),
        ),
    )


def refund_a_few(book: Book, data: st.DataObject) -> None:
    """One to three units of one line, under a reason that keeps shipping out of it."""
    open_lines = [line for line in book.order.lines if book.free(line)]
    if not open_lines:
        return
    line = data.draw(st.sampled_from(open_lines))
    quantity = data.draw(st.integers(1, min(3, len(book.free(line)))))
    asked = [RefundLineRequest(line_id=line.line_id, quantity=quantity)]
    reason = data.draw(REASONS).value
    attempt(book, QuoteInput(order_id=book.order.order_id, lines=asked, reason=reason))


def ask_too_many(book: Book, data: st.DataObject) -> None:
    order = book.order
    line = data.draw(st.sampled_from(order.lines))
    free = len(book.free(line))
    too_many = free + data.draw(st.integers(1, 5))
    others = [
        RefundLineRequest(line_id=other.line_id, quantity=1)
        for other in order.lines
        if other.line_id != line.line_id and book.free(other) and data.draw(st.booleans())
    ]
    asked = [*others, RefundLineRequest(line_id=line.line_id, quantity=too_many)]
    with pytest.raises(QuoteRefused) as refused:
        book.ask(QuoteInput(order_id=order.order_id, lines=asked, reason="other"))
    message = str(refused.value)
    assert line.line_id in message
    for number in (too_many, free, line.quantity, line.quantity - free):
        assert figure(number, message), (number, message)
    event("refused: " + "too many")


def ask_unknown_line(book: Book, data: st.DataObject) -> None:
    ids = {line.line_id for line in book.order.lines}
    unknown = data.draw(st.one_of(st.just(SHIPPING_LINE), LINE_IDS).filter(lambda i: i not in ids))
    asked = [RefundLineRequest(line_id=unknown, quantity=1)]
    with pytest.raises(QuoteRefused) as refused:
        book.ask(QuoteInput(order_id=book.order.order_id, lines=asked, reason="other"))
    assert unknown in str(refused.value)
    event("refused: " + "unknown line")


def ask_twice(book: Book, data: st.DataObject) -> None:
    line = data.draw(st.sampled_from(book.order.lines))
    asked = [RefundLineRequest(line_id=line.line_id, quantity=1)] * 2
    with pytest.raises(QuoteRefused) as refused:
        book.ask(QuoteInput(order_id=book.order.order_id, lines=asked, reason="other"))
    assert line.line_id in str(refused.value)
    assert "twice" in str(refused.value)
    event("refused: " + "twice")


def release_one(book: Book, data: st.DataObject) -> None:
    """A refund that did not go through gives its units (and shipping) back."""
    if book.live:
        book.live.pop(data.draw(st.integers(0, len(book.live) - 1)))
        check_book(book)


def play(book: Book, data: st.DataObject, *, releases: bool) -> None:
    moves = [refund_some] * 6 + [ask_too_many, ask_unknown_line, ask_twice]
    if releases:
        moves += [release_one] * 3
    for _ in range(data.draw(st.integers(0, 16))):
        data.draw(st.sampled_from(moves))(book, data)


def refund_everything(book: Book, data: st.DataObject) -> None:
    """Refund every unit still free (and the shipping, under a reason that allows it)."""
    order = book.order
    rest = [
        RefundLineRequest(line_id=line.line_id, quantity=len(book.free(line)))
        for line in order.lines
        if book.free(line)
    ]
    if rest:
        reason = data.draw(REASONS)
        rule = book.policy.shipping_rule(reason.value)
        shipping = rule is not ShippingRule.NEVER and book.shipping_free()
        attempt(
            book,
            QuoteInput(
                order_id=order.order_id, lines=rest, reason=reason.value, refund_shipping=shipping
            ),
        )
    allowing = [
        r for r in RefundReason if book.policy.shipping_rule(r.value) is not ShippingRule.NEVER
    ]
    if book.shipping_free() and order.shipping.paid and allowing:
        reason = data.draw(st.sampled_from(allowing))
        asked = QuoteInput(order_id=order.order_id, reason=reason.value, refund_shipping=True)
        assert attempt(book, asked) is not None


# -- the properties ------------------------------------------------------------------------------


@QUICK
@given(order=orders(), policy=fee_free_policies, data=st.data())
def test_refunding_every_unit_in_any_sequence_returns_exactly_the_order_total(
    order: Order, policy: RefundPolicy, data: st.DataObject
) -> None:
    book = Book(order, policy)
    play(book, data, releases=True)
    refund_everything(book, data)
    shipping_refundable = any(
        policy.shipping_rule(r.value) is not ShippingRule.NEVER for r in RefundReason
    )
    # Whatever no refund could take was worth nothing (a free line without tax), or is the
    # shipping that the policy never refunds.
    assert book.left() == (0 if shipping_refundable else order.shipping.paid)
    assert sum(quote.total for quote in book.live) == order.total - book.left()
    assert all(quote.restocking_fee == 0 for quote in book.live)


@QUICK
@given(order=orders(), policy=policies, data=st.data())
def test_with_restocking_fees_refunds_and_fees_add_up_to_the_order_total(
    order: Order, policy: RefundPolicy, data: st.DataObject
) -> None:
    book = Book(order, policy)
    play(book, data, releases=True)
    refund_everything(book, data)
    refunds = sum(quote.total for quote in book.live)
    fees = sum(quote.restocking_fee for quote in book.live)
    assert refunds + fees + book.left() == order.total
    # Only units whose whole worth a fee would keep (no tax, no shipping) can stay unrefunded.
    for line in order.lines:
        if book.free(line):
            assert line_value(line, book.free(line)) == share(
                line.net, book.free(line), line.quantity
            )


@QUICK
@given(order=orders(most_lines=2), policy=policies, data=st.data())
def test_released_units_go_back_and_are_refunded_again_to_the_same_total(
    order: Order, policy: RefundPolicy, data: st.DataObject
) -> None:
    """Many small refunds of few lines, with releases between: released units leave gaps that
    later refunds fill, and each part of such a refund stays within a minor unit per block."""
    book = Book(order, policy)
    for _ in range(2):
        # Every unit in small refunds; then some of them released, whichever they were.
        for _ in range(60):
            if not any(book.free(line) for line in order.lines):
                break
            refund_a_few(book, data)
        kept = data.draw(st.lists(st.booleans(), min_size=len(book.live), max_size=len(book.live)))
        book.live = [quote for quote, keep in zip(book.live, kept, strict=True) if keep]
        check_book(book)
    refund_everything(book, data)
    assert book.quoted() + book.left() == order.total


@QUICK
@given(order=orders(), policy=policies, data=st.data())
def test_without_releases_every_partial_refund_is_within_a_minor_unit_of_its_share(
    order: Order, policy: RefundPolicy, data: st.DataObject
) -> None:
    book = Book(order, policy)
    play(book, data, releases=False)
    refund_everything(book, data)
    # Without releases a line's free units are always its last ones, so every refund takes one
    # block of consecutive units, and ``attempt`` held each part within one minor unit.
    for quote in book.live:
        assert all(runs(line.units) == 1 for line in quote.lines)


@QUICK
@given(order=orders(), data=st.data())
def test_shipping_follows_the_policy_rule_for_the_reason(order: Order, data: st.DataObject) -> None:
    rule = data.draw(st.sampled_from(list(ShippingRule)))
    reason = data.draw(REASONS)
    book = Book(order, RefundPolicy(shipping={reason: rule}))
    line = order.lines[0]
    wanted = data.draw(st.sampled_from([None, True, False]))
    first = QuoteInput(
        order_id=order.order_id,
        lines=[RefundLineRequest(line_id=line.line_id, quantity=1)],
        reason=reason.value,
        refund_shipping=wanted,
    )
    quote = attempt(book, first)
    if quote is None:
        return
    included = quote.refunds_shipping
    if rule is ShippingRule.NEVER or wanted is False or order.shipping.paid == 0:
        assert not included
    elif rule is ShippingRule.REFUND:
        assert included
    else:
        assert included == bool(wanted)
    if included:
        # Not again: a later refund of the lines leaves it out, and asking for it is refused.
        if book.free(line):
            later_ask = first.model_copy(update={"refund_shipping": None})
            later = attempt(book, later_ask)
            assert later is None or not later.refunds_shipping
        with pytest.raises(QuoteRefused, match="already refunded"):
            book.ask(QuoteInput(order_id=order.order_id, reason=reason.value, refund_shipping=True))
        # Once the refund that took it is released, the shipping is free again.
        book.live = [q for q in book.live if not q.refunds_shipping]
        if rule is ShippingRule.REFUND:
            retry = QuoteInput(order_id=order.order_id, reason=reason.value)
            again = attempt(book, retry)
            assert again is not None
            assert again.shipping + again.shipping_tax == order.shipping.paid


@QUICK
@given(net=st.integers(0, 10**9), rate=st.decimals(min_value=0, max_value=1, places=6))
def test_tax_as_charged_is_the_exact_product_rounded_half_up(net: int, rate: Decimal) -> None:
    assert tax_as_charged(net, rate) == half_up(Fraction(net) * Fraction(rate))


# -- examples to check by hand -------------------------------------------------------------------


def an_order(currency: str, *lines: OrderLine, shipping: Shipping | None = None) -> Order:
    return Order(
        order_id="ord-7",
        psp=Psp.STRIPE,
        payment_id="pi_7",
        currency=currency,
        lines=list(lines),
        shipping=shipping or Shipping(),
    )


def ask(
    line_id: str | None = None,
    quantity: int = 1,
    reason: str = "other",
    refund_shipping: bool | None = None,
) -> QuoteInput:
    lines = [RefundLineRequest(line_id=line_id, quantity=quantity)] if line_id else []
    return QuoteInput(order_id="ord-7", lines=lines, reason=reason, refund_shipping=refund_shipping)


MUGS = OrderLine(
    line_id="L1",
    sku="MUG",
    quantity=3,
    unit_price=1000,  # 10.00
    discount=100,  # 1.00 off the line: 29.00
    taxes=[TaxLine(jurisdiction="US-CA", rate=Decimal("0.0725"), amount=210)],  # 2.1025 -> 2.10
)


def test_three_mugs_refunded_one_at_a_time() -> None:
    # Price after discount 2900 over 3 units: a(1) = round(966.67) = 967, a(2) = round(1933.33)
    # = 1933, a(3) = 2900, so the units carry 967, 966, 967. Tax 210: a = 70, 140, 210, so 70
    # each. Refunds: 9.67 + 0.70 = 10.37, then 9.66 + 0.70 = 10.36, then 10.37: 31.10 in all.
    order = an_order("USD", MUGS)
    assert order.total == 3110
    book = Book(order, NO_FEES)
    expected = [([1], 967, 70, 1037, 2073), ([2], 966, 70, 1036, 1037), ([3], 967, 70, 1037, 0)]
    for units, amount, tax, total, after in expected:
        quote = book.ask(ask("L1"))
        (line,) = quote.lines
        assert (line.units, line.amount, line.tax, line.total) == (units, amount, tax, total)
        assert [(t.jurisdiction, t.amount) for t in line.taxes] == [("US-CA", tax)]
        assert (quote.total, quote.refundable_after) == (total, after)
        book.live.append(quote)
    assert sum(quote.total for quote in book.live) == order.total
    with pytest.raises(QuoteRefused) as refused:
        book.ask(ask("L1"))
    assert str(refused.value) == (
        "line L1 of order ord-7: 1 asked for, but only 0 of its 3 are still refundable "
        "(3 refunded by earlier refunds)"
    )


def test_jpy_two_of_seven_with_the_shipping_then_the_rest() -> None:
    # 7 x 1000 yen - 500 = 6500, tax 10 % = 650; shipping 800 + 80 tax. Total 8030 yen.
    # Two units: a(2) = round(6500 * 2 / 7 = 1857.14) = 1857, tax round(185.71) = 186, and the
    # shipping (out_of_stock refunds it): 1857 + 186 + 880 = 2923. The other five: 6500 - 1857
    # = 4643 and 650 - 186 = 464, 5107 yen, no shipping this time. 2923 + 5107 = 8030.
    jp = Decimal("0.10")
    order = an_order(
        "jpy",
        OrderLine(
            line_id="bento",
            sku="BENTO",
            quantity=7,
            unit_price=1000,
            discount=500,
            taxes=[TaxLine(jurisdiction="JP", rate=jp, amount=tax_as_charged(6500, jp))],
        ),
        shipping=Shipping(amount=800, taxes=[TaxLine(jurisdiction="JP", rate=jp, amount=80)]),
    )
    assert (order.currency, order.total) == ("JPY", 8030)
    book = Book(order, NO_FEES)
    first = book.ask(ask("bento", 2, reason="out_of_stock"))
    assert (first.lines[0].amount, first.lines[0].tax) == (1857, 186)
    assert (first.shipping, first.shipping_tax, first.total) == (800, 80, 2923)
    assert first.refundable_after == 5107
    book.live.append(first)
    rest = book.ask(ask("bento", 5, reason="out_of_stock"))
    assert rest.lines[0].units == [3, 4, 5, 6, 7]
    assert (rest.lines[0].amount, rest.lines[0].tax, rest.shipping) == (4643, 464, 0)
    assert (rest.total, rest.refundable_after) == (5107, 0)


def test_kwd_three_decimals_with_a_restocking_fee() -> None:
    # 7 x 1.000 KWD - 0.100 = 6.900, tax 5 % = 0.345, shipping 1.500: 8.745 KWD in all.
    # A 12.5 % restocking fee for a change of mind (which never refunds shipping).
    # Three units: a(3) = round(6900 * 3 / 7 = 2957.14) = 2957 fils, tax round(147.86) = 148,
    # fee round(2957 * 0.125 = 369.625) = 370: 2957 + 148 - 370 = 2735, 2.735 KWD.
    # The other four: 3943 + 197, fee round(492.875) = 493: 3647. Then the shipping alone under
    # product_not_received: 1500. Refunds 2735 + 3647 + 1500 = 7882, fees 370 + 493 = 863,
    # together 8745.
    kw = Decimal("0.05")
    order = an_order(
        "KWD",
        OrderLine(
            line_id="dates",
            sku="DATES-1KG",
            quantity=7,
            unit_price=1000,
            discount=100,
            taxes=[TaxLine(jurisdiction="KW", rate=kw, amount=tax_as_charged(6900, kw))],
        ),
        shipping=Shipping(amount=1500),
    )
    assert order.total == 8745
    policy = RefundPolicy(restocking_fee_bps={RefundReason.REQUESTED_BY_CUSTOMER: 1250})
    book = Book(order, policy)
    change_of_mind = "requested_by_customer"
    first = book.ask(ask("dates", 3, reason=change_of_mind))
    assert (first.lines[0].amount, first.lines[0].tax) == (2957, 148)
    assert (first.restocking_fee, first.restocking_fee_bps, first.shipping) == (370, 1250, 0)
    assert (first.total, first.refundable_after) == (2735, 5640)
    book.live.append(first)
    second = book.ask(ask("dates", 4, reason=change_of_mind))
    assert (second.lines[0].amount, second.lines[0].tax, second.restocking_fee) == (3943, 197, 493)
    assert (second.total, second.refundable_after) == (3647, 1500)
    book.live.append(second)
    shipping = book.ask(ask(reason="product_not_received"))
    assert (shipping.lines, shipping.shipping, shipping.total, shipping.refundable_after) == (
        [],
        1500,
        1500,
        0,
    )
    book.live.append(shipping)
    assert sum(q.total for q in book.live) + sum(q.restocking_fee for q in book.live) == 8745


def test_a_refund_the_fee_would_swallow_whole_is_refused_in_the_currency() -> None:
    order = an_order("KWD", OrderLine(line_id="pin", sku="PIN", quantity=1, unit_price=1))
    policy = RefundPolicy(restocking_fee_bps={RefundReason.OTHER: 5000})  # 50 % of 1 fils: 1
    with pytest.raises(QuoteRefused) as refused:
        quote_refund(order, {}, ask("pin"), policy)
    assert str(refused.value) == (
        "nothing to refund on order ord-7: the lines and shipping asked for come to 0.001 KWD "
        "and the restocking fee is 0.001 KWD"
    )


@pytest.mark.parametrize(
    ("net", "rate", "tax"),
    [
        (2900, "0.0725", 210),  # 210.25
        (1000, "0.0725", 73),  # 72.5: half up, not to even (72)
        (50, "0.05", 3),  # 2.5
        (30, "0.05", 2),  # 1.5
        (10, "0.04", 0),  # 0.4
        (10, "0.06", 1),  # 0.6
        (1, "0.5", 1),  # 0.5
        (0, "0.2", 0),
        (999, "0", 0),
        (12345, "1", 12345),
    ],
)
def test_tax_as_charged_rounds_half_up(net: int, rate: str, tax: int) -> None:
    assert tax_as_charged(net, Decimal(rate)) == tax


PARCEL = Shipping(
    amount=500, taxes=[TaxLine(jurisdiction="US-CA", rate=Decimal("0.08"), amount=40)]
)


def test_shipping_under_refund_goes_back_with_the_first_refund_only() -> None:
    book = Book(an_order("USD", MUGS, shipping=PARCEL), NO_FEES)
    first = book.ask(ask("L1", reason="out_of_stock"))
    assert (first.shipping, first.shipping_tax, first.total) == (500, 40, 1037 + 540)
    assert first.taken() == {"L1": [1], SHIPPING_LINE: [1]}
    book.live.append(first)
    second = book.ask(ask("L1", reason="out_of_stock"))
    assert (second.shipping, second.shipping_tax, second.total) == (0, 0, 1036)
    with pytest.raises(QuoteRefused) as refused:
        book.ask(ask("L1", reason="out_of_stock", refund_shipping=True))
    assert str(refused.value) == "the shipping of order ord-7 was already refunded"
    # Not wanted, under a rule that would refund it: left out.
    fresh = quote_refund(
        book.order, {}, ask("L1", reason="out_of_stock", refund_shipping=False), NO_FEES
    )
    assert fresh.shipping == 0


def test_shipping_never_refunded_for_a_change_of_mind_refuses_a_request_for_it() -> None:
    order = an_order("USD", MUGS, shipping=PARCEL)
    with pytest.raises(QuoteRefused) as refused:
        quote_refund(
            order, {}, ask("L1", reason="requested_by_customer", refund_shipping=True), NO_FEES
        )
    assert str(refused.value) == (
        "shipping is not refunded for reason 'requested_by_customer' under the refund policy "
        "(REFUNDS_SHIPPING_REFUND)"
    )
    quote = quote_refund(order, {}, ask("L1", reason="requested_by_customer"), NO_FEES)
    assert (quote.shipping, quote.shipping_tax, quote.total) == (0, 0, 1037)


def test_shipping_on_request_only_when_asked() -> None:
    order = an_order("USD", MUGS, shipping=PARCEL)
    unasked = quote_refund(order, {}, ask("L1", reason="product_unacceptable"), NO_FEES)
    assert (unasked.shipping, unasked.refundable_after) == (0, 3110 + 540 - 1037)
    asked = ask("L1", reason="product_unacceptable", refund_shipping=True)
    quote = quote_refund(order, {}, asked, NO_FEES)
    assert (quote.shipping, quote.shipping_tax, quote.total) == (500, 40, 1577)
    with pytest.raises(QuoteRefused, match="already refunded"):
        quote_refund(order, quote.taken(), asked, NO_FEES)


def test_unknown_lines_repeated_lines_and_unknown_reasons_are_refused_by_name() -> None:
    order = an_order("USD", MUGS)
    with pytest.raises(QuoteRefused) as refused:
        quote_refund(order, {}, ask("L9"), NO_FEES)
    assert str(refused.value) == "order ord-7 has no line 'L9' (its lines: L1)"
    twice = QuoteInput(order_id="ord-7", lines=[RefundLineRequest(line_id="L1", quantity=1)] * 2)
    with pytest.raises(QuoteRefused) as refused:
        quote_refund(order, {}, twice, NO_FEES)
    assert str(refused.value) == "line L1 is asked for twice: name each line once"
    with pytest.raises(QuoteRefused, match="unknown reason 'whim'"):
        quote_refund(order, {}, ask("L1", reason="whim"), NO_FEES)
    with pytest.raises(QuoteRefused) as refused:
        quote_refund(order, {}, ask("L1", 4), NO_FEES)
    assert str(refused.value) == (
        "line L1 of order ord-7: 4 asked for, but only 3 of its 3 are still refundable "
        "(0 refunded by earlier refunds)"
    )


def test_a_reason_the_policy_refuses_gets_no_quote() -> None:
    order = an_order("USD", MUGS)
    only_stock = RefundPolicy(allowed_reasons=[RefundReason.OUT_OF_STOCK])
    with pytest.raises(QuoteRefused) as refused:
        quote_refund(order, {}, ask("L1", reason="other"), only_stock)
    assert str(refused.value) == (
        "reason 'other' is not accepted by the refund policy "
        "(REFUNDS_ALLOWED_REASONS: out_of_stock)"
    )


def test_shipping_is_no_line_id() -> None:
    with pytest.raises(ValueError, match="reserved"):
        OrderLine(line_id=SHIPPING_LINE, sku="BOX", quantity=1, unit_price=1)


def test_a_refund_over_a_gap_left_by_releases_can_be_more_than_a_unit_off_its_share() -> None:
    # What the unit design guarantees after releases, worked out: 6 pens, 2 cents after the
    # discount and 60 of tax. a(i) = round(2 * i / 6) = 0, 1, 1, 1, 2, 2, so the pens carry
    # 0, 1, 0, 0, 1, 0 of the price (and 10 of tax each). Six refunds of one pen each; the
    # second and fifth are released; the next refund of two pens takes pens 2 and 5: 2 cents,
    # where 2 of 6 pens' exact share is 0.67 (1.33 off, one block of consecutive pens each
    # within a cent). Whichever two pens carried the 2 cents, releasing their refunds leaves
    # the same: no split into fixed per-unit shares can keep this within one minor unit. The
    # order still adds up: 0 + 1 + 0 + 0 + 1 + 0 + 60 of tax = 62, exactly what was paid.
    pens = OrderLine(
        line_id="pens",
        sku="PEN",
        quantity=6,
        unit_price=1,
        discount=4,
        taxes=[TaxLine(jurisdiction="US-CA", rate=Decimal("0.3"), amount=60)],
    )
    book = Book(an_order("USD", pens), NO_FEES)
    for _ in range(6):
        book.live.append(book.ask(ask("pens")))
    assert [q.lines[0].amount for q in book.live] == [0, 1, 0, 0, 1, 0]
    del book.live[4], book.live[1]
    again = book.ask(ask("pens", 2))
    assert (again.lines[0].units, again.lines[0].amount, again.lines[0].tax) == ([2, 5], 2, 20)
    assert runs(again.lines[0].units) == 2
    book.live.append(again)
    assert sum(q.total for q in book.live) == book.order.total == 62
