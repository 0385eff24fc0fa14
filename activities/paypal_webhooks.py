"""PayPal webhooks: verified with PayPal's transmission signature, then read into actions.

PayPal signs ``<PAYPAL-TRANSMISSION-ID>|<PAYPAL-TRANSMISSION-TIME>|<webhook id>|<CRC32 of the
raw body, unsigned decimal>`` with RSA-SHA256 (PAYPAL-AUTH-ALGO ``SHA256withRSA``), base64 in
PAYPAL-TRANSMISSION-SIG, and names its certificate in PAYPAL-CERT-URL. Two ways to check it
(``PAYPAL_WEBHOOK_VERIFY``):

- ``certificate``: with a configured PEM (``PAYPAL_WEBHOOK_CERT_FILE``, as for the local
  sandbox) use it; otherwise download the certificate from PAYPAL-CERT-URL, which must be
  ``https://<host>/v1/notifications/certs/<name>`` on an API host of the configured
  ``PAYPAL_MODE`` (live: api.paypal.com, api-m.paypal.com; sandbox: their ``.sandbox``
  twins), default port, no query or fragment. Anything else is refused before any download:
  an attacker's certificate would vouch for an attacker's body, and a free-form URL would
  let anyone make the receiver fetch what they like. Downloads are cached by URL, the
  ``CERT_CACHE_SIZE`` latest only. Either certificate must be within its validity window.
- ``api``: ask PayPal's ``POST /v1/notifications/verify-webhook-signature``.

Either way the transmission time must be within 5 minutes (a replayed old delivery, or one
dated ahead, is refused) and the body is parsed only after the signature holds.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from activities.paypal_payments import REFUND_STATES, minor_units
from activities.paypal_provider import PayPalProvider
from activities.webhook_actions import (
    DisputeOpened,
    IgnoredEvent,
    RefundUpdateAction,
    WebhookAction,
    WebhookMalformed,
    WebhookRejected,
)
from workflows.models import ProviderRefundUpdate, Psp

PAYPAL_CERT_HOSTS = {
    "live": ("api.paypal.com", "api-m.paypal.com"),
    "sandbox": ("api.sandbox.paypal.com", "api-m.sandbox.paypal.com"),
}
CERT_PATH = "/v1/notifications/certs/"
CERT_CACHE_SIZE = 16
_CERT_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
TOLERANCE_SECONDS = 300
CERT_TIMEOUT_SECONDS = 10.0
HEADERS = ("transmission-id", "transmission-time", "transmission-sig", "cert-url", "auth-algo")
REFUND_EVENTS = frozenset(
    {
        "PAYMENT.CAPTURE.REFUNDED",
        "PAYMENT.REFUND.PENDING",
        "PAYMENT.REFUND.FAILED",
        "PAYMENT.REFUND.COMPLETED",
        "PAYMENT.REFUND.CANCELLED",
    }
)


class PayPalWebhookVerifier:
    """Verifies a delivery and says what it asks; see the module docstring for the modes.

    ``paypal_mode`` (``PAYPAL_MODE``: live or sandbox) says whose certificate hosts are
    allowed; ``allowed_cert_hosts`` and ``https_only`` may be changed only to fetch a local
    sandbox's certificate in tests.
    """

    def __init__(
        self,
        webhook_id: str | None,
        *,
        mode: str = "certificate",
        paypal_mode: str = "live",
        certificate_pem: bytes | None = None,
        api: PayPalProvider | None = None,
        allowed_cert_hosts: tuple[str, ...] | None = None,
        https_only: bool = True,
        tolerance_s: int = TOLERANCE_SECONDS,
    ) -> None:
        if mode not in ("certificate", "api"):
            raise ValueError(f"PayPal webhook verification is certificate or api, not {mode!r}")
        if mode == "api" and api is None:
            raise ValueError("api verification needs the PayPal adapter (PAYPAL_CLIENT_ID)")
        if paypal_mode not in PAYPAL_CERT_HOSTS:
            raise ValueError(f"PAYPAL_MODE is live or sandbox, not {paypal_mode!r}")
        self.webhook_id, self.mode, self.api = webhook_id, mode, api
        hosts = PAYPAL_CERT_HOSTS[paypal_mode] if allowed_cert_hosts is None else allowed_cert_hosts
        self.allowed_cert_hosts = tuple(host.lower() for host in hosts)
        self.https_only, self.tolerance_s = https_only, tolerance_s
        self._configured = _certificate(certificate_pem) if certificate_pem else None
        self._downloaded: OrderedDict[str, x509.Certificate] = OrderedDict()

    async def actions(self, payload: bytes, headers: Mapping[str, str]) -> list[WebhookAction]:
        """Verify, then read; WebhookRejected (401) or WebhookMalformed (400) otherwise."""
        if not self.webhook_id:
            raise WebhookRejected("no PAYPAL_WEBHOOK_ID is configured: every event is refused")
        lowered = {key.lower(): value for key, value in headers.items()}
        values = {name: lowered.get(f"paypal-{name}", "").strip() for name in HEADERS}
        missing = [f"PAYPAL-{name.upper()}" for name, value in values.items() if not value]
        if missing:
            raise WebhookRejected(f"PayPal webhook without {', '.join(missing)}")
        self._check_time(values["transmission-time"])
        if self.mode == "api":
            await self._verify_by_api(payload, values)
        else:
            if values["auth-algo"] != "SHA256withRSA":
                raise WebhookRejected(f"PAYPAL-AUTH-ALGO {values['auth-algo']!r} is not accepted")
            certificate = self._configured or await self._download(values["cert-url"])
            key = _valid_key(certificate, "configured" if self._configured else "downloaded")
            message = (
                f"{values['transmission-id']}|{values['transmission-time']}|{self.webhook_id}|"
                f"{zlib.crc32(payload) & 0xFFFFFFFF}"
            ).encode()
            try:
                signature = base64.b64decode(values["transmission-sig"], validate=True)
                key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
            except (InvalidSignature, binascii.Error, ValueError):
                raise WebhookRejected("PayPal transmission signature does not verify") from None
        return paypal_event_actions(payload)

    def _check_time(self, text: str) -> None:
        try:
            sent = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise WebhookRejected(f"PAYPAL-TRANSMISSION-TIME {text!r} is not a time") from None
        if sent.tzinfo is None:
            sent = sent.replace(tzinfo=UTC)
        age = (datetime.now(UTC) - sent).total_seconds()
        if age > self.tolerance_s:
            raise WebhookRejected(f"PayPal transmission is {int(age)} s old (over 5 minutes)")
        if age < -self.tolerance_s:
            raise WebhookRejected("PayPal transmission time is in the future")

    def _check_cert_url(self, url: str) -> None:
        """Refuse, before any download, a PAYPAL-CERT-URL that is not one of PayPal's."""
        parts = urlsplit(url)
        try:
            host, port = (parts.hostname or "").lower(), parts.port
        except ValueError:
            raise WebhookRejected(f"PAYPAL-CERT-URL {url!r} is not a URL: not downloaded") from None
        if self.https_only and parts.scheme != "https":
            raise WebhookRejected(f"PAYPAL-CERT-URL {url!r} is not https: not downloaded")
        if host not in self.allowed_cert_hosts or parts.username or parts.password:
            raise WebhookRejected(f"PAYPAL-CERT-URL host {host!r} is not PayPal's: not downloaded")
        if port is not None and self.https_only and port != 443:
            raise WebhookRejected(f"PAYPAL-CERT-URL port {port} is not PayPal's: not downloaded")
        name = parts.path.removeprefix(CERT_PATH)
        if (
            not parts.path.startswith(CERT_PATH)
            or not name
            or not set(name) <= _CERT_NAME_CHARS
            or name in (".", "..")
        ):
            raise WebhookRejected(
                f"PAYPAL-CERT-URL path {parts.path!r} is not under {CERT_PATH}: not downloaded"
            )
        if parts.query or parts.fragment or "?" in url or "#" in url:
            raise WebhookRejected(
                f"PAYPAL-CERT-URL {url!r} has a query or fragment: not downloaded"
            )

    async def _download(self, url: str) -> x509.Certificate:
        self._check_cert_url(url)
        cached = self._downloaded.get(url)
        if cached is not None:
            return cached
        try:
            async with httpx.AsyncClient(timeout=CERT_TIMEOUT_SECONDS, trust_env=False) as web:
                answer = await web.get(url, follow_redirects=False)
        except httpx.HTTPError as exc:
            # PayPal unreachable is not the sender's fault: an exception here answers 5xx,
            # so PayPal delivers again later.
            raise RuntimeError(f"PayPal certificate {url} could not be fetched: {exc}") from exc
        try:
            answer.raise_for_status()
            certificate = _certificate(answer.content)
        except (httpx.HTTPStatusError, ValueError) as exc:
            raise WebhookRejected(f"PAYPAL-CERT-URL {url!r} holds no certificate: {exc}") from exc
        self._downloaded[url] = certificate
        while len(self._downloaded) > CERT_CACHE_SIZE:
            self._downloaded.popitem(last=False)  # the oldest download goes first
        return certificate

    async def _verify_by_api(self, payload: bytes, values: Mapping[str, str]) -> None:
        assert self.api is not None
        try:
            event = json.loads(payload)
        except ValueError as exc:
            raise WebhookMalformed(f"not a PayPal event: {exc}") from exc
        request = {
            "auth_algo": values["auth-algo"],
            "cert_url": values["cert-url"],
            "transmission_id": values["transmission-id"],
            "transmission_sig": values["transmission-sig"],
            "transmission_time": values["transmission-time"],
            "webhook_id": self.webhook_id,
            "webhook_event": event,
        }
        if not await self.api.verify_webhook_signature(request):
            raise WebhookRejected("PayPal says the transmission signature does not verify")


