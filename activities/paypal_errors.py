"""PayPal's error answers mapped onto ``activities.errors`` (retryable or not).

Decided on the HTTP status first, then on ``details[0].issue`` for the refusals (400/422):

- 3xx: PayPal's API never redirects. A redirect means ``PAYPAL_API_BASE`` points at something
  else (``http://`` answered by an https redirect, a proxy or login page, a moved host). The
  adapter does not follow it (a followed POST turns into a GET, and the bearer token would go
  along), and retrying cannot fix configuration, so it is ``ProviderAuthFailed``: not
  retried, the refund ends FAILED with a message naming the setting to fix.
- 400 whose body is not JSON (a proxy's HTML page, a truncated answer): the request was
  refused before anything moved, and sending it again gets the same refusal, so
  ``ProviderDeclined`` rather than an endless retry.
- 408 (request timeout), 409 (our request id still running), 5xx and no answer at all:
  ``ProviderUnavailable``, retried with the same PayPal-Request-Id. 429: ``ProviderRateLimited``.
"""

from __future__ import annotations

import json
from typing import Any

from activities.errors import (
    CurrencyMismatch,
    OverRefund,
    PaymentNotFound,
    PaymentNotRefundable,
    ProviderAuthFailed,
    ProviderDeclined,
    ProviderRateLimited,
    ProviderUnavailable,
    RefundError,
)

Json = dict[str, Any]
AUTH_FAILED = "PayPal: Client Authentication failed (check PAYPAL_CLIENT_ID/PAYPAL_CLIENT_SECRET)"
_OVER_REFUND = {"REFUND_AMOUNT_EXCEEDED", "CAPTURE_FULLY_REFUNDED"}
# Refusals of a request that was fine but that PayPal will not carry out for this payment
# (too old, too many refunds, already voided or captured): nothing moved, and no retry or
# other provider outcome would change it, so the refund ends REJECTED like any refusal.
_NOT_REFUNDABLE = {
    "MAX_NUMBER_OF_REFUNDS_EXCEEDED",
    "REFUND_TIME_LIMIT_EXCEEDED",
    "PREVIOUSLY_CAPTURED",
    "PREVIOUSLY_VOIDED",
    "AUTHORIZATION_VOIDED",
    "AUTHORIZATION_EXPIRED",
    "REFUND_NOT_ALLOWED",
    "TRANSACTION_DISPUTED",
}
_CURRENCY = {"REFUND_CAPTURE_CURRENCY_MISMATCH", "CURRENCY_MISMATCH"}


def classify(status: int, content: Any, location: str | None = None) -> RefundError:
    """Map one PayPal error answer (status, body as text or parsed) onto the taxonomy."""
    if 300 <= status < 400:
        where = f" to {location}" if location else ""
        return ProviderAuthFailed(
            f"PayPal: HTTP {status} redirect{where}; PayPal's API does not redirect, so "
            "PAYPAL_API_BASE is wrong (it must be PayPal's https API base, or unset)"
        )
    body = content if isinstance(content, dict) else parse(content)
    if status == 400 and not body:
        return ProviderDeclined(
            f"PayPal: HTTP 400 with a body that is not PayPal's JSON error: {_excerpt(content)}"
        )
    details = body.get("details") if isinstance(body.get("details"), list) else []
    detail = details[0] if details and isinstance(details[0], dict) else {}
    issue = detail.get("issue")
    what = body.get("name") or body.get("error") or f"HTTP {status}"
    said = detail.get("description") or body.get("message") or body.get("error_description")
    message = f"PayPal: {issue or what}: {said}" if said else f"PayPal: {issue or what}"
    if status == 401:
        return ProviderAuthFailed(AUTH_FAILED if body.get("error") == "invalid_client" else message)
    if status == 403:
        return ProviderAuthFailed(message)
    if status == 404:
        return PaymentNotFound(message)
    if status in (408, 409):  # timed out, or our request id is still being worked on
        return ProviderUnavailable(message)
    if status == 429:
        return ProviderRateLimited(message)
    if status >= 500 or status == 0:
        return ProviderUnavailable(message)
    if issue in _OVER_REFUND:
        return OverRefund(message)
    if issue in _NOT_REFUNDABLE:
        return PaymentNotRefundable(message)
    if issue in _CURRENCY:
        return CurrencyMismatch(message)
    return ProviderDeclined(message)


def parse(content: Any) -> Json:
    """A JSON object from an answer's text; {} when it is none."""
    try:
        parsed = json.loads(content) if content else {}
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _excerpt(content: Any) -> str:
    text = " ".join(str(content or "").split())
    return repr(text[:80] + ("..." if len(text) > 80 else "")) if text else "(empty)"
