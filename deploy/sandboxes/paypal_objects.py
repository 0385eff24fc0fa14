"""The PayPal objects the sandbox keeps (orders, authorizations, captures, refunds).

The refund service reads them through paypalrestsdk as plain JSON, so every field it relies on
(a capture's `status` and `supplementary_data.related_ids.order_id`, a refund's `custom_id`,
an order's `purchase_units[].payments`) is spelled as PayPal's Orders and Payments v2 APIs
spell it. Amounts are kept as integers in PayPal's own precision for the currency (JPY, HUF
and TWD take no decimals at PayPal) and written as PayPal writes them: decimal strings.
Internal bookkeeping (how a test card's refunds behave, when one settles) never reaches
`to_api()`.
"""

from __future__ import annotations

import json
import re
import secrets
import string
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

JsonObject = dict[str, Any]

# The currencies PayPal's REST APIs accept; HUF, JPY and TWD without decimals.
CURRENCIES = frozenset(
    "AUD BRL CAD CNY CZK DKK EUR HKD HUF ILS JPY MYR MXN TWD NZD NOK PHP PLN GBP SGD SEK CHF "
    "THB USD".split()
)
NO_DECIMALS = frozenset({"HUF", "JPY", "TWD"})
_VALUE = re.compile(r"^((-?[0-9]+)|(-?([0-9]+)?[.][0-9]+))$")  # PayPal's money.value pattern
_ID_ALPHABET = string.ascii_uppercase + string.digits

# Test cards (any other card number pays as NORMAL_CARD does).
NORMAL_CARD = "4111111111111111"  # refunds COMPLETED at once
PENDING_REFUND_CARD = "4000000000000093"  # refunds PENDING, COMPLETED after settle_after
LATE_FAILURE_CARD = "4000000000000101"  # refunds COMPLETED, FAILED after settle_after
EXPIRED_CAPTURE_CARD = "4000000000001810"  # captured 181 days ago: past the refund time limit
CARD_BEHAVIOURS = {
    PENDING_REFUND_CARD: "pending",
    LATE_FAILURE_CARD: "late_failure",
    EXPIRED_CAPTURE_CARD: "expired",
}
REFUND_TIME_LIMIT_DAYS = 180
MAX_NUMBER_OF_REFUNDS = 10  # per capture


def decimals(currency: str) -> int:
    return 0 if currency in NO_DECIMALS else 2


def parse_value(value: object, currency: str) -> int:
    """PayPal's decimal string as an integer in the currency's PayPal precision.

    ValueError names PayPal's issue: INVALID_PARAMETER_SYNTAX, DECIMALS_NOT_SUPPORTED or
    DECIMAL_PRECISION.
    """
    if not isinstance(value, str) or not _VALUE.match(value) or len(value) > 32:
        raise ValueError("INVALID_PARAMETER_SYNTAX")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError("INVALID_PARAMETER_SYNTAX") from None
    digits = decimals(currency)
    scaled = number.scaleb(digits)
    if scaled != scaled.to_integral_value():
        raise ValueError("DECIMALS_NOT_SUPPORTED" if digits == 0 else "DECIMAL_PRECISION")
    return int(scaled)


def format_value(amount: int, currency: str) -> str:
    digits = decimals(currency)
    return str(Decimal(amount).scaleb(-digits).quantize(Decimal(1).scaleb(-digits)))


def money(amount: int, currency: str) -> JsonObject:
    return {"currency_code": currency, "value": format_value(amount, currency)}


