"""The Adyen Checkout API endpoints the sandbox speaks (any ``/vNN`` version prefix).

``POST /payments`` (a test card in ``paymentMethod.encryptedCardNumber``; captured at once
unless ``captureDelayHours`` > 0, then authorised only: the sandbox never runs the delayed
capture, ``/captures`` does), and ``POST /payments/{pspReference}/refunds``, ``/cancels``,
``/captures``, each answered 201 ``received``. Requests are authenticated by ``X-API-Key``
(``wrong`` or ``bad-key`` is refused 401, as a revoked key would be).

Idempotency as Adyen documents it: a repeated ``Idempotency-Key`` gets the first answer again,
whatever the body (Adyen documents no comparison of bodies: the key alone identifies the
request, so a different body with the same key is NOT carried out); keys over 64 characters are
refused; error answers are not kept, so a corrected retry with the same key goes through.
Validation errors are 422 in Adyen's shape: 167 unknown pspReference, 137 invalid amount, 100
missing field; a wrong merchant account is 403 errorCode 901. Balance, currency and state are
checked later, as Adyen does, and refused by notification (see ``adyen_settlement``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from deploy.sandboxes.adyen_state import (
    REFUSED_CARD,
    AdyenApiError,
    JsonObject,
    Modification,
    Payment,
    SandboxState,
    Scheduled,
    new_psp_reference,
    unauthorized,
)
from deploy.sandboxes.faults import CONTROL_PREFIX

REFUSED_KEYS = frozenset({"wrong", "bad-key"})
MAX_IDEMPOTENCY_KEY = 64
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(error: AdyenApiError) -> web.Response:
    return web.json_response(error.body(), status=error.status)


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Adyen's API-key check: every API call needs a known ``X-API-Key``."""
    if not request.path.startswith(CONTROL_PREFIX):
        key = request.headers.get("X-API-Key", "")
        if not key or key in REFUSED_KEYS:
            return error_response(unauthorized())
    return await handler(request)


class AdyenApi:
    def __init__(
        self,
        state: SandboxState,
        merchant_account: str,
        settle_after: Callable[[], float],
        changed: Callable[[], None],
    ) -> None:
        self.state = state
        self.merchant_account = merchant_account
        self._settle_after = settle_after
        self._changed = changed

    def add_routes(self, app: web.Application) -> None:
        version = "/{version:v[0-9]+}"
        app.router.add_post(f"{version}/payments", self._idempotent(self.pay))
        for kind, path in (("refund", "refunds"), ("cancel", "cancels"), ("capture", "captures")):
            app.router.add_post(
                f"{version}/payments/{{psp}}/{path}", self._idempotent(self._modify(kind))
            )

    def _idempotent(self, handle: Callable[[JsonObject, web.Request], JsonObject]) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            key = request.headers.get("Idempotency-Key")
            if key is not None and (not key or len(key) > MAX_IDEMPOTENCY_KEY):
                return error_response(
                    AdyenApiError(422, "000", "Idempotency-Key must be 1 to 64 characters")
                )
            headers = {"Idempotency-Key": key} if key else {}
            if key and key in self.state.idempotent:
                kept = self.state.idempotent[key]
                return web.json_response(kept["body"], status=kept["status"], headers=headers)
            try:
                body = await request.json()
                if not isinstance(body, dict):
                    raise ValueError("not an object")
            except ValueError:
                return error_response(AdyenApiError(400, "000", "Unable to parse message"))
            try:
                answer = handle(body, request)
            except AdyenApiError as error:
                return error_response(error)
            status = 200 if request.match_info.get("psp") is None else 201
            if key:
                self.state.idempotent[key] = {"status": status, "body": answer}
            self._changed()
            return web.json_response(answer, status=status, headers=headers)

        return run

    def _check_merchant(self, body: JsonObject) -> str:
        account = body.get("merchantAccount")
        if not isinstance(account, str) or not account:
            raise AdyenApiError(422, "100", "Required field 'merchantAccount' is not provided.")
        if account != self.merchant_account:
            raise AdyenApiError(403, "901", "Invalid Merchant Account", "security")
        return account

    def pay(self, body: JsonObject, _: web.Request) -> JsonObject:
        account = self._check_merchant(body)
        value, currency = _amount(body)
        reference = body.get("reference")
        if not isinstance(reference, str) or not reference:
            raise AdyenApiError(422, "100", "Required field 'reference' is not provided.")
        method = body.get("paymentMethod")
        card = method.get("encryptedCardNumber") if isinstance(method, dict) else None
        if not isinstance(card, str) or not card.startswith("test_") or not card[5:].isdigit():
            raise AdyenApiError(422, "101", "Invalid card number")
        delay = body.get("captureDelayHours")
        shopper = body.get("shopperReference")
        payment = Payment(
            psp_reference=new_psp_reference(),
            merchant_account=account,
            reference=reference,
            value=value,
            currency=currency,
            card=card,
            authorised=card != REFUSED_CARD,
            shopper_reference=shopper if isinstance(shopper, str) else None,
        )
        self.state.payments[payment.psp_reference] = payment
        due = time.time() + self._settle_after()
        self.state.scheduled.append(Scheduled(due, "authorisation", payment.psp_reference))
        if payment.authorised and not (isinstance(delay, int) and delay > 0):
            capture = self._record("capture", payment, reference, value, currency)
            self.state.scheduled.append(Scheduled(due, "settle", capture.psp_reference))
        answer: JsonObject = {
            "pspReference": payment.psp_reference,
            "resultCode": "Authorised" if payment.authorised else "Refused",
            "amount": {"value": value, "currency": currency},
            "merchantReference": reference,
        }
        if not payment.authorised:
            answer.update(refusalReason="Refused", refusalReasonCode="2")
        return answer

    def _modify(self, kind: str) -> Callable[[JsonObject, web.Request], JsonObject]:
        def modify(body: JsonObject, request: web.Request) -> JsonObject:
            account = self._check_merchant(body)
            payment = self.state.payments.get(request.match_info["psp"])
            if payment is None:
                raise AdyenApiError(422, "167", "Original pspReference required for this operation")
            if kind == "cancel":
                value, currency = payment.value, payment.currency
            else:
                value, currency = _amount(body)
            reference = body.get("reference")
            made = self._record(
                kind, payment, reference if isinstance(reference, str) else "", value, currency
            )
            due = time.time() + self._settle_after()
            self.state.scheduled.append(Scheduled(due, "settle", made.psp_reference))
            answer: JsonObject = {
                "merchantAccount": account,
                "paymentPspReference": payment.psp_reference,
                "pspReference": made.psp_reference,
                "reference": made.reference,
                "status": "received",
            }
            if kind != "cancel":
                answer["amount"] = {"value": value, "currency": currency}
            return answer

        return modify

    def _record(
        self, kind: str, payment: Payment, reference: str, value: int, currency: str
    ) -> Modification:
        made = Modification(
            new_psp_reference(), payment.psp_reference, kind, reference, value, currency
        )
        self.state.modifications[made.psp_reference] = made
        return made


def _amount(body: JsonObject) -> tuple[int, str]:
    amount: Any = body.get("amount")
    if not isinstance(amount, dict):
        raise AdyenApiError(422, "100", "Required object 'amount' is not provided.")
    value, currency = amount.get("value"), amount.get("currency")
    if type(value) is not int or value <= 0:
        raise AdyenApiError(422, "137", "Invalid amount specified")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        raise AdyenApiError(422, "100", "Required field 'amount.currency' is not provided.")
    return value, currency.upper()
