"""Stripe's HTTP surface over the sandbox: keys, parameters, idempotency, expansion.

Everything here is what the real API does around an endpoint, because the refund service leans
on it: a retried request with the same Idempotency-Key must get the first answer back (even
when that answer was lost to a dropped connection), and the SDK's exceptions come from the
statuses and error shapes answered here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from aiohttp import web

from deploy.sandboxes import stripe_params as p
from deploy.sandboxes.stripe_balance import balance_transaction
from deploy.sandboxes.stripe_errors import StripeApiError, invalid, unauthenticated
from deploy.sandboxes.stripe_objects import IdempotentResult, JsonObject, SandboxState, new_id
from deploy.sandboxes.stripe_payments import Payments
from deploy.sandboxes.stripe_refunds import Refunds

log = logging.getLogger(__name__)

Operation = Callable[[Mapping[str, str], p.Params], JsonObject]


class ApiObject(Protocol):
    def to_api(self) -> JsonObject: ...


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

IDEMPOTENCY_TTL_SECONDS = 24 * 3600  # Stripe prunes keys once they are at least 24 hours old
EXPANDABLE = {
    "payment_intent": {"latest_charge"},
    "charge": {"payment_intent", "balance_transaction"},
    "refund": {"charge", "payment_intent", "balance_transaction"},
}
_NO_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://stripe.com/docs/api#authentication for details, or we can help at "
    "https://support.stripe.com/."
)


def _request_id() -> str:
    return new_id("req")[:18]


def _dumps(body: JsonObject) -> str:
    return json.dumps(body, indent=2)


def _respond(
    status: int, text: str, request_id: str, key: str | None = None, replayed: bool = False
) -> web.Response:
    headers = {"Request-Id": request_id}
    if key:
        headers["Idempotency-Key"] = key
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return web.Response(status=status, text=text, content_type="application/json", headers=headers)


def _redact(key: str) -> str:
    return key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else "*" * len(key)


def authenticate(request: web.Request) -> str:
    """The secret key from Bearer (as the SDK sends it) or Basic auth (as curl -u does).
    Only test-mode secret keys (`sk_test_...`) exist in a sandbox."""
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    key = credential.strip() if scheme.lower() == "bearer" else ""
    if scheme.lower() == "basic":
        try:
            key = base64.b64decode(credential.strip()).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            key = ""
    if not key:
        raise unauthenticated(_NO_KEY)
    if not key.startswith("sk_test_"):
        raise unauthenticated(f"Invalid API Key provided: {_redact(key)}")
    return key


class StripeApi:
    """The `/v1` endpoints plus the sandbox's own `/_sandbox` controls for Stripe."""

    def __init__(
        self,
        state: SandboxState,
        payments: Payments,
        refunds: Refunds,
        on_change: Callable[[], None],
    ) -> None:
        self.state, self.payments, self.refunds = state, payments, refunds
        self.on_change = on_change

    def add_routes(self, app: web.Application) -> None:
        payments, refunds, router = self.payments, self.refunds, app.router

        def by_id(op: Callable[[str, p.Params], ApiObject]) -> Handler:
            return self._endpoint(lambda match, prm: self._render(op(match["id"], prm), prm))

        intents = "/v1/payment_intents"
        router.add_post(intents, self._endpoint(self._create_intent))
        router.add_get(intents + "/{id}", by_id(self._get_intent))
        router.add_post(intents + "/{id}/confirm", by_id(payments.confirm))
        router.add_post(intents + "/{id}/capture", by_id(payments.capture))
        router.add_post(intents + "/{id}/cancel", by_id(payments.cancel))
        router.add_get("/v1/charges/{id}", by_id(self._get_charge))
        router.add_post(
            "/v1/refunds", self._endpoint(lambda _, prm: self._render(refunds.create(prm), prm))
        )
        router.add_get("/v1/refunds", self._endpoint(self._list_refunds))
        router.add_get("/v1/refunds/{id}", by_id(self._get_refund))
        router.add_get("/v1/balance_transactions/{id}", by_id(self._get_balance_transaction))
        router.add_route("*", "/v1/{tail:.*}", self._unrecognized)
        router.add_post("/_sandbox/refunds/{id}/settle", self._settle)
        router.add_get("/_sandbox/health", self._health)

    def _create_intent(self, _: Mapping[str, str], params: p.Params) -> JsonObject:
        return self._render(self.payments.create(params), params)

    def _get_intent(self, intent_id: str, params: p.Params) -> ApiObject:
        p.reject_unknown(params, ("client_secret",))
        return self.payments.payment_intent(intent_id)

    def _get_charge(self, charge_id: str, params: p.Params) -> ApiObject:
        p.reject_unknown(params, ())
        return self.payments.charge(charge_id)

    def _get_refund(self, refund_id: str, params: p.Params) -> ApiObject:
        p.reject_unknown(params, ())
        return self.refunds.refund(refund_id)

    def _get_balance_transaction(self, txn_id: str, params: p.Params) -> ApiObject:
        p.reject_unknown(params, ())
        return balance_transaction(self.state, txn_id)

    def _list_refunds(self, _: Mapping[str, str], params: p.Params) -> JsonObject:
        listing = self.refunds.list_refunds(params)
        self._expand(listing, p.expand(params))
        return listing

    def _render(self, obj: ApiObject, params: p.Params) -> JsonObject:
        api = obj.to_api()
        self._expand(api, p.expand(params))
        return api

    def _expand(self, api: JsonObject, paths: list[str]) -> None:
        """Replace ids by the objects they name, as `expand[]=latest_charge` asks."""
        for path in paths:
            head, _, rest = path.partition(".")
            if api.get("object") == "list" and head == "data" and rest:
                for item in api["data"]:
                    self._expand(item, [rest])
                continue
            if head not in EXPANDABLE.get(str(api.get("object")), set()):
                raise invalid(f"This property cannot be expanded ({path}).", "expand")
            value = api.get(head)
            if isinstance(value, str):
                api[head] = self._lookup(value)
            if rest and isinstance(api.get(head), dict):
                self._expand(api[head], [rest])

    def _lookup(self, object_id: str) -> JsonObject:
        if object_id.startswith("pi_"):
            return self.payments.payment_intent(object_id).to_api()
        if object_id.startswith("ch_"):
            return self.payments.charge(object_id).to_api()
        if object_id.startswith("txn_"):
            return balance_transaction(self.state, object_id).to_api()
        return self.refunds.refund(object_id).to_api()

    def _endpoint(self, operation: Operation) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            request_id = _request_id()
            try:
                api_key = authenticate(request)
                pairs = list(request.query.items())
                if request.method == "POST":
                    form = await request.post()
                    pairs += [(k, v) for k, v in form.items() if isinstance(v, str)]
                params = p.parse_form(pairs)
            except StripeApiError as error:
                return _respond(error.status, _dumps(error.body()), request_id)
            key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
            # Keys are scoped to the account (here: the API key), which is kept hashed since
            # the idempotency records end up in the state file.
            slot = hashlib.sha256(api_key.encode()).hexdigest()[:16] + ":" + (key or "")
            if key:
                replay = self._replay(slot, key, request, pairs)
                if replay is not None:
                    return replay
            changed = self.refunds.settle_due()
            try:
                status, body, saved = 200, operation(request.match_info, params), True
            except StripeApiError as error:
                status, body, saved = error.status, error.body(), error.saved
            except Exception:
                log.exception("stripe sandbox failed on %s %s", request.method, request.path)
                body = {"error": {"type": "api_error", "message": "Sandbox internal error."}}
                status, saved = 500, False
            text = _dumps(body)
            if key and saved:
                self._remember(slot, request, pairs, status, text, request_id)
            if request.method == "POST" or changed:
                self.on_change()
            return _respond(status, text, request_id, key)

        return handle

    def _replay(
        self, slot: str, key: str, request: web.Request, pairs: list[tuple[str, str]]
    ) -> web.Response | None:
        """Stripe's idempotency: the first answer again, or an idempotency_error when the key
        was first used for another endpoint or other parameters."""
        record = self.state.idempotency.get(slot)
        if record is None:
            return None
        if (record.method, record.path) != (request.method, request.path):
            message = (
                "Keys for idempotent requests can only be used for the same endpoint they were "
                f"first used for ('{record.path}' vs '{request.path}')."
            )
        elif record.fingerprint != p.fingerprint(pairs):
            message = (
                "Keys for idempotent requests can only be used with the same parameters they "
                "were first used with."
            )
        else:
            return _respond(record.status, record.body, record.request_id, key, replayed=True)
        message += f" Try using a key other than '{key}' if you meant to execute a different "
        message += "request."
        error = StripeApiError(400, message, error_type="idempotency_error", saved=False)
        return _respond(400, _dumps(error.body()), _request_id(), key)

    def _remember(
        self,
        slot: str,
        request: web.Request,
        pairs: list[tuple[str, str]],
        status: int,
        text: str,
        request_id: str,
    ) -> None:
        moment = time.time()
        records = self.state.idempotency
        for old in [s for s, r in records.items() if r.created < moment - IDEMPOTENCY_TTL_SECONDS]:
            del records[old]
        records[slot] = IdempotentResult(
            request.method, request.path, p.fingerprint(pairs), status, text, request_id, moment
        )

    async def _unrecognized(self, request: web.Request) -> web.Response:
        try:
            authenticate(request)
        except StripeApiError as refusal:
            return _respond(refusal.status, _dumps(refusal.body()), _request_id())
        error = StripeApiError(
            404,
            f"Unrecognized request URL ({request.method}: {request.path}). Please see "
            "https://stripe.com/docs or we can help at https://support.stripe.com/.",
        )
        return _respond(404, _dumps(error.body()), _request_id())

    async def _settle(self, request: web.Request) -> web.Response:
        """`{"status": "succeeded" | "failed", "failure_reason": ...}` finishes a pending refund."""
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise invalid("expected a JSON object")
            refund = self.refunds.settle(
                request.match_info["id"], str(body.get("status")), body.get("failure_reason")
            )
        except ValueError:
            return web.json_response({"error": "expected a JSON object"}, status=400)
        except StripeApiError as error:
            return web.json_response(error.body(), status=error.status)
        self.on_change()
        return web.json_response(refund.to_api())

    async def _health(self, _: web.Request) -> web.Response:
        counts = {
            "payment_intents": len(self.state.payment_intents),
            "charges": len(self.state.charges),
            "refunds": len(self.state.refunds),
        }
        return web.json_response({"ok": True, "objects": counts})
