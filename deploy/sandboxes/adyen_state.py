"""What the Adyen sandbox holds: payments, their modifications, idempotent answers, and the
notifications it still owes (so a restart with a state file keeps all of them).

Test cards (the sandbox's own, in Adyen's ``test_<number>`` encrypted-field convention):
``test_4111111111111111`` (and any other ``test_`` number not below) authorises and refunds
normally; ``test_4000000000000101`` refunds succeed, then fail later (REFUND success=true, then
REFUND_FAILED after ``late_failure_seconds``); ``test_4000000000000200`` refunds fail
(REFUND success=false); ``test_4000000000000002`` is refused at authorisation.
"""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

JsonObject = dict[str, Any]

VISA = "test_4111111111111111"
LATE_FAILURE_CARD = "test_4000000000000101"
REFUND_FAILS_CARD = "test_4000000000000200"
REFUSED_CARD = "test_4000000000000002"
_REFERENCE_ALPHABET = string.ascii_uppercase + string.digits


def new_psp_reference() -> str:
    """Adyen's pspReference: 16 upper-case letters and digits."""
    return "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(16))


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Payment:
    psp_reference: str
    merchant_account: str
    reference: str
    value: int
    currency: str
    card: str
    authorised: bool
    captured: int = 0
    refunded: int = 0
    canceled: bool = False
    disputed: bool = False
    shopper_reference: str | None = None
    created: str = field(default_factory=now_iso)


@dataclass
class Modification:
    """A refund, cancel or capture: ``received`` until settled (succeeded or failed), and a
    refund of the late-failure card becomes ``failed`` (after ``succeeded``) later."""

    psp_reference: str
    payment_psp_reference: str
    kind: str  # refund | cancel | capture
    reference: str
    value: int
    currency: str
    status: str = "received"
    reason: str = ""
    created: str = field(default_factory=now_iso)


@dataclass
class Scheduled:
    """A notification owed: ``authorisation`` of a payment, ``settle`` or ``late_failure`` of a
    modification, due at ``due`` (unix seconds)."""

    due: float
    action: str
    psp_reference: str


@dataclass
class SandboxState:
    payments: dict[str, Payment] = field(default_factory=dict)
    modifications: dict[str, Modification] = field(default_factory=dict)
    idempotent: dict[str, JsonObject] = field(default_factory=dict)  # key -> status and body
    scheduled: list[Scheduled] = field(default_factory=list)

    def modifications_of(self, psp_reference: str, kind: str | None = None) -> list[Modification]:
        return [
            m
            for m in self.modifications.values()
            if m.payment_psp_reference == psp_reference and kind in (None, m.kind)
        ]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> SandboxState:
        raw = json.loads(text)
        return cls(
            payments={k: Payment(**v) for k, v in raw.get("payments", {}).items()},
            modifications={k: Modification(**v) for k, v in raw.get("modifications", {}).items()},
            idempotent=dict(raw.get("idempotent", {})),
            scheduled=[Scheduled(**s) for s in raw.get("scheduled", [])],
        )


class AdyenApiError(Exception):
    """An error answer in Adyen's shape: ``{"status", "errorCode", "message", "errorType"}``."""

    def __init__(
        self, status: int, code: str, message: str, error_type: str = "validation"
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.error_type = status, code, message, error_type

    def body(self) -> JsonObject:
        return {
            "status": self.status,
            "errorCode": self.code,
            "message": self.message,
            "errorType": self.error_type,
            "pspReference": new_psp_reference(),
        }


def unauthorized() -> AdyenApiError:
    return AdyenApiError(401, "000", "HTTP Status Response - Unauthorized", "security")


def fault_body(status: int) -> JsonObject:
    """What an injected fault answers, in Adyen's error shape."""
    if status == 429:
        return AdyenApiError(429, "000", "Too many requests (sandbox fault)", "internal").body()
    return AdyenApiError(
        status, "000", "An internal error occurred (sandbox fault injection)", "internal"
    ).body()
