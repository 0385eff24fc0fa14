"""The one error taxonomy of the refund service.

    RefundError                      base; ``retryable`` says whether Temporal may try again
    ├── RefundRefused                the request itself is wrong: never retried, ends REJECTED
    │   ├── PaymentNotFound          the provider does not know the payment
    │   ├── PaymentNotYetNotified    a notifying provider (Adyen) has not told of it yet
    │   ├── PaymentNotRefundable     disputed, not captured, canceled, fully refunded
    │   ├── CurrencyMismatch         the request's currency is not the payment's
    │   ├── OverRefund               more than what is still refundable (provider or ledger)
    │   ├── OrderNotFound            the order named is not in the order store or its source
    │   ├── PolicyRefused            the refund policy does not allow it (window, count, reason)
    │   ├── QuoteRefused             the lines asked for cannot be refunded (unknown, too many)
    │   ├── ExchangeRateMissing      no rate to value a foreign-currency payment in settlement
    │   └── ProviderNotSupported     this worker has no adapter or credentials for the provider
    ├── ProviderDeclined             the provider refused the operation: never retried, ends FAILED
    ├── ProviderAuthFailed           bad or missing API key: never retried, ends FAILED
    ├── ProviderUnavailable          5xx, timeouts, dropped connections: retried
    ├── ProviderRateLimited          429: retried
    ├── LedgerConflict               a transfer id reused with other fields: never retried
    ├── OrderConflict                an order update that would undo what refunds already hold
    ├── QuoteStale                   another refund took the quoted units first: quote again
    └── DatabaseUnavailable          PostgreSQL unreachable: retried

Activities raise these; ``to_application_error`` turns one into a Temporal
``ApplicationError`` whose ``type`` is the class name, so the workflow (and any
other language's client) can tell them apart without importing this module.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from temporalio.exceptions import ApplicationError


class RefundError(Exception):
    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RefundRefused(RefundError):
    """The request cannot be honoured as asked; nothing was moved."""


class PaymentNotFound(RefundRefused):
    pass


class PaymentNotYetNotified(RefundRefused):
    """Adyen has not (yet) notified the payment: the workflow waits a while, then refuses."""


class PaymentNotRefundable(RefundRefused):
    pass


class CurrencyMismatch(RefundRefused):
    pass


class OverRefund(RefundRefused):
    pass


class ProviderNotSupported(RefundRefused):
    pass


class OrderNotFound(RefundRefused):
    pass


class PolicyRefused(RefundRefused):
    pass


class QuoteRefused(RefundRefused):
    pass


class ExchangeRateMissing(RefundRefused):
    pass


class OrderConflict(RefundError):
    pass


class QuoteStale(RefundError):
    """Not retried as is: the workflow quotes again and claims the units then free."""


class ProviderDeclined(RefundError):
    pass


class ProviderAuthFailed(RefundError):
    pass


class ProviderUnavailable(RefundError):
    retryable = True


class ProviderRateLimited(RefundError):
    retryable = True


class LedgerConflict(RefundError):
    pass


class DatabaseUnavailable(RefundError):
    retryable = True


def to_application_error(error: RefundError) -> ApplicationError:
    return ApplicationError(
        error.message, type=type(error).__name__, non_retryable=not error.retryable
    )


@contextmanager
def as_application_errors() -> Iterator[None]:
    """Inside an activity: a ``RefundError`` leaves it as the matching ``ApplicationError``."""
    try:
        yield
    except RefundError as error:
        raise to_application_error(error) from error
