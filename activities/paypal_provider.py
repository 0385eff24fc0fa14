"""PayPal adapter: with ``deploy.sandboxes.paypal_shop`` and ``activities.paypal_webhooks`` the
only module importing paypalrestsdk.

The SDK is synchronous, so every call runs in a thread and the worker's event loop never
blocks. It would make a random ``PayPal-Request-Id`` per call, which a Temporal activity
retry would turn into a second refund: every money-moving call sends our own key (PayPal
keeps it 45 days). The SDK itself never retries, except once after a 401 to fetch a new token
(harmless: the same request id goes again); Temporal does the retrying. Its OAuth token is
cached on the ``Api`` object, one per adapter. It answers a 400 as ``{"error": ...}`` instead of
raising; both paths map onto ``activities.errors`` here.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

import paypalrestsdk  # type: ignore[import-untyped]
import requests
from paypalrestsdk import exceptions as sdk_errors

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
from workflows.currencies import MINOR_UNITS
from workflows.models import (
    PaymentSnapshot,
    PaymentState,
    Psp,
    PspRefund,
    PspRefundStatus,
    RefundPlan,
    RefundReason,
)

Json = dict[str, Any]
TIMEOUT_SECONDS = 30.0
AUTH_FAILED = "PayPal: Client Authentication failed (check PAYPAL_CLIENT_ID/PAYPAL_CLIENT_SECRET)"
NO_DECIMALS = frozenset({"HUF", "JPY", "TWD"})  # PayPal takes these without decimals
REFUND_STATES = {
    "COMPLETED": PspRefundStatus.SUCCEEDED,
    "PENDING": PspRefundStatus.PENDING,
    "FAILED": PspRefundStatus.FAILED,
    "CANCELLED": PspRefundStatus.FAILED,
}
_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_CUSTOM_ID = re.compile(r"^[A-Za-z0-9-_.,]{1,127}$")
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


class _Api(paypalrestsdk.Api):  # type: ignore[misc]
    """paypalrestsdk's Api with a timeout on every request (the SDK sets none)."""

    def http_call(self, url: str, method: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", TIMEOUT_SECONDS)
        return super().http_call(url, method, **kwargs)


def paypal_value(amount: int, currency: str) -> str:
    """Minor units (ISO 4217) as PayPal's decimal string; PayPal takes JPY, HUF and TWD
    without decimals, so an amount with a fraction of those cannot be sent at all."""
    code = currency.upper()
    value = Decimal(amount).scaleb(-MINOR_UNITS.get(code, 2))
    quantum = Decimal(1) if code in NO_DECIMALS else Decimal("0.01")
    if value != value.quantize(quantum):
        raise ProviderDeclined(f"PayPal: {code} amounts take no decimals ({value} {code})")
    return str(value.quantize(quantum))


def minor_units(money: Any) -> tuple[int, str]:
    """PayPal's ``{"currency_code", "value"}`` as (minor units, currency)."""
    code = str(money["currency_code"]).upper()
    return int(Decimal(str(money["value"])).scaleb(MINOR_UNITS.get(code, 2))), code


class PayPalProvider:
    psp = Psp.PAYPAL

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        api_base: str | None = None,
        mode: str = "sandbox",
    ) -> None:
        options = {"mode": mode, "client_id": client_id, "client_secret": client_secret}
        if api_base:
            options["endpoint"] = api_base.rstrip("/")
        self._api = _Api(options)

    async def fetch_payment(self, payment_id: str) -> PaymentSnapshot:
        """A capture, else an authorization (PayPal ids carry no type prefix)."""
        _check_id(payment_id)
        try:
            capture = await self._call("GET", f"v2/payments/captures/{payment_id}")
        except PaymentNotFound:
            pass
        else:
            return await self._capture_snapshot(payment_id, capture)
        try:
            auth = await self._call("GET", f"v2/payments/authorizations/{payment_id}")
        except PaymentNotFound:
            raise PaymentNotFound(f"PayPal: no capture or authorization {payment_id!r}") from None
        status = str(auth.get("status"))
        if status in ("CAPTURED", "PARTIALLY_CAPTURED"):
            captures = [
                c
                for c in (await self._order_payments(auth)).get("captures", [])
                if _up_is(c, "authorizations", payment_id)
            ]
            if len(captures) == 1:  # refunds go to the capture; the ledger keys by it
                return await self._capture_snapshot(payment_id, captures[0])
        amount, currency = minor_units(auth["amount"])
        return PaymentSnapshot(
            psp=Psp.PAYPAL,
            payment_id=payment_id,
            canonical_id=str(auth["id"]),
            state={
                "CREATED": PaymentState.AUTHORIZED,
                "VOIDED": PaymentState.CANCELED,
                "EXPIRED": PaymentState.CANCELED,
            }.get(status, PaymentState.UNPAID),
            currency=currency,
            amount_authorized=amount if status == "CREATED" else 0,
            amount_captured=0,
            amount_refunded=0,
            created=_time(auth.get("create_time")),
        )

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
        if _CUSTOM_ID.match(refund_id):
            body["custom_id"] = refund_id
        if len(refund_id) <= 127:
            body["invoice_id"] = refund_id
        capture_id = payment.canonical_id or payment.payment_id
        _check_id(capture_id)
        answer = await self._call(
            "POST", f"v2/payments/captures/{capture_id}/refund", body, idempotency_key
        )
        return _psp_refund(answer)

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
        voided = auth.get("status") == "VOIDED"
        return PspRefund(
            psp_refund_id=str(auth.get("id", auth_id)),
            status=PspRefundStatus.SUCCEEDED if voided else PspRefundStatus.FAILED,
            amount=payment.amount_authorized,
            currency=payment.currency,
            failure_reason=None if voided else f"authorization is {auth.get('status')}",
        )

    async def fetch_refund(self, psp_refund_id: str) -> PspRefund:
        _check_id(psp_refund_id)
        return _psp_refund(await self._call("GET", f"v2/payments/refunds/{psp_refund_id}"))

    async def find_refund(self, payment: PaymentSnapshot, refund_id: str) -> PspRefund | None:
        """Payments v2 has no refund search, but the capture's order lists every refund of it
        (``purchase_units[].payments.refunds``) with the ``custom_id``/``invoice_id`` we sent.
        (PayPal also keeps a PayPal-Request-Id 45 days, longer than any retry of ours.)"""
        capture_id = payment.canonical_id or payment.payment_id
        _check_id(capture_id)
        capture = await self._call("GET", f"v2/payments/captures/{capture_id}")
        for refund in (await self._order_payments(capture)).get("refunds", []):
            ours = refund_id in (refund.get("custom_id"), refund.get("invoice_id"))
            if ours and _up_is(refund, "captures", capture_id):
                return _psp_refund(refund)
        return None

    async def verify_webhook_signature(self, request: Json) -> bool:
        """PayPal's ``POST /v1/notifications/verify-webhook-signature``: SUCCESS or not."""
        answer = await self._call("POST", "v1/notifications/verify-webhook-signature", request)
        return answer.get("verification_status") == "SUCCESS"

    async def _capture_snapshot(self, payment_id: str, capture: Json) -> PaymentSnapshot:
        amount, currency = minor_units(capture["amount"])
        status = str(capture.get("status"))
        refunded = amount if status == "REFUNDED" else 0
        if status == "PARTIALLY_REFUNDED":
            refunds = (await self._order_payments(capture)).get("refunds", [])
            refunded = sum(
                minor_units(r["amount"])[0]
                for r in refunds
                if r.get("status") in ("COMPLETED", "PENDING")
                and _up_is(r, "captures", str(capture["id"]))
            )
        reason = (capture.get("status_details") or {}).get("reason")
        return PaymentSnapshot(
            psp=Psp.PAYPAL,
            payment_id=payment_id,
            canonical_id=str(capture["id"]),
            state=PaymentState.CAPTURED
            if status in ("COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED")
            else PaymentState.UNPAID,
            currency=currency,
            amount_authorized=0,
            amount_captured=amount,
            amount_refunded=min(refunded, amount),
            disputed=reason in ("BUYER_COMPLAINT", "CHARGEBACK"),
            created=_time(capture.get("create_time")),
        )

    async def _order_payments(self, resource: Json) -> Json:
        related = (resource.get("supplementary_data") or {}).get("related_ids") or {}
        order_id = related.get("order_id")
        if not isinstance(order_id, str):
            return {}
        _check_id(order_id)
        order = await self._call("GET", f"v2/checkout/orders/{order_id}")
        units = order.get("purchase_units") or [{}]
        return dict(units[0].get("payments") or {})

    async def _call(
        self, method: str, path: str, body: Json | None = None, request_id: str | None = None
    ) -> Json:
        headers = {"Prefer": "return=representation"}
        if request_id is not None:
            headers["PayPal-Request-Id"] = request_id
        try:
            if method == "GET":
                answer = await asyncio.to_thread(self._api.get, path, headers)
            else:
                answer = await asyncio.to_thread(self._api.post, path, body or {}, headers)
        except sdk_errors.ConnectionError as exc:
            raise _classify(getattr(exc.response, "status_code", 0), exc.content) from exc
        except (requests.RequestException, OSError, ValueError) as exc:
            raise ProviderUnavailable(f"PayPal: {type(exc).__name__}: {exc}") from exc
        if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
            raise _classify(400, answer["error"])  # the SDK hands a 400 back as {"error": ...}
        return answer if isinstance(answer, dict) else {}


