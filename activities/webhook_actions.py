"""What a verified provider webhook asks of the service, in provider-neutral terms.

Each provider's adapter verifies its own webhooks and turns them into these actions; the
receiver carries them out (a signal, a start) without knowing any provider's event shapes.
"""

from __future__ import annotations

from dataclasses import dataclass

from workflows.models import ProviderRefundUpdate, Psp


class WebhookRejected(Exception):
    """The signature is missing, wrong or too old (or in the future): answer 401, do nothing."""


class WebhookMalformed(Exception):
    """Signed, but not a JSON event we can read: answer 400."""


@dataclass(frozen=True)
class RefundUpdateAction:
    """Tell refund ``request_id`` what became of its refund at the provider."""

    request_id: str
    update: ProviderRefundUpdate


@dataclass(frozen=True)
class EarlyFraudWarning:
    """The card network flagged a payment as likely fraud: refund it before a chargeback."""

    event_id: str
    warning_id: str
    payment_id: str


@dataclass(frozen=True)
class DisputeOpened:
    """The customer disputed a payment: refunds of it still in review must not go ahead."""

    event_id: str
    dispute_id: str
    payment_ids: tuple[str, ...]  # every id the payment is known by (intent, charge)
    psp: Psp = Psp.STRIPE


@dataclass(frozen=True)
class IgnoredEvent:
    """An event this service does not act on (answered 2xx, logged)."""

    event_id: str
    event_type: str
    why: str


WebhookAction = RefundUpdateAction | EarlyFraudWarning | DisputeOpened | IgnoredEvent
