"""The Stripe objects the sandbox keeps, with Stripe's own field names.

The refund service reads these through the real `stripe` SDK, so every field it relies on
(`latest_charge`, `amount_refunded`, a refund's `status` and `failure_reason`, ...) must be
spelled and typed as Stripe does. Internal bookkeeping (how a test card makes refunds behave,
when a pending refund settles) lives in fields that `to_api()` never shows.
"""

from __future__ import annotations

import json
import secrets
import string
import time
from dataclasses import asdict, dataclass, field
from typing import Any

JsonObject = dict[str, Any]

_ID_ALPHABET = string.ascii_letters + string.digits

# Currencies Stripe accepts for card payments (a reasonable subset of its list).
CURRENCIES = frozenset(
    "usd eur gbp aud cad chf cny czk dkk hkd huf idr ils inr isk jpy krw mxn myr nok nzd php "
    "pln ron sek sgd thb try twd zar aed brl clp cop egp kes mad ngn pen pkr qar sar uah vnd "
    "bhd jod kwd omr tnd bif djf gnf kmf mga pyg rwf ugx vuv xaf xof xpf".split()
)
# Amounts are in the smallest unit; these currencies have no minor unit, or three digits of it.
ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())
_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "inr": "₹", "krw": "₩"}


def new_id(prefix: str) -> str:
    """An id shaped like Stripe's (`pi_3Nx...`): prefix, underscore, 24 letters and digits."""
    return prefix + "_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


def now() -> int:
    return int(time.time())


def format_amount(amount: int, currency: str) -> str:
    """How Stripe writes an amount in messages: `$12.34`, `¥500`, `12.345 KWD`."""
    digits = 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2
    number = f"{amount / 10**digits:,.{digits}f}"
    symbol = _SYMBOLS.get(currency)
    return f"{symbol}{number}" if symbol else f"{number} {currency.upper()}"


@dataclass
class PaymentIntent:
    id: str
    amount: int
    currency: str
    capture_method: str
    created: int
    customer: str | None = None
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    payment_method: str | None = None
    status: str = "requires_payment_method"
    amount_capturable: int = 0
    amount_received: int = 0
    latest_charge: str | None = None
    cancellation_reason: str | None = None
    canceled_at: int | None = None
    last_payment_error: JsonObject | None = None

    def to_api(self) -> JsonObject:
        return {
            "id": self.id,
            "object": "payment_intent",
            "amount": self.amount,
            "amount_capturable": self.amount_capturable,
            "amount_received": self.amount_received,
            "canceled_at": self.canceled_at,
            "cancellation_reason": self.cancellation_reason,
            "capture_method": self.capture_method,
            "client_secret": f"{self.id}_secret_sandbox",
            "confirmation_method": "automatic",
            "created": self.created,
            "currency": self.currency,
            "customer": self.customer,
            "description": self.description,
            "last_payment_error": self.last_payment_error,
            "latest_charge": self.latest_charge,
            "livemode": False,
            "metadata": dict(self.metadata),
            "payment_method": self.payment_method,
            "payment_method_types": ["card"],
            "status": self.status,
        }


@dataclass
class Charge:
    id: str
    amount: int
    currency: str
    created: int
    payment_intent: str
    payment_method: str
    status: str  # succeeded | failed
    customer: str | None = None
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    captured: bool = False
    amount_captured: int = 0
    amount_refunded: int = 0
    dispute: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    refund_behaviour: str = "succeed"  # sandbox-only: succeed | fail | pending
    balance_transaction: str | None = None  # once captured: what it added to the balance

    def to_api(self) -> JsonObject:
        paid = self.status == "succeeded"
        return {
            "id": self.id,
            "object": "charge",
            "amount": self.amount,
            "amount_captured": self.amount_captured,
            "amount_refunded": self.amount_refunded,
            "balance_transaction": self.balance_transaction,
            "captured": self.captured,
            "created": self.created,
            "currency": self.currency,
            "customer": self.customer,
            "description": self.description,
            "disputed": self.dispute is not None,
            "dispute": self.dispute,
            "failure_code": self.failure_code,
            "failure_message": self.failure_message,
            "livemode": False,
            "metadata": dict(self.metadata),
            "outcome": {
                "network_status": "approved_by_network" if paid else "declined_by_network",
                "type": "authorized" if paid else "issuer_declined",
            },
            "paid": paid,
            "payment_intent": self.payment_intent,
            "payment_method": self.payment_method,
            "refunded": self.amount > 0 and self.amount_refunded >= self.amount,
            "status": self.status,
        }