def _classify(status: int, content: Any) -> RefundError:
    """Map one PayPal error answer onto the service's taxonomy (retryable or not)."""
    body = content if isinstance(content, dict) else _parse(content)
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
    if status == 409:  # our request id is still being worked on at PayPal: try again
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


def _parse(content: Any) -> Json:
    try:
        parsed = json.loads(content) if content else {}
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _psp_refund(refund: Json) -> PspRefund:
    amount, currency = minor_units(refund["amount"])
    status = str(refund.get("status"))
    reason = (refund.get("status_details") or {}).get("reason")
    failed = REFUND_STATES.get(status) is PspRefundStatus.FAILED
    return PspRefund(
        psp_refund_id=str(refund["id"]),
        status=REFUND_STATES.get(status, PspRefundStatus.PENDING),
        amount=amount,
        currency=currency,
        failure_reason=f"PayPal refund {status}" + (f" ({reason})" if reason else "")
        if failed
        else None,
    )


def _up_is(resource: Json, kind: str, resource_id: str) -> bool:
    """Whether the resource's ``up`` link names ``/v2/payments/{kind}/{resource_id}``."""
    links = resource.get("links") or []
    ups = [str(link.get("href", "")) for link in links if link.get("rel") == "up"]
    return any(href.endswith(f"/v2/payments/{kind}/{resource_id}") for href in ups)


def _check_id(resource_id: str) -> None:
    if not _ID.match(resource_id):
        raise PaymentNotFound(f"PayPal: {resource_id!r} is not a PayPal id")


def _time(text: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text)) if text else None
    except ValueError:
        return None