def _certificate(pem: bytes) -> x509.Certificate:
    certificate = x509.load_pem_x509_certificate(pem)
    if not isinstance(certificate.public_key(), rsa.RSAPublicKey):
        raise ValueError("the PayPal certificate does not hold an RSA key")
    return certificate


def _valid_key(certificate: x509.Certificate, which: str) -> rsa.RSAPublicKey:
    """The certificate's RSA key, if the certificate is valid now (else 401)."""
    moment = datetime.now(UTC)
    if moment < certificate.not_valid_before_utc:
        since = certificate.not_valid_before_utc.isoformat()
        raise WebhookRejected(f"the {which} PayPal certificate is not valid before {since}")
    if moment > certificate.not_valid_after_utc:
        until = certificate.not_valid_after_utc.isoformat()
        raise WebhookRejected(f"the {which} PayPal certificate expired at {until}")
    key = certificate.public_key()
    assert isinstance(key, rsa.RSAPublicKey)  # checked on loading
    return key


# --- Reading a verified event ---------------------------------------------------------------


def paypal_event_actions(payload: bytes) -> list[WebhookAction]:
    try:
        event = json.loads(payload)
    except (ValueError, OverflowError) as exc:  # also bytes that are not UTF-8
        raise WebhookMalformed("not a PayPal event: the body is not JSON") from exc
    missing = [
        k for k in ("id", "event_type", "resource") if not isinstance(event, dict) or k not in event
    ]
    if missing:
        raise WebhookMalformed(
            f"not a PayPal event: an object with id, event_type and resource (no {missing[0]})"
        )
    event_id, event_type, resource = event["id"], event["event_type"], event["resource"]
    if not isinstance(resource, dict) or not isinstance(event_id, str):
        raise WebhookMalformed("a PayPal event's id is a string and its resource an object")
    if event_type in REFUND_EVENTS:
        return _refund_update(event_id, str(event_type), resource)
    if event_type == "CUSTOMER.DISPUTE.CREATED":
        transactions = resource.get("disputed_transactions") or []
        ids = tuple(
            str(t["seller_transaction_id"])
            for t in transactions
            if isinstance(t, dict) and isinstance(t.get("seller_transaction_id"), str)
        )
        dispute_id = resource.get("dispute_id")
        if not isinstance(dispute_id, str) or not dispute_id:
            raise WebhookMalformed("the dispute has no dispute_id")
        return [DisputeOpened(event_id, dispute_id, ids, psp=Psp.PAYPAL)]
    return [IgnoredEvent(event_id, str(event_type), "not an event this service acts on")]