@dataclass
class Refund:
    id: str
    amount: int
    charge: str
    payment_intent: str
    currency: str
    created: int
    status: str  # pending | succeeded | failed
    reason: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    failure_reason: str | None = None
    settles_at: float | None = None  # sandbox-only: when a pending refund reaches `settles_to`
    settles_to: str | None = None
    balance_transaction: str | None = None

    def to_api(self) -> JsonObject:
        return {
            "id": self.id,
            "object": "refund",
            "amount": self.amount,
            "balance_transaction": self.balance_transaction,
            "charge": self.charge,
            "created": self.created,
            "currency": self.currency,
            "failure_reason": self.failure_reason,
            "metadata": dict(self.metadata),
            "payment_intent": self.payment_intent,
            "pending_reason": "processing" if self.status == "pending" else None,
            "reason": self.reason,
            "status": self.status,
        }


@dataclass
class BalanceTransaction:
    """Money a charge or refund moved in the account's balance, in its settlement currency:
    the payment's amount times `exchange_rate` (None when no conversion was needed)."""

    id: str
    amount: int  # settlement currency; a refund's is negative
    currency: str
    exchange_rate: str | None  # kept as text, exact; answered as a JSON number, as Stripe does
    created: int
    source: str
    type: str  # charge | refund

    def to_api(self) -> JsonObject:
        return {
            "id": self.id,
            "object": "balance_transaction",
            "amount": self.amount,
            "available_on": self.created,
            "created": self.created,
            "currency": self.currency,
            "description": None,
            "exchange_rate": None if self.exchange_rate is None else float(self.exchange_rate),
            "fee": 0,
            "fee_details": [],
            "net": self.amount,
            "reporting_category": self.type,
            "source": self.source,
            "status": "available",
            "type": self.type,
        }


@dataclass
class IdempotentResult:
    """The first answer to a request with an Idempotency-Key, replayed byte for byte."""

    method: str
    path: str
    fingerprint: str
    status: int
    body: str
    request_id: str
    created: float


@dataclass
class SandboxState:
    """Everything the sandbox knows; dicts keep creation order, which lists rely on."""

    payment_intents: dict[str, PaymentIntent] = field(default_factory=dict)
    charges: dict[str, Charge] = field(default_factory=dict)
    refunds: dict[str, Refund] = field(default_factory=dict)
    idempotency: dict[str, IdempotentResult] = field(default_factory=dict)
    balance_transactions: dict[str, BalanceTransaction] = field(default_factory=dict)
    settlement_currency: str = "usd"  # the account's: charges in others are converted
    exchange_rates: dict[str, str] = field(default_factory=dict)  # told ones, by currency

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> SandboxState:
        raw = json.loads(text)
        return cls(
            payment_intents={k: PaymentIntent(**v) for k, v in raw["payment_intents"].items()},
            charges={k: Charge(**v) for k, v in raw["charges"].items()},
            refunds={k: Refund(**v) for k, v in raw["refunds"].items()},
            idempotency={k: IdempotentResult(**v) for k, v in raw["idempotency"].items()},
            balance_transactions={
                k: BalanceTransaction(**v) for k, v in raw.get("balance_transactions", {}).items()
            },
            settlement_currency=raw.get("settlement_currency", "usd"),
            exchange_rates=dict(raw.get("exchange_rates", {})),
        )
