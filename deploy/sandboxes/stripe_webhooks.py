"""Stripe's webhooks, sent by the sandbox: Event objects, signed and retried as Stripe does.

The refund service learns how a refund ended from `refund.updated` / `refund.failed` (polling
is its fallback), acts on `radar.early_fraud_warning.created` and `charge.dispute.created`.
So that `refunds dev`, demos and tests exercise that path, the sandbox posts the same events,
signed `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<payload>")>`, which the
receiver verifies with the stripe library exactly as in production.

Delivery never delays an API answer: events wait until the request that caused them has been
answered, then go out from background tasks, in order per object, retried on a non-2xx answer
or a connection error (5 tries, 0.5 s backoff doubling), then given up and logged.
`GET /_sandbox/webhooks` shows every event with its delivery status and attempts.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import hmac
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import httpx
from aiohttp import web

from deploy.sandboxes.stripe_objects import Charge, JsonObject, new_id, now

# The API version events are rendered in: the one the stripe library in use is pinned to.
API_VERSION = "2026-10-28.endive"
ATTEMPTS = 5
FIRST_BACKOFF_SECONDS = 0.5
TIMEOUT_SECONDS = 10.0
STOP_GRACE_SECONDS = 1.0
LOG_SIZE = 1000
FRAUD_TYPES = (
    "card_never_received fraudulent_card_application made_with_counterfeit_card "
    "made_with_lost_card made_with_stolen_card misc unauthorized_use_of_card"
).split()
log = logging.getLogger(__name__)


class Emit(Protocol):
    """How the sandbox's endpoints announce a change: the event type, the object as the API
    now returns it, its fields before the change (for `previous_attributes`), and whether an
    API request made it (then the event names that request) or it happened on its own."""

    def __call__(
        self,
        event_type: str,
        obj: JsonObject,
        previous: JsonObject | None = None,
        *,
        by_request: bool = False,
    ) -> None: ...


def signature_header(payload: bytes, secret: str, timestamp: int) -> str:
    """Stripe's scheme: HMAC-SHA256 with the endpoint secret over `<t>.<payload>`."""
    signed = str(timestamp).encode() + b"." + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def dispute_object(charge: Charge) -> JsonObject:
    """The Dispute a `pm_card_createDispute` payment gets (id already on the charge)."""
    return {
        "id": charge.dispute,
        "object": "dispute",
        "amount": charge.amount,
        "balance_transactions": [],
        "charge": charge.id,
        "created": now(),
        "currency": charge.currency,
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": charge.payment_intent,
        "reason": "fraudulent",
        "status": "needs_response",
    }


def early_fraud_warning(charge: Charge, fraud_type: str = "misc") -> JsonObject:
    """Stripe calls a warning actionable while the charge is neither disputed nor fully
    refunded (a refund then heads off the chargeback)."""
    return {
        "id": new_id("issfr"),
        "object": "radar.early_fraud_warning",
        "actionable": charge.dispute is None and charge.amount_refunded < charge.amount,
        "charge": charge.id,
        "created": now(),
        "fraud_type": fraud_type,
        "livemode": False,
        "payment_intent": charge.payment_intent,
    }


@dataclass
class Delivery:
    """One event and what became of sending it: pending, delivered or failed (given up)."""

    event: JsonObject
    status: str = "pending"
    attempts: int = 0
    last_status: int | None = None
    last_error: str | None = None
    delivered_at: float | None = None

    def to_json(self) -> JsonObject:
        event = self.event
        about = {
            "id": event["id"],
            "type": event["type"],
            "object_id": event["data"]["object"]["id"],
        }
        return {**about, **asdict(self)}


# Events made while an API request runs wait here, with whether that request made them, until
# it is answered (and its Request-Id is known).
_REQUEST_EVENTS: contextvars.ContextVar[list[tuple[JsonObject, bool]] | None] = (
    contextvars.ContextVar("stripe_sandbox_request_events", default=None)
)


