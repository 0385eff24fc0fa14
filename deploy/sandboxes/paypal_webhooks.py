"""PayPal's webhooks, sent by the sandbox: events signed and retried as PayPal does.

The refund service learns how a refund ended from `PAYMENT.CAPTURE.REFUNDED`,
`PAYMENT.REFUND.PENDING` and `PAYMENT.REFUND.FAILED` (polling is its fallback), and acts on
`CUSTOMER.DISPUTE.CREATED`. So that `refunds dev`, demos and tests exercise that path, the
sandbox posts the same events with PayPal's headers (PAYPAL-TRANSMISSION-ID, -TIME, -SIG,
PAYPAL-CERT-URL pointing at its own `/v1/notifications/certs/{name}`, PAYPAL-AUTH-ALGO
`SHA256withRSA`), which the receiver verifies as it verifies PayPal's.

Delivery never delays an API answer: events go out from background tasks, in order per
resource, retried on a non-2xx answer or a connection error (5 tries, 0.5 s backoff doubling;
PayPal itself retries for 3 days), then given up and logged. Faults never apply to them.
`GET /_sandbox/webhooks` shows every event with its delivery status and attempts.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass

import httpx
from aiohttp import web

from deploy.sandboxes.paypal_certs import CERT_NAME, SigningCertificate, transmission_message
from deploy.sandboxes.paypal_objects import JsonObject, iso, new_id

ATTEMPTS = 5
FIRST_BACKOFF_SECONDS = 0.5
TIMEOUT_SECONDS = 10.0
STOP_GRACE_SECONDS = 1.0
LOG_SIZE = 1000
AUTH_ALGO = "SHA256withRSA"
log = logging.getLogger(__name__)


def event_bytes(event: JsonObject) -> bytes:
    """The body as sent (and as re-serialized for verify-webhook-signature)."""
    return json.dumps(event, separators=(",", ":")).encode()


@dataclass
class Delivery:
    event: JsonObject
    status: str = "pending"
    attempts: int = 0
    last_status: int | None = None
    last_error: str | None = None
    delivered_at: float | None = None

    def to_json(self) -> JsonObject:
        about = {"id": self.event["id"], "event_type": self.event["event_type"]}
        return {**about, "resource_id": _resource_key(self.event), **asdict(self)}


def _resource_key(event: JsonObject) -> str:
    resource = event["resource"]
    return str(resource.get("id") or resource.get("dispute_id"))


class Webhooks:
    """Builds, signs, sends and logs events; without url, webhook id and certificate nothing
    is sent. `attempts`, `first_backoff` and `timeout` may be changed while it runs."""

    def __init__(
        self,
        url: str | None,
        webhook_id: str | None,
        certificate: SigningCertificate | None,
    ) -> None:
        if url is not None and httpx.URL(url).scheme not in ("http", "https"):
            raise ValueError(f"webhook_url {url!r} is not an http(s) URL")
        self.url, self.webhook_id, self.certificate = url, webhook_id, certificate
        self.cert_url = ""  # set once the sandbox knows its address
        self.attempts, self.first_backoff = ATTEMPTS, FIRST_BACKOFF_SECONDS
        self.timeout = TIMEOUT_SECONDS
        self.deliveries: deque[Delivery] = deque(maxlen=LOG_SIZE)
        self._queues: dict[str, deque[Delivery]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._client: httpx.AsyncClient | None = None
        self._closed = False

    @property
    def enabled(self) -> bool:
        return bool(self.url and self.webhook_id and self.certificate)

    def emit(self, event_type: str, resource_type: str, resource: JsonObject, summary: str) -> None:
        if not self.enabled or self._closed:
            return
        event: JsonObject = {
            "id": f"WH-{new_id()}-{new_id()}",
            "event_version": "1.0",
            "create_time": iso(time.time()),
            "resource_type": resource_type,
            "resource_version": "2.0",
            "event_type": event_type,
            "summary": summary,
            "resource": resource,
            "links": [],
        }
        delivery = Delivery(event)
        self.deliveries.append(delivery)
        key = _resource_key(event)
        self._queues.setdefault(key, deque()).append(delivery)
        if key not in self._workers:
            task = asyncio.get_running_loop().create_task(
                self._drain(key), context=contextvars.Context()
            )
            self._workers[key] = task

    def signed_headers(self, body: bytes, at: float | None = None) -> dict[str, str]:
        """PayPal's transmission headers for `body`, signed now (or at `at`)."""
        assert self.certificate is not None and self.webhook_id is not None
        transmission_id = str(uuid.uuid1())
        moment = iso(time.time() if at is None else at)
        message = transmission_message(transmission_id, moment, self.webhook_id, body)
        return {
            "Content-Type": "application/json",
            "User-Agent": "PayPal/AUHD-214.0-58841580",
            "PAYPAL-TRANSMISSION-ID": transmission_id,
            "PAYPAL-TRANSMISSION-TIME": moment,
            "PAYPAL-TRANSMISSION-SIG": self.certificate.sign(message),
            "PAYPAL-CERT-URL": self.cert_url,
            "PAYPAL-AUTH-ALGO": AUTH_ALGO,
        }

    def verification_status(self, request: JsonObject) -> str:
        """What `POST /v1/notifications/verify-webhook-signature` answers for `request`."""
        if self.certificate is None:
            return "FAILURE"
        fields = [request.get(k) for k in ("transmission_id", "transmission_time", "webhook_id")]
        event, signature = request.get("webhook_event"), request.get("transmission_sig")
        if not all(isinstance(v, str) for v in [*fields, signature]) or not isinstance(event, dict):
            return "FAILURE"
        if request.get("auth_algo") != AUTH_ALGO or request.get("cert_url") != self.cert_url:
            return "FAILURE"
        if self.webhook_id is not None and fields[2] != self.webhook_id:
            return "FAILURE"
        message = transmission_message(
            str(fields[0]), str(fields[1]), str(fields[2]), event_bytes(event)
        )
        return "SUCCESS" if self.certificate.verifies(message, str(signature)) else "FAILURE"

    def add_routes(self, app: web.Application) -> None:
        """`GET /v1/notifications/certs/{name}` (public, as at PayPal) and the delivery log."""

        async def certificate(request: web.Request) -> web.Response:
            if self.certificate is None or request.match_info["name"] != CERT_NAME:
                return web.json_response({"name": "RESOURCE_NOT_FOUND"}, status=404)
            return web.Response(body=self.certificate.pem, content_type="application/x-pem-file")

        async def deliveries(request: web.Request) -> web.Response:
            wanted = request.query.get("event_type")
            data = [d.to_json() for d in self.deliveries if wanted in (None, d.event["event_type"])]
            return web.json_response({"webhook_url": self.url, "events": data})

        app.router.add_get("/v1/notifications/certs/{name}", certificate)
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

    async def _drain(self, key: str) -> None:
        queue = self._queues[key]
        try:
            while queue:
                await self._deliver(queue[0])
                queue.popleft()
        finally:
            del self._queues[key], self._workers[key]

    async def _deliver(self, delivery: Delivery) -> None:
        assert self.url is not None
        if self._client is None:
            # trust_env=False: a proxy from the environment must not swallow local deliveries.
            self._client = httpx.AsyncClient(timeout=self.timeout, trust_env=False)
        body = event_bytes(delivery.event)
        for attempt in range(1, self.attempts + 1):
            delivery.attempts = attempt
            try:
                answer = await self._client.post(
                    self.url, content=body, headers=self.signed_headers(body)
                )
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
            "PayPal sandbox gave up on webhook %s (%s) to %s after %d attempts: %s",
            delivery.event["id"],
            delivery.event["event_type"],
            self.url,
            delivery.attempts,
            delivery.last_error,
        )