def new_id() -> str:
    """17 capitals and digits, like PayPal's `8MC585209K746392H`."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def link(base: str, path: str, rel: str, method: str = "GET") -> JsonObject:
    return {"href": base + path, "rel": rel, "method": method}


@dataclass
class Order:
    id: str
    intent: str  # CAPTURE | AUTHORIZE
    status: str  # CREATED | APPROVED | COMPLETED
    currency: str
    amount: int
    created: float
    card: str | None = None
    custom_id: str | None = None
    invoice_id: str | None = None
    authorization_id: str | None = None
    capture_ids: list[str] = field(default_factory=list)


@dataclass
class Authorization:
    id: str
    order_id: str
    status: str  # CREATED | CAPTURED | PARTIALLY_CAPTURED | VOIDED
    currency: str
    amount: int
    created: float
    updated: float
    behaviour: str = "ok"
    custom_id: str | None = None
    invoice_id: str | None = None
    capture_ids: list[str] = field(default_factory=list)

    def to_api(self, base: str) -> JsonObject:
        path = f"/v2/payments/authorizations/{self.id}"
        links = [link(base, path, "self")]
        if self.status == "CREATED":
            links += [link(base, path + "/capture", "capture", "POST")]
            links += [link(base, path + "/void", "void", "POST")]
        links.append(link(base, f"/v2/checkout/orders/{self.order_id}", "up"))
        api: JsonObject = {
            "id": self.id,
            "status": self.status,
            "amount": money(self.amount, self.currency),
            "seller_protection": {"status": "NOT_ELIGIBLE"},
            "supplementary_data": {"related_ids": {"order_id": self.order_id}},
            "expiration_time": iso(self.created + 29 * 86400),
            "create_time": iso(self.created),
            "update_time": iso(self.updated),
            "links": links,
        }
        for key in ("custom_id", "invoice_id"):
            if getattr(self, key):
                api[key] = getattr(self, key)
        return api


@dataclass
class Capture:
    id: str
    order_id: str
    currency: str
    amount: int
    created: float
    updated: float
    behaviour: str = "ok"
    authorization_id: str | None = None
    custom_id: str | None = None
    invoice_id: str | None = None
    refund_ids: list[str] = field(default_factory=list)
    disputed: bool = False


@dataclass
class Refund:
    id: str
    capture_id: str
    status: str  # PENDING | COMPLETED | FAILED | CANCELLED
    currency: str
    amount: int
    created: float
    updated: float
    custom_id: str | None = None
    invoice_id: str | None = None
    note_to_payer: str | None = None
    settles_at: float | None = None
    settles_to: str | None = None

    def to_api(self, base: str, total_refunded: int) -> JsonObject:
        path = f"/v2/payments/refunds/{self.id}"
        api: JsonObject = {"id": self.id, "amount": money(self.amount, self.currency)}
        for key in ("invoice_id", "custom_id", "note_to_payer"):
            if getattr(self, key):
                api[key] = getattr(self, key)
        api["seller_payable_breakdown"] = {
            "gross_amount": money(self.amount, self.currency),
            "paypal_fee": money(0, self.currency),
            "net_amount": money(self.amount, self.currency),
            "total_refunded_amount": money(total_refunded, self.currency),
        }
        api["status"] = self.status
        if self.status in ("PENDING", "FAILED"):
            api["status_details"] = {"reason": "ECHECK"}
        api["create_time"] = iso(self.created)
        api["update_time"] = iso(self.updated)
        api["links"] = [
            link(base, path, "self"),
            link(base, f"/v2/payments/captures/{self.capture_id}", "up"),
        ]
        return api


@dataclass
class Remembered:
    """The first answer to a PayPal-Request-Id, replayed for every later use of the id."""

    status: int
    body: str
    created: float


@dataclass
class SandboxState:
    """Everything the sandbox knows; dicts keep creation order."""

    orders: dict[str, Order] = field(default_factory=dict)
    authorizations: dict[str, Authorization] = field(default_factory=dict)
    captures: dict[str, Capture] = field(default_factory=dict)
    refunds: dict[str, Refund] = field(default_factory=dict)
    idempotency: dict[str, Remembered] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # access token -> client id

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> SandboxState:
        raw = json.loads(text)
        return cls(
            orders={k: Order(**v) for k, v in raw["orders"].items()},
            authorizations={k: Authorization(**v) for k, v in raw["authorizations"].items()},
            captures={k: Capture(**v) for k, v in raw["captures"].items()},
            refunds={k: Refund(**v) for k, v in raw["refunds"].items()},
            idempotency={k: Remembered(**v) for k, v in raw["idempotency"].items()},
            tokens=dict(raw.get("tokens", {})),
        )


def now() -> float:
    return time.time()