class Webhooks:
    """Builds, signs, sends and logs events. Without `url` (and `secret`) nothing is sent.
    `attempts`, `first_backoff` and `timeout` may be changed while it runs (tests do)."""

    def __init__(self, url: str | None = None, secret: str | None = None) -> None:
        if url is not None:
            if not secret:
                raise ValueError("a webhook_url needs a webhook_secret to sign events with")
            if httpx.URL(url).scheme not in ("http", "https"):
                raise ValueError(f"webhook_url {url!r} is not an http(s) URL")
        self.url, self._secret = url, secret
        self.attempts = ATTEMPTS
        self.first_backoff = FIRST_BACKOFF_SECONDS
        self.timeout = TIMEOUT_SECONDS
        self.deliveries: deque[Delivery] = deque(maxlen=LOG_SIZE)
        self._queues: dict[str, deque[Delivery]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._client: httpx.AsyncClient | None = None
        self._closed = False

    @property
    def enabled(self) -> bool:
        return self.url is not None and bool(self._secret)

    def emit(
        self,
        event_type: str,
        obj: JsonObject,
        previous: JsonObject | None = None,
        *,
        by_request: bool = False,
    ) -> None:
        if not self.enabled or self._closed:
            return
        data: JsonObject = {"object": obj}
        if previous is not None:
            data["previous_attributes"] = {
                key: value for key, value in previous.items() if obj.get(key) != value
            }
        event: JsonObject = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
        drafts = _REQUEST_EVENTS.get()
        if drafts is not None:
            drafts.append((event, by_request))
        else:
            self._enqueue(event)

    def middleware(self) -> Any:
        """Hold the events a request makes until it is answered, then name it in them."""

        @web.middleware
        async def attribute(
            request: web.Request,
            handler: Callable[[web.Request], Any],
        ) -> web.StreamResponse:
            drafts: list[tuple[JsonObject, bool]] = []
            token = _REQUEST_EVENTS.set(drafts)
            request_id: str | None = None
            try:
                response: web.StreamResponse = await handler(request)
                request_id = response.headers.get("Request-Id")
                return response
            finally:
                _REQUEST_EVENTS.reset(token)
                key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
                for event, by_request in drafts:
                    if by_request and request_id is not None:
                        event["request"] = {"id": request_id, "idempotency_key": key}
                    self._enqueue(event)

        return attribute

    def add_routes(self, app: web.Application) -> None:
        """`GET /_sandbox/webhooks`: the delivery log, oldest first (`?type=` filters)."""

        async def deliveries(request: web.Request) -> web.Response:
            wanted = request.query.get("type")
            data = [d.to_json() for d in self.deliveries if wanted in (None, d.event["type"])]
            listing = {"object": "list", "url": "/_sandbox/webhooks", "data": data}
            return web.json_response({**listing, "webhook_url": self.url})

        app.router.add_get("/_sandbox/webhooks", deliveries)

    async def close(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Let deliveries under way finish for up to `grace` seconds, then cancel the rest."""
        self._closed = True
        workers = list(self._workers.values())
        if workers:
            await asyncio.wait(workers, timeout=grace)
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        for delivery in self.deliveries:
            if delivery.status == "pending":
                delivery.status, delivery.last_error = "failed", "the sandbox stopped"
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _enqueue(self, event: JsonObject) -> None:
        if self._closed:
            return
        delivery = Delivery(event)
        self.deliveries.append(delivery)
        key = str(event["data"]["object"]["id"])
        self._queues.setdefault(key, deque()).append(delivery)
        if key not in self._workers:
            # A fresh context: the sender must not see the request it was started from.
            task = asyncio.get_running_loop().create_task(
                self._drain(key), context=contextvars.Context()
            )
            self._workers[key] = task

    async def _drain(self, key: str) -> None:
        """Send one object's events one after another, so they arrive in the order made."""
        queue = self._queues[key]
        try:
            while queue:
                await self._deliver(queue[0])
                queue.popleft()
        finally:
            del self._queues[key], self._workers[key]

    async def _deliver(self, delivery: Delivery) -> None:
        assert self.url is not None and self._secret is not None
        if self._client is None:
            # trust_env=False: a proxy from the environment must not swallow local deliveries.
            self._client = httpx.AsyncClient(timeout=self.timeout, trust_env=False)
        payload = json.dumps(delivery.event, indent=2).encode()
        for attempt in range(1, self.attempts + 1):
            delivery.attempts = attempt
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                "Stripe-Signature": signature_header(payload, self._secret, int(time.time())),
            }
            try:
                answer = await self._client.post(self.url, content=payload, headers=headers)
            except (httpx.HTTPError, httpx.InvalidURL) as problem:
                delivery.last_status = None
                delivery.last_error = f"{type(problem).__name__}: {problem}"
            else:
                delivery.last_status = answer.status_code
                if answer.is_success:
                    delivery.status, delivery.last_error = "delivered", None
                    delivery.delivered_at = time.time()
                    return
                delivery.last_error = f"answered HTTP {answer.status_code}"
            if attempt < self.attempts:
                await asyncio.sleep(self.first_backoff * 2 ** (attempt - 1))
        delivery.status = "failed"
        log.warning(
            "Stripe sandbox gave up on webhook %s (%s) to %s after %d attempts: %s",
            delivery.event["id"],
            delivery.event["type"],
            self.url,
            delivery.attempts,
            delivery.last_error,
        )
