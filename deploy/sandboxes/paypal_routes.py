"""PayPal's HTTP surface over the sandbox: OAuth, bearer tokens, PayPal-Request-Id, Prefer.

Everything here is what the real API does around an endpoint, because the refund service
leans on it. `PayPal-Request-Id` (kept 45 days for refunds): a repeated id gets the first
answer again, status and body, even when that answer was lost to a dropped connection; PayPal
documents that it "returns the latest status of the previous request that used that same
header" and does not compare bodies, so a repeated id with another body gets that same first
answer (it never makes a second refund); an id whose first request is still running gets 409
PREVIOUS_REQUEST_IN_PROGRESS; an id longer than PayPal's documented 108 characters is refused
(400). Only successes and 422 refusals are kept, so a request refused
for its form (400) or failed by a fault (5xx) can be corrected or retried with the same id.
`Prefer: return=representation` gives the whole resource, else the minimal `id`, `status`,
`links` (a void then answers 204 without a body), as PayPal does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from deploy.sandboxes.faults import CONTROL_PREFIX
from deploy.sandboxes.paypal_errors import (
    PayPalApiError,
    bad_client,
    bad_token,
    debug_id,
    in_progress,
    invalid,
)
from deploy.sandboxes.paypal_objects import JsonObject, Remembered, SandboxState
from deploy.sandboxes.paypal_payments import Payments
from deploy.sandboxes.paypal_refunds import Refunds
from deploy.sandboxes.paypal_webhooks import Webhooks

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Operation = Callable[[web.Request, JsonObject], tuple[int, JsonObject | None]]

REQUEST_ID_TTL_SECONDS = 45 * 86400
REQUEST_ID_MAX_LENGTH = 108
REFUSED_SECRETS = frozenset({"bad-secret", "wrong"})
TOKEN_SECONDS = 32400
_SCOPE = "https://uri.paypal.com/services/payments/refund https://uri.paypal.com/services/payments/payment/authcapture"


def _json(status: int, body: JsonObject | None) -> web.Response:
    headers = {"PayPal-Debug-Id": debug_id()}
    if body is None:
        return web.Response(status=status, headers=headers)
    return web.Response(
        status=status, text=json.dumps(body), content_type="application/json", headers=headers
    )


def _minimal(api: JsonObject) -> JsonObject:
    return {key: api[key] for key in ("id", "status", "links") if key in api}


class PayPalApi:
    """The `/v1` and `/v2` endpoints plus the sandbox's own `/_sandbox` controls for PayPal."""

    def __init__(
        self,
        state: SandboxState,
        payments: Payments,
        refunds: Refunds,
        webhooks: Webhooks,
        on_change: Callable[[], None],
    ) -> None:
        self.state, self.payments, self.refunds = state, payments, refunds
        self.webhooks, self.on_change = webhooks, on_change
        self._in_flight: set[str] = set()

    def add_routes(self, app: web.Application) -> None:
        p, r, add = self.payments, self.refunds, app.router
        full = self._full
        add.add_post("/v1/oauth2/token", self._token)
        add.add_post(
            "/v2/checkout/orders",
            self._endpoint(lambda q, b: (201, p.order_api(p.create_order(b)))),
        )
        add.add_get(
            "/v2/checkout/orders/{id}",
            self._endpoint(lambda q, b: (200, p.order_api(p.order(q.match_info["id"])))),
        )
        add.add_post(
            "/v2/checkout/orders/{id}/capture",
            self._endpoint(lambda q, b: (201, p.order_api(p.capture_order(q.match_info["id"])))),
        )
        add.add_post(
            "/v2/checkout/orders/{id}/authorize",
            self._endpoint(lambda q, b: (201, p.order_api(p.authorize_order(q.match_info["id"])))),
        )
        auths = "/v2/payments/authorizations/{id}"
        add.add_get(
            auths,
            self._endpoint(lambda q, b: (200, p.authorization(q.match_info["id"]).to_api(p.base))),
        )
        add.add_post(
            auths + "/capture",
            self._endpoint(
                lambda q, b: (
                    201,
                    full(q, p.capture_api(p.capture_authorization(q.match_info["id"], b))),
                )
            ),
        )
        add.add_post(auths + "/void", self._endpoint(self._void))
        add.add_get(
            "/v2/payments/captures/{id}",
            self._endpoint(lambda q, b: (200, p.capture_api(p.capture(q.match_info["id"])))),
        )
        add.add_post(
            "/v2/payments/captures/{id}/refund",
            self._endpoint(lambda q, b: (201, full(q, r.to_api(r.create(q.match_info["id"], b))))),
        )
        add.add_get(
            "/v2/payments/refunds/{id}",
            self._endpoint(lambda q, b: (200, r.to_api(r.refund(q.match_info["id"])))),
        )
        add.add_post(
            "/v1/notifications/verify-webhook-signature",
            self._endpoint(
                lambda q, b: (200, {"verification_status": self.webhooks.verification_status(b)})
            ),
        )
        add.add_route("*", "/v{version:[12]}/{tail:.*}", self._endpoint(self._unknown))
        add.add_get("/_sandbox/captures/{id}/refunds", self._control(self._capture_refunds))
        add.add_post(
            "/_sandbox/refunds/{id}/settle",
            self._control(
                lambda q, b: r.to_api(r.settle(q.match_info["id"], str(b.get("status"))))
            ),
        )
        add.add_post(
            "/_sandbox/disputes",
            self._control(
                lambda q, b: p.dispute(
                    str(b.get("capture_id")), str(b.get("reason", "UNAUTHORISED"))
                )
            ),
        )
        add.add_get(
            "/_sandbox/health",
            self._control(
                lambda q, b: {
                    "ok": True,
                    "captures": len(self.state.captures),
                    "refunds": len(self.state.refunds),
                }
            ),
        )

    @staticmethod
    def _full(request: web.Request, api: JsonObject) -> JsonObject:
        wants = "return=representation" in request.headers.get("Prefer", "")
        return api if wants else _minimal(api)

    def _void(self, request: web.Request, _: JsonObject) -> tuple[int, JsonObject | None]:
        auth = self.payments.void_authorization(request.match_info["id"])
        if "return=representation" in request.headers.get("Prefer", ""):
            return 200, auth.to_api(self.payments.base)
        return 204, None

    def _unknown(self, request: web.Request, _: JsonObject) -> tuple[int, JsonObject | None]:
        raise PayPalApiError(404)

    def _capture_refunds(self, request: web.Request, _: JsonObject) -> JsonObject:
        capture = self.payments.capture(request.match_info["id"])
        refunds = [self.refunds.to_api(self.state.refunds[r]) for r in capture.refund_ids]
        return {"capture_id": capture.id, "refunds": refunds}

    def client_of(self, request: web.Request) -> str | None:
        """The client id an access token was issued to; None for a missing or unknown one."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return self.state.tokens.get(token.strip()) if scheme.lower() == "bearer" else None

    async def _token(self, request: web.Request) -> web.Response:
        """`POST /v1/oauth2/token` with HTTP basic client id:secret (client_credentials)."""
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        try:
            pair = base64.b64decode(credential.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            pair = ""
        client_id, _, secret = pair.partition(":")
        if scheme.lower() != "basic" or not client_id or not secret or secret in REFUSED_SECRETS:
            error = bad_client()
            return _json(error.status, error.body())
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            body = {"error": "unsupported_grant_type", "error_description": "Grant Type is NULL"}
            return _json(400, body)
        token = "A21AA" + secrets.token_urlsafe(60)
        self.state.tokens[token] = client_id
        self.on_change()
        return _json(
            200,
            {
                "scope": _SCOPE,
                "access_token": token,
                "token_type": "Bearer",
                "app_id": "APP-80W284485P519543T",
                "expires_in": TOKEN_SECONDS,
                "nonce": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + secrets.token_hex(8),
            },
        )

    def _endpoint(self, operation: Operation) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            if self.client_of(request) is None:
                error = bad_token()
                return _json(error.status, error.body())
            body: JsonObject = {}
            if request.method == "POST" and request.can_read_body:
                text = await request.text()
                try:
                    parsed = json.loads(text) if text.strip() else {}
                except ValueError:
                    parsed = None
                if not isinstance(parsed, dict):
                    error = invalid(
                        "MALFORMED_REQUEST_JSON", "The request JSON is not well formed."
                    )
                    return _json(error.status, error.body())
                body = parsed
            changed = self.refunds.settle_due()
            try:
                status, answer = operation(request, body)
            except PayPalApiError as error:
                status, answer = error.status, error.body()
            except Exception:
                log.exception("PayPal sandbox failed on %s %s", request.method, request.path)
                status, answer = 500, PayPalApiError(500).body()
            if request.method == "POST" or changed:
                self.on_change()
            return _json(status, answer)

        return handle

    def _control(self, operation: Callable[[web.Request, JsonObject], JsonObject]) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                body = await request.json() if request.method == "POST" else {}
                if not isinstance(body, dict):
                    raise ValueError("expected a JSON object")
            except ValueError:
                return web.json_response({"error": "expected a JSON object"}, status=400)
            self.refunds.settle_due()
            try:
                answer = operation(request, body)
            except PayPalApiError as error:
                return web.json_response(error.body(), status=error.status)
            self.on_change()
            return web.json_response(answer)

        return handle

    def idempotency(self) -> Any:
        """Outermost middleware, so a dropped answer is still kept and a slow one is in flight."""

        @web.middleware
        async def replay(request: web.Request, handler: Handler) -> web.StreamResponse:
            request_id = request.headers.get("PayPal-Request-Id", "").strip()
            client = self.client_of(request)
            skip = request.method != "POST" or request.path.startswith(CONTROL_PREFIX)
            if skip or not request_id or client is None or not request.path.startswith("/v2/"):
                return await handler(request)
            if len(request_id) > REQUEST_ID_MAX_LENGTH:
                error = invalid(
                    "INVALID_PARAMETER_SYNTAX",
                    f"PayPal-Request-Id is longer than {REQUEST_ID_MAX_LENGTH} characters.",
                    "PayPal-Request-Id",
                )
                return _json(error.status, error.body())
            slot = hashlib.sha256(client.encode()).hexdigest()[:16] + ":" + request_id
            record = self.state.idempotency.get(slot)
            if record is not None:
                return _json(record.status, json.loads(record.body) if record.body else None)
            if slot in self._in_flight:
                error = in_progress()
                return _json(error.status, error.body())
            self._in_flight.add(slot)
            try:
                response = await handler(request)
                if isinstance(response, web.Response) and (
                    200 <= response.status < 300 or response.status == 422
                ):
                    self._remember(slot, response)
                return response
            finally:
                self._in_flight.discard(slot)

        return replay

    def _remember(self, slot: str, response: web.Response) -> None:
        moment = time.time()
        records = self.state.idempotency
        for old in [s for s, r in records.items() if r.created < moment - REQUEST_ID_TTL_SECONDS]:
            del records[old]
        text = response.body.decode() if isinstance(response.body, bytes) else ""
        records[slot] = Remembered(response.status, text, moment)
        self.on_change()
