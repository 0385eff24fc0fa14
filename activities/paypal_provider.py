"""PayPal adapter: with ``deploy.sandboxes.paypal_shop`` and ``activities.paypal_webhooks`` the
only module importing paypalrestsdk.

The SDK is synchronous, so every call runs in the adapter's own thread pool (``paypal-*``
threads, not the loop's default executor that other providers share: a slow PayPal only ever
waits on its own threads) and the worker's event loop never blocks. The SDK would make a random
``PayPal-Request-Id`` per call, which a Temporal activity retry would turn into a second
refund: every money-moving call sends our own key (PayPal keeps it 45 days), shortened
deterministically when it is longer than PayPal takes. The SDK never retries except after a
401 to fetch a new token (the same request id goes again); Temporal does the retrying.
Its OAuth token is cached on the ``Api`` object, one per adapter.

Time: ``fetch_payment`` and ``find_refund`` run in a 30 s local activity and make up to four
calls (OAuth, capture, authorization, order). Each operation therefore gets a budget
(``CALL_BUDGET_SECONDS``) and every HTTP call its own timeouts, cut to half of what is left
of the budget each (connect + read), so the whole sequence ends inside the activity's time.
Errors map onto ``activities.errors`` in ``activities.paypal_errors``.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any, Concatenate, ParamSpec, TypeVar

import paypalrestsdk  # type: ignore[import-untyped]
import requests
from paypalrestsdk import exceptions as sdk_errors

from activities.errors import PaymentNotFound, PaymentNotRefundable, ProviderUnavailable
from activities.paypal_errors import classify
from activities.paypal_payments import (
    authorization_snapshot,
    capture_snapshot,
    order_payments,
    paypal_value,
    psp_refund,
    up_is,
)
from workflows.models import (
    PaymentSnapshot,
    Psp,
    PspRefund,
    PspRefundStatus,
    RefundPlan,
    RefundReason,
)

Json = dict[str, Any]
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 8.0
CALL_BUDGET_SECONDS = 25.0  # one adapter operation; its local activity allows 30 s
EXECUTOR_THREADS = 8
# PayPal-Request-Id: PayPal's v2 API reference gives the header a maximum length of 108.
REQUEST_ID_MAX_LENGTH = 108
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")
_CUSTOM_ID_CHARS = _ID_CHARS | frozenset("_.,")
_DEADLINE: ContextVar[float | None] = ContextVar("paypal_deadline", default=None)
P = ParamSpec("P")
T = TypeVar("T")


def paypal_request_id(key: str) -> str:
    """``key`` itself when PayPal takes it, else ``refund-`` and its SHA-256 (71 characters):
    the same on every retry, and never equal to a real key (those have a ``-`` after
    ``refund-``; hex has none)."""
    if len(key) <= REQUEST_ID_MAX_LENGTH:
        return key
    return "refund-" + hashlib.sha256(key.encode()).hexdigest()


class _Refused(sdk_errors.ConnectionError):  # type: ignore[misc]
    """A 400 raised, instead of the SDK's ``{"error": json.loads(body)}`` answer (which
    raises ValueError itself when the body is not JSON)."""


class _Api(paypalrestsdk.Api):  # type: ignore[misc]
    """paypalrestsdk's Api with timeouts from the calling thread's deadline, no redirects
    followed, and a 400 raised like every other error."""

    def __init__(self, options: Json, connect_s: float, read_s: float) -> None:
        super().__init__(options)
        self.connect_s, self.read_s = connect_s, read_s
        self.local = threading.local()

    def http_call(self, url: str, method: str, **kwargs: Any) -> Any:
        deadline: float | None = getattr(self.local, "deadline", None)
        left = deadline - time.monotonic() if deadline is not None else 2 * CALL_BUDGET_SECONDS
        if left <= 0.1:
            raise requests.Timeout(f"no time left for {method} (budget {CALL_BUDGET_SECONDS} s)")
        kwargs.setdefault("timeout", (min(self.connect_s, left / 2), min(self.read_s, left / 2)))
        kwargs.setdefault("allow_redirects", False)
        try:
            return super().http_call(url, method, **kwargs)
        except sdk_errors.BadRequest as exc:
            raise _Refused(exc.response, exc.content) from None


def _budgeted(
    method: Callable[Concatenate[PayPalProvider, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[PayPalProvider, P], Coroutine[Any, Any, T]]:
    """Start an operation's time budget, unless it runs inside one already."""

    async def run(self: PayPalProvider, /, *args: P.args, **kwargs: P.kwargs) -> T:
        if _DEADLINE.get() is not None:
            return await method(self, *args, **kwargs)
        token = _DEADLINE.set(time.monotonic() + self.budget_s)
        try:
            return await method(self, *args, **kwargs)
        finally:
            _DEADLINE.reset(token)

    functools.update_wrapper(run, method)
    return run


