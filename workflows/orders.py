"""Orders as the shop charged them, and the quote of what a refund of some of their lines returns.

Every amount is an integer in the order's minor units, exactly as charged: the line's unit price,
its discount (for the whole line), each tax line's amount (with the rate and jurisdiction it was
charged at, never recomputed), and the shipping with its own tax. A quote is what
``workflows.quotes.quote_refund`` makes of an order, the units earlier refunds already hold, the
lines asked for and the refund policy.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from workflows.models import Psp, RefundLineRequest

__all__ = [
    "SHIPPING_LINE",
    "Order",
    "OrderLine",
    "QuoteInput",
    "QuotedLine",
    "QuotedTax",
    "RefundLineRequest",
    "RefundQuote",
    "Shipping",
    "TakenUnits",
    "TaxLine",
]

# Shipping is claimed like a line of one unit, under this id (no order line may use it).
SHIPPING_LINE = "#shipping"

MAX_AMOUNT = 10**15  # minor units; more than any order, and safe in every store it meets
Money = Annotated[int, Field(ge=0, le=MAX_AMOUNT, strict=True)]


def no_nul(text: str) -> str:
    """Text the order store keeps: PostgreSQL text holds no NUL character."""
    if "\x00" in text:
        raise ValueError("may not contain the NUL character (\\x00)")
    return text


Text = Annotated[str, StringConstraints(min_length=1, max_length=500), AfterValidator(no_nul)]
MaybeBlank = Annotated[str, StringConstraints(max_length=500), AfterValidator(no_nul)]
LineId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(no_nul),
]


class TaxLine(BaseModel):
    """One tax as charged on a line (or on shipping): its amount for the whole line."""

    # An unknown field is refused, not dropped: a misspelt "discont" would change money.
    model_config = ConfigDict(extra="forbid")

    jurisdiction: Text
    rate: Decimal = Field(ge=0, le=1)  # 0.0725 is 7.25 %; for reading, the amount is what counts
    amount: Money


class OrderLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line_id: LineId
    sku: Text
    quantity: int = Field(gt=0, le=100_000, strict=True)
    unit_price: Money
    discount: Money = 0  # for the whole line, not per unit
    taxes: list[TaxLine] = Field(default_factory=list)

    @model_validator(mode="after")
    def _discount_within_price(self) -> OrderLine:
        if self.discount > self.gross:
            raise ValueError(
                f"line {self.line_id}: discount {self.discount} is more than its price "
                f"{self.quantity} x {self.unit_price}"
            )
        if self.line_id == SHIPPING_LINE:
            raise ValueError(f"{SHIPPING_LINE} is reserved for the order's shipping")
        if self.paid > MAX_AMOUNT:
            raise ValueError(f"line {self.line_id}: {self.paid} is more than any order")
        return self

    @property
    def gross(self) -> int:
        return self.quantity * self.unit_price

    @property
    def net(self) -> int:
        """What the customer paid for the line before tax: its price after its discount."""
        return self.gross - self.discount

    @property
    def paid(self) -> int:
        return self.net + sum(tax.amount for tax in self.taxes)


class Shipping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Money = 0
    taxes: list[TaxLine] = Field(default_factory=list)

    @property
    def paid(self) -> int:
        return self.amount + sum(tax.amount for tax in self.taxes)


class Order(BaseModel):
    """An order and the payment that paid for it, in the order's currency."""

    model_config = ConfigDict(extra="forbid")

    order_id: Annotated[Text, Field(max_length=200)]
    psp: Psp
    payment_id: Text
    currency: str
    customer_id: MaybeBlank | None = None
    placed_at: datetime | None = None
    lines: list[OrderLine] = Field(min_length=1)
    shipping: Shipping = Field(default_factory=Shipping)

    @field_validator("currency", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _distinct_lines(self) -> Order:
        seen: set[str] = set()
        for line in self.lines:
            if line.line_id in seen:
                raise ValueError(f"line id {line.line_id!r} appears twice")
            seen.add(line.line_id)
        if self.total > MAX_AMOUNT:
            raise ValueError(
                f"order {self.order_id}: its total {self.total} is more than any order"
            )
        return self

    @property
    def total(self) -> int:
        """What the customer paid for the order: every line with its tax, and shipping."""
        return sum(line.paid for line in self.lines) + self.shipping.paid

    def line(self, line_id: str) -> OrderLine | None:
        return next((line for line in self.lines if line.line_id == line_id), None)


# Which units of each line live refunds already hold (unit numbers 1..quantity); shipping is
# ``SHIPPING_LINE`` with unit 1. A released refund gives its units back.
TakenUnits = dict[str, list[int]]


class QuoteInput(BaseModel):
    """What a quote is asked for: which lines and how many of each, and why."""

    order_id: Annotated[Text, Field(max_length=200)]
    lines: list[RefundLineRequest] = Field(default_factory=list)
    reason: str = "requested_by_customer"
    refund_shipping: bool | None = Field(default=None, strict=True)  # None: as the policy says


class QuotedTax(BaseModel):
    jurisdiction: str
    rate: Decimal
    amount: int


class QuotedLine(BaseModel):
    line_id: str
    sku: str
    quantity: int
    units: list[int]  # which units of the line this refund takes (the lowest still free)
    amount: int  # the units' share of the line's price after its discount
    taxes: list[QuotedTax]
    tax: int
    total: int
    refundable_quantity_before: int  # what earlier refunds had left of the line
    refundable_quantity_after: int
    refundable_amount_after: int  # with tax


class RefundQuote(BaseModel):
    """What a refund of the given lines returns; its parts add up to ``total`` exactly."""

    order_id: str
    currency: str
    reason: str
    lines: list[QuotedLine]
    shipping: int = 0
    shipping_tax: int = 0
    restocking_fee: int = 0
    restocking_fee_bps: int = 0
    total: int
    refundable_after: int  # what is still refundable on the order after this refund

    @property
    def refunds_shipping(self) -> bool:
        return self.shipping + self.shipping_tax > 0

    def taken(self) -> TakenUnits:
        """The units this refund claims, per line (shipping as ``SHIPPING_LINE``)."""
        taken = {line.line_id: list(line.units) for line in self.lines}
        if self.refunds_shipping:
            taken[SHIPPING_LINE] = [1]
        return taken
