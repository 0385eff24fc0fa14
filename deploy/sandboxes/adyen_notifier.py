"""Adyen's standard notifications, sent by the sandbox as Adyen sends them.

Each NotificationRequestItem is signed with the HMAC key through the Adyen library's own
``generate_notification_sig`` (the receiver verifies with its own code: two implementations of
the same scheme checking each other), posted as a one-item batch with basic auth when
configured, and retried until the answer is the text ``[accepted]`` (5 tries, 0.5 s backoff
doubling), then given up and logged. Items go out one after another in the order made.
``GET /_sandbox/notifications`` shows each with its delivery status.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from dataclasses import asdict, dataclass

import httpx
from Adyen.util import generate_notification_sig  # type: ignore[import-untyped]
from aiohttp import web

from deploy.sandboxes.adyen_state import JsonObject, now_iso

ATTEMPTS = 5
FIRST_BACKOFF_SECONDS = 0.5
TIMEOUT_SECONDS = 10.0
LOG_SIZE = 1000
log = logging.getLogger(__name__)


def notification_item(
    event_code: str,
    psp_reference: str,
    merchant_account: str,
    merchant_reference: str,
    value: int,
    currency: str,
    success: bool,
    *,
    original_reference: str = "",
    reason: str = "",
    additional_data: dict[str, str] | None = None,
) -> JsonObject:
    item: JsonObject = {
        "additionalData": dict(additional_data or {}),
        "amount": {"currency": currency, "value": value},
        "eventCode": event_code,
        "eventDate": now_iso(),
        "merchantAccountCode": merchant_account,
        "merchantReference": merchant_reference,
        "paymentMethod": "visa",
        "pspReference": psp_reference,
        "reason": reason,
        "success": "true" if success else "false",
    }
    if original_reference:
        item["originalReference"] = original_reference
    return item


def sign_item(item: JsonObject, hex_key: str) -> JsonObject:
    """The item with ``additionalData.hmacSignature`` set (Adyen's per-item HMAC)."""
    signature = generate_notification_sig(item, hex_key).decode()
    return {
        **item,
        "additionalData": {**item.get("additionalData", {}), "hmacSignature": signature},
    }


@dataclass
class Delivery:
    item: JsonObject
    status: str = "pending"
    attempts: int = 0
    last_status: int | None = None
    last_error: str | None = None
    delivered_at: float | None = None

    def to_json(self) -> JsonObject:
        about = {
            k: self.item.get(k, "")
            for k in ("eventCode", "pspReference", "originalReference", "merchantReference")
        }
        about["success"] = self.item["success"]
        return {**about, **{k: v for k, v in asdict(self).items() if k != "item"}}


class Notifier:
    """Signs, sends and logs items. Without ``url`` nothing is sent (but items are logged as
    ``not_sent``); ``attempts`` and ``first_backoff`` may be changed while it runs."""

    def __init__(
        self,
        url: str | None,
        hmac_key: str | None,
        auth: tuple[str, str] | None = None,
    ) -> None:
        if url is not None:
            if not hmac_key:
                raise ValueError("a webhook_url needs an hmac_key to sign notifications with")
            if httpx.URL(url).scheme not in ("http", "https"):
                raise ValueError(f"webhook_url {url!r} is not an http(s) URL")
        if hmac_key:
            bytes.fromhex(hmac_key)  # a ValueError now, not at the first notification
        self.url, self._key, self._auth = url, hmac_key, auth
        self.attempts = ATTEMPTS
        self.first_backoff = FIRST_BACKOFF_SECONDS
        self.deliveries: deque[Delivery] = deque(maxlen=LOG_SIZE)
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    def send(self, item: JsonObject) -> None:
        signed = sign_item(item, self._key) if self._key else item
        delivery = Delivery(signed)
        self.deliveries.append(delivery)
        if self.url is None:
            delivery.status = "not_sent"
            return
        self._queue.put_nowait(delivery)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._drain())

    def add_routes(self, app: web.Application) -> None:
        async def show(request: web.Request) -> web.Response:
            wanted = request.query.get("eventCode")
            data = [d.to_json() for d in self.deliveries if wanted in (None, d.item["eventCode"])]
            return web.json_response({"webhook_url": self.url, "data": data})

        app.router.add_get("/_sandbox/notifications", show)

    async def close(self, grace: float = 1.0) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            await asyncio.wait([worker], timeout=grace)
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
        for delivery in self.deliveries:
            if delivery.status == "pending":
                delivery.status, delivery.last_error = "failed", "the sandbox stopped"
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _drain(self) -> None:
        while not self._queue.empty():
            await self._deliver(self._queue.get_nowait())

    async def _deliver(self, delivery: Delivery) -> None:
        assert self.url is not None
        if self._client is None:  # no proxy from the environment for local deliveries
            self._client = httpx.AsyncClient(timeout=TIMEOUT_SECONDS, trust_env=False)
        body = {"live": "false", "notificationItems": [{"NotificationRequestItem": delivery.item}]}
        payload = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "Adyen HttpClient 1.0"}
        for attempt in range(1, self.attempts + 1):
            delivery.attempts = attempt
            try:
                answer = await self._client.post(
                    self.url,
                    content=payload,
                    headers=headers,
                    auth=httpx.BasicAuth(*self._auth) if self._auth else httpx.USE_CLIENT_DEFAULT,
                )
            except httpx.HTTPError as problem:
                delivery.last_status, delivery.last_error = None, f"{problem!r}"
            else:
                delivery.last_status = answer.status_code
                if answer.status_code == 200 and answer.text.strip() == "[accepted]":
                    delivery.status, delivery.last_error = "delivered", None
                    delivery.delivered_at = time.time()
                    return
                delivery.last_error = f"answered HTTP {answer.status_code}: {answer.text[:200]}"
            if attempt < self.attempts:
                await asyncio.sleep(self.first_backoff * 2 ** (attempt - 1))
        delivery.status = "failed"
        log.warning(
            "Adyen sandbox gave up on %s %s after %d attempts: %s",
            delivery.item["eventCode"],
            delivery.item["pspReference"],
            delivery.attempts,
            delivery.last_error,
        )