class PayPalProvider:
    psp = Psp.PAYPAL

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        api_base: str | None = None,
        mode: str = "sandbox",
        *,
        connect_timeout_s: float = CONNECT_TIMEOUT_SECONDS,
        read_timeout_s: float = READ_TIMEOUT_SECONDS,
        budget_s: float = CALL_BUDGET_SECONDS,
    ) -> None:
        options = {"mode": mode, "client_id": client_id, "client_secret": client_secret}
        if api_base:
            options["endpoint"] = api_base.rstrip("/")
        self._api = _Api(options, connect_timeout_s, read_timeout_s)
        self.budget_s = budget_s
        self._executor = ThreadPoolExecutor(EXECUTOR_THREADS, thread_name_prefix="paypal")

    def close(self) -> None:
        """Let the adapter's threads go (calls under way finish first)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    @_budgeted
    async def fetch_payment(self, payment_id: str) -> PaymentSnapshot:
        """A capture, else an authorization (PayPal ids carry no type prefix)."""
        _check_id(payment_id)
        try:
            capture = await self._call("GET", f"v2/payments/captures/{payment_id}")
        except PaymentNotFound:
            pass
        else:
            partly = capture.get("status") == "PARTIALLY_REFUNDED"
            payments = await self._order_payments(capture) if partly else None
            return capture_snapshot(payment_id, capture, payments)
        try:
            auth = await self._call("GET", f"v2/payments/authorizations/{payment_id}")
        except PaymentNotFound:
            raise PaymentNotFound(f"PayPal: no capture or authorization {payment_id!r}") from None
        if auth.get("status") in ("CAPTURED", "PARTIALLY_CAPTURED"):
            payments = await self._order_payments(auth)
            captures = [
                c for c in payments.get("captures", []) if up_is(c, "authorizations", payment_id)
            ]
            if len(captures) == 1:  # refunds go to the capture; the ledger keys by it
                return capture_snapshot(payment_id, captures[0], payments)
        return authorization_snapshot(payment_id, auth)

    @_budgeted
    async def refund(
        self,
        payment: PaymentSnapshot,
        plan: RefundPlan,
        reason: RefundReason,
        idempotency_key: str,
        refund_id: str,
    ) -> PspRefund:
        """``custom_id`` (and ``invoice_id``) carry our refund id, so webhooks and
        ``find_refund`` can name the refund they are about."""
        body: Json = {
            "amount": {
                "currency_code": plan.currency.upper(),
                "value": paypal_value(plan.amount, plan.currency),
            },
            "note_to_payer": f"Refund: {reason.value.replace('_', ' ')}",
        }
        if 0 < len(refund_id) <= 127 and set(refund_id) <= _CUSTOM_ID_CHARS:
            body["custom_id"] = refund_id
        if len(refund_id) <= 127:
            body["invoice_id"] = refund_id
        capture_id = payment.canonical_id or payment.payment_id
        _check_id(capture_id)
        answer = await self._call(
            "POST", f"v2/payments/captures/{capture_id}/refund", body, idempotency_key
        )
        return await self._whole_refund(answer, plan)

    @_budgeted
    async def void(
        self, payment: PaymentSnapshot, idempotency_key: str, refund_id: str = ""
    ) -> PspRefund:
        """Voiding twice is no error here: PREVIOUSLY_VOIDED (our earlier attempt) succeeds."""
        auth_id = payment.canonical_id or payment.payment_id
        _check_id(auth_id)
        try:
            auth = await self._call(
                "POST", f"v2/payments/authorizations/{auth_id}/void", {}, idempotency_key
            )
        except PaymentNotRefundable:
            auth = await self._call("GET", f"v2/payments/authorizations/{auth_id}")
            if auth.get("status") != "VOIDED":
                raise
        if "status" not in auth:  # 204, the minimal answer: ask for the authorization
            auth = await self._call("GET", f"v2/payments/authorizations/{auth_id}")
        voided = auth.get("status") == "VOIDED"
        return PspRefund(
            psp_refund_id=str(auth.get("id", auth_id)),
            status=PspRefundStatus.SUCCEEDED if voided else PspRefundStatus.FAILED,
            amount=payment.amount_authorized,
            currency=payment.currency,
            failure_reason=None if voided else f"authorization is {auth.get('status')}",
        )

    @_budgeted
    async def fetch_refund(self, psp_refund_id: str) -> PspRefund:
        _check_id(psp_refund_id)
        answer = await self._call("GET", f"v2/payments/refunds/{psp_refund_id}")
        if not isinstance(answer.get("amount"), dict) or "id" not in answer:
            raise ProviderUnavailable(f"PayPal: refund {psp_refund_id} answered without amount")
        return psp_refund(answer)

    @_budgeted
    async def find_refund(self, payment: PaymentSnapshot, refund_id: str) -> PspRefund | None:
        """Payments v2 has no refund search, but the capture's order lists every refund of it
        (``purchase_units[].payments.refunds``) with the ``custom_id``/``invoice_id`` we sent.
        (PayPal also keeps a PayPal-Request-Id 45 days, longer than any retry of ours.)"""
        capture_id = payment.canonical_id or payment.payment_id
        _check_id(capture_id)
        capture = await self._call("GET", f"v2/payments/captures/{capture_id}")
        for refund in (await self._order_payments(capture)).get("refunds", []):
            ours = refund_id in (refund.get("custom_id"), refund.get("invoice_id"))
            if not ours or not up_is(refund, "captures", capture_id) or "id" not in refund:
                continue
            if isinstance(refund.get("amount"), dict):
                return psp_refund(refund)
            return await self.fetch_refund(str(refund["id"]))
        return None

    @_budgeted
    async def verify_webhook_signature(self, request: Json) -> bool:
        """PayPal's ``POST /v1/notifications/verify-webhook-signature``: SUCCESS or not."""
        answer = await self._call("POST", "v1/notifications/verify-webhook-signature", request)
        return answer.get("verification_status") == "SUCCESS"

    async def _whole_refund(self, answer: Json, plan: RefundPlan) -> PspRefund:
        """A refund answer with its amount: PayPal may answer minimally (``id``, ``status``,
        links) whatever ``Prefer`` asked, so the refund is then read by id; one not readable
        yet keeps what was asked for."""
        refund_id = answer.get("id")
        if not isinstance(refund_id, str) or not refund_id:
            raise ProviderUnavailable("PayPal: the refund answer names no refund id")
        if isinstance(answer.get("amount"), dict):
            return psp_refund(answer)
        try:
            _check_id(refund_id)
            full = await self._call("GET", f"v2/payments/refunds/{refund_id}")
        except PaymentNotFound:
            full = {}
        if isinstance(full.get("amount"), dict) and full.get("id") == refund_id:
            return psp_refund(full)
        return psp_refund({**answer, **full}, plan.amount, plan.currency)

    async def _order_payments(self, resource: Json) -> dict[str, list[Json]]:
        related = (resource.get("supplementary_data") or {}).get("related_ids") or {}
        order_id = related.get("order_id")
        if not isinstance(order_id, str):
            return {}
        _check_id(order_id)
        return order_payments(await self._call("GET", f"v2/checkout/orders/{order_id}"))

    async def _call(
        self, method: str, path: str, body: Json | None = None, request_id: str | None = None
    ) -> Json:
        headers = {"Prefer": "return=representation"}
        if request_id is not None:
            headers["PayPal-Request-Id"] = paypal_request_id(request_id)
        deadline = _DEADLINE.get() or time.monotonic() + self.budget_s
        send = functools.partial(self._send, method, path, body, headers, deadline)
        try:
            answer = await asyncio.get_running_loop().run_in_executor(self._executor, send)
        except sdk_errors.ConnectionError as exc:
            response = exc.response
            status = getattr(response, "status_code", 0)
            location = getattr(response, "headers", {}).get("Location")
            raise classify(status, exc.content, location) from exc
        except (requests.RequestException, OSError, ValueError) as exc:
            raise ProviderUnavailable(f"PayPal: {type(exc).__name__}: {exc}") from exc
        return answer if isinstance(answer, dict) else {}

    def _send(
        self, method: str, path: str, body: Json | None, headers: dict[str, str], deadline: float
    ) -> Any:
        """In one of the adapter's threads: the SDK call, timed by ``deadline``."""
        self._api.local.deadline = deadline
        if method == "GET":
            return self._api.get(path, headers)
        return self._api.post(path, body or {}, headers)


def _check_id(resource_id: str) -> None:
    if not 0 < len(resource_id) <= 64 or not set(resource_id) <= _ID_CHARS:
        raise PaymentNotFound(f"PayPal: {resource_id!r} is not a PayPal id")
