"""Adyen adapter: the only module of the service that calls Adyen's Checkout API.

Adyen differs from Stripe in two ways that shape this file. It has no API to read a payment,
so ``fetch_payment`` reads the payment book the webhook receiver keeps from Adyen's
notifications. And a refund or cancel is only ever ``received`` at first: the outcome comes
later in a REFUND or CANCELLATION notification, so every answer here is PENDING with
``notification_only_escalate_after_s`` set, and the workflow waits for the notification.

The Adyen library is synchronous, so each call runs in a thread. It is forced onto its urllib
transport, which never retries (a retry with a fresh key would be a second refund); Temporal
retries, with our own ``Idempotency-Key``. Adyen keeps idempotency keys at least 7 days (its
current documentation says 31), much longer than Stripe's 24 hours; past that, ``find_refund``
asks the book for the refund our request already made.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import http.client
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import Adyen  # type: ignore[import-untyped]

from activities.adyen_payments import AdyenModification, AdyenPayment, AdyenPaymentBook
from activities.errors import (
    CurrencyMismatch,
    OverRefund,
    PaymentNotFound,
    PaymentNotYetNotified,
    ProviderAuthFailed,
    ProviderDeclined,
    ProviderRateLimited,
    ProviderUnavailable,
    RefundError,
)
from workflows.models import (
    PaymentSnapshot,
    PaymentState,
    Psp,
    PspRefund,
    PspRefundStatus,
    RefundPlan,
    RefundReason,
)

T = TypeVar("T")
MAX_IDEMPOTENCY_KEY = 64  # Adyen's limit on Idempotency-Key
LIVE_HOST = re.compile(r"^https://([a-z0-9-]+)-checkout-live\.adyenpayments\.com/", re.I)
_STATES = {
    "authorised": PaymentState.AUTHORIZED,
    "captured": PaymentState.CAPTURED,
    "canceled": PaymentState.CANCELED,
    "refused": PaymentState.UNPAID,
}
_OUTCOMES = {
    "pending": PspRefundStatus.PENDING,
    "succeeded": PspRefundStatus.SUCCEEDED,
    "failed": PspRefundStatus.FAILED,
}
# Adyen errorCode -> our error class (Checkout API 422 validation errors and friends).
_ERROR_CODES: dict[str, type[RefundError]] = {
    "167": PaymentNotFound,  # Original pspReference required for this operation
    "137": ProviderDeclined,  # Invalid amount specified
    "100": ProviderDeclined,  # Required object/field not provided
    "704": ProviderUnavailable,  # request already processed or in progress (409): retry
}


def adyen_idempotency_key(key: str) -> str:
    """Our key as Adyen takes it: at most 64 characters, the same for the same key."""
    if len(key) <= MAX_IDEMPOTENCY_KEY:
        return key
    return "sha256-" + hashlib.sha256(key.encode()).hexdigest()[:57]


class AdyenProvider:
    psp = Psp.ADYEN

    def __init__(
        self,
        api_key: str,
        merchant_account: str,
        book: AdyenPaymentBook,
        checkout_base: str | None = None,
        settlement_timeout_s: int = 21600,
        auto_capture: bool = True,
    ) -> None:
        self.merchant_account = merchant_account
        self.book = book
        self.settlement_timeout_s = settlement_timeout_s
        self.auto_capture = auto_capture
        live = LIVE_HOST.match(checkout_base or "")
        # The library refuses a live platform without the account's live URL prefix, even
        # with the base URL set: it is the first label of the live host.
        self._adyen = Adyen.Adyen(
            xapikey=api_key,
            platform="live" if live else "test",
            live_endpoint_prefix=live.group(1) if live else None,
            http_force="urllib",
        )
        # Its own threads: the library blocks, and a slow Adyen must not take the threads
        # another provider's calls run in.
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="adyen")
        if checkout_base:
            self._adyen.checkout.modifications_api.baseUrl = checkout_base.rstrip("/")

    async def fetch_payment(self, payment_id: str) -> PaymentSnapshot:
        payment = await self.book.payment(payment_id)
        if payment is None:
            raise PaymentNotYetNotified(
                f"Adyen has not notified an AUTHORISATION for {payment_id} (Adyen has no payment "
                "read API; the service learns payments from notifications)"
            )
        return _snapshot(payment, self.auto_capture)

    async def refund(
        self,
        payment: PaymentSnapshot,
        plan: RefundPlan,
        reason: RefundReason,
        idempotency_key: str,
        refund_id: str,
    ) -> PspRefund:
        api = self._adyen.checkout.modifications_api
        request = {
            "merchantAccount": self.merchant_account,
            "amount": {"value": plan.amount, "currency": plan.currency.upper()},
            "reference": refund_id,
        }
        answer = await _call(
            self._executor,
            api.refund_captured_payment,
            request,
            payment.payment_id,
            idempotency_key=adyen_idempotency_key(idempotency_key),
        )
        return await self._received(answer, payment, "refund", refund_id, plan.amount)

    async def void(
        self, payment: PaymentSnapshot, idempotency_key: str, refund_id: str = ""
    ) -> PspRefund:
        """Cancel the authorisation; ``refund_id`` is the cancel's reference, which Adyen's
        CANCELLATION notification names."""
        api = self._adyen.checkout.modifications_api
        request_id = refund_id or idempotency_key
        request = {"merchantAccount": self.merchant_account, "reference": request_id}
        answer = await _call(
            self._executor,
            api.cancel_authorised_payment_by_psp_reference,
            request,
            payment.payment_id,
            idempotency_key=adyen_idempotency_key(idempotency_key),
        )
        return await self._received(
            answer, payment, "cancel", request_id, payment.amount_authorized
        )

    async def fetch_refund(self, psp_refund_id: str) -> PspRefund:
        made = await self.book.modification(psp_refund_id)
        if made is None:
            raise PaymentNotFound(f"Adyen: no refund or cancel {psp_refund_id} in the book")
        return self._psp_refund(made)

    async def find_refund(self, payment: PaymentSnapshot, refund_id: str) -> PspRefund | None:
        made = await self.book.modification_by_reference(payment.payment_id, refund_id)
        return self._psp_refund(made) if made is not None else None

    async def _received(
        self, answer: Any, payment: PaymentSnapshot, kind: str, reference: str, amount: int
    ) -> PspRefund:
        message = answer.message if isinstance(answer.message, dict) else {}
        modification = message.get("pspReference")
        if message.get("status") != "received" or not isinstance(modification, str):
            raise ProviderUnavailable(f"Adyen: unexpected answer to the {kind}: {message!r}")
        await self.book.record_requested(
            psp_reference=modification,
            payment_psp_reference=payment.payment_id,
            kind=kind,
            merchant_reference=reference,
            amount=amount,
            currency=payment.currency,
        )
        return PspRefund(
            psp_refund_id=modification,
            status=PspRefundStatus.PENDING,
            amount=amount,
            currency=payment.currency.upper(),
            notification_only_escalate_after_s=self.settlement_timeout_s,
        )

    def _psp_refund(self, made: AdyenModification) -> PspRefund:
        status = _OUTCOMES[made.outcome]
        return PspRefund(
            psp_refund_id=made.psp_reference,
            status=status,
            amount=made.amount,
            currency=made.currency,
            failure_reason=made.reason,
            notification_only_escalate_after_s=self.settlement_timeout_s
            if status is PspRefundStatus.PENDING
            else None,
        )


def _snapshot(payment: AdyenPayment, auto_capture: bool) -> PaymentSnapshot:
    """The book's payment as a snapshot. With ``auto_capture`` (Adyen's default: captured at
    authorisation, and no CAPTURE notification sent for it) an authorised payment is captured.
    """
    state = _STATES[payment.state]
    captured = payment.amount_captured
    if auto_capture and state is PaymentState.AUTHORIZED:
        state, captured = PaymentState.CAPTURED, payment.amount_authorised
    return PaymentSnapshot(
        psp=Psp.ADYEN,
        payment_id=payment.psp_reference,
        canonical_id=payment.psp_reference,
        state=state,
        currency=payment.currency.upper(),
        amount_authorized=payment.amount_authorised if state is PaymentState.AUTHORIZED else 0,
        amount_captured=captured,
        amount_refunded=payment.amount_refunded,
        disputed=payment.disputed,
        customer=payment.shopper_reference,
        created=payment.authorised_at,
    )


async def _call(
    executor: ThreadPoolExecutor, method: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    try:
        return await asyncio.get_running_loop().run_in_executor(
            executor, functools.partial(method, *args, **kwargs)
        )
    except Adyen.AdyenError as exc:
        raise classify(exc) from exc
    except (OSError, http.client.HTTPException) as exc:  # refused, reset, dropped, timed out
        raise ProviderUnavailable(f"Adyen: no answer ({type(exc).__name__}: {exc})") from exc


def classify(exc: Adyen.AdyenError) -> RefundError:
    """Map one Adyen library error onto the service's taxonomy (retryable or not)."""
    status = int(exc.status_code) if str(exc.status_code).isdigit() else 0
    body = exc.message if isinstance(exc.message, dict) else {}
    code = str(body.get("errorCode") or exc.error_code or "")
    text = str(body.get("message") or exc.message or "no message")
    message = f"Adyen: {text} (HTTP {status or '?'}, errorCode {code or '-'})"
    if status in (401, 403):
        return ProviderAuthFailed(f"{message} (check ADYEN_API_KEY)")
    if status == 0:  # the library refused before sending: retrying would never change that
        return ProviderDeclined(
            f"Adyen: the library did not send the request: {text} (check ADYEN_CHECKOUT_BASE)"
        )
    if code == "901":
        return ProviderDeclined(f"{message} (check ADYEN_MERCHANT_ACCOUNT)")
    if status == 429:
        return ProviderRateLimited(message)
    if code in _ERROR_CODES:
        return _ERROR_CODES[code](message)
    if status == 404:
        return PaymentNotFound(message)
    lowered = text.lower()
    if status in (400, 422) and "currency" in lowered:
        return CurrencyMismatch(message)
    if status in (400, 422) and ("balance" in lowered or "exceed" in lowered):
        return OverRefund(message)
    if status >= 500 or status in (0, 408, 409):
        return ProviderUnavailable(message)
    return ProviderDeclined(message)