def _refund_update(event_id: str, event_type: str, refund: dict[str, Any]) -> list[WebhookAction]:
    request_id = refund.get("custom_id") or refund.get("invoice_id")
    status = REFUND_STATES.get(str(refund.get("status")))
    if not isinstance(request_id, str) or not request_id:
        return [IgnoredEvent(event_id, event_type, "not one of our refunds (no custom_id)")]
    if status is None:
        return [IgnoredEvent(event_id, event_type, f"refund status {refund.get('status')!r}")]
    try:
        amount, currency = minor_units(refund["amount"])
        refund_id = refund["id"]
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise WebhookMalformed(f"the refund's amount or id is not readable: {exc}") from exc
    if not isinstance(refund_id, str) or not refund_id:
        raise WebhookMalformed("the refund's id is not a non-empty string")
    reason = (refund.get("status_details") or {}).get("reason")
    failed = str(refund.get("status")) in ("FAILED", "CANCELLED")
    update = ProviderRefundUpdate(
        event_id=event_id,
        psp_refund_id=refund_id,
        status=status,
        amount=amount,
        currency=currency,
        failure_reason=f"PayPal refund {refund.get('status')}" + (f" ({reason})" if reason else "")
        if failed
        else None,
    )
    return [RefundUpdateAction(request_id, update)]
