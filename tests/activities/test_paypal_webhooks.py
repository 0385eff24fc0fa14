"""PayPal webhook verification and reading: what a forged, stale or odd delivery gets."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from activities.paypal_webhooks import PayPalWebhookVerifier
from activities.webhook_actions import (
    DisputeOpened,
    IgnoredEvent,
    RefundUpdateAction,
    WebhookMalformed,
    WebhookRejected,
)
from deploy.sandboxes.paypal_certs import SigningCertificate
from deploy.sandboxes.paypal_sandbox import PayPalSandbox
from deploy.sandboxes.paypal_webhooks import Webhooks, event_bytes
from tests.support.paypal_harness import CLIENT_ID, CLIENT_SECRET
from workflows.models import PspRefundStatus

WEBHOOK_ID = "WH-TEST-1234"


@pytest.fixture
async def sandbox() -> AsyncIterator[PayPalSandbox]:
    box = PayPalSandbox()
    await box.start("127.0.0.1", 0)
    try:
        yield box
    finally:
        await box.stop()


def signer(sandbox: PayPalSandbox, webhook_id: str = WEBHOOK_ID) -> Webhooks:
    """The sandbox's own signing, for deliveries made up by a test."""
    webhooks = Webhooks(None, webhook_id, sandbox.webhooks.certificate)
    webhooks.cert_url = sandbox.webhooks.cert_url
    return webhooks


def refund_event(status: str = "COMPLETED", custom_id: str | None = "req-42") -> bytes:
    refund = {
        "id": "1JU08902781691411",
        "amount": {"currency_code": "USD", "value": "10.99"},
        "status": status,
        "links": [],
    }
    if custom_id:
        refund["custom_id"] = custom_id
    kind = {"COMPLETED": "PAYMENT.CAPTURE.REFUNDED", "FAILED": "PAYMENT.REFUND.FAILED"}
    event = {
        "id": "WH-7Y7254563A4550640-11V2185806837105M",
        "event_type": kind.get(status, "PAYMENT.REFUND.PENDING"),
        "resource_type": "refund",
        "resource": refund,
    }
    return event_bytes(event)


def verifier(sandbox: PayPalSandbox, **options: object) -> PayPalWebhookVerifier:
    return PayPalWebhookVerifier(WEBHOOK_ID, certificate_pem=sandbox.certificate_pem, **options)  # type: ignore[arg-type]


async def test_a_signed_refund_event_tells_the_refund(sandbox: PayPalSandbox) -> None:
    body = refund_event()
    actions = await verifier(sandbox).actions(body, signer(sandbox).signed_headers(body))
    assert len(actions) == 1 and isinstance(actions[0], RefundUpdateAction)
    update = actions[0].update
    assert actions[0].request_id == "req-42"
    assert (update.status, update.amount, update.currency) == (
        PspRefundStatus.SUCCEEDED,
        1099,
        "USD",
    )
    assert update.event_id == "WH-7Y7254563A4550640-11V2185806837105M"


async def test_a_failed_refund_carries_its_reason(sandbox: PayPalSandbox) -> None:
    body = refund_event("FAILED")
    (action,) = await verifier(sandbox).actions(body, signer(sandbox).signed_headers(body))
    assert isinstance(action, RefundUpdateAction)
    assert action.update.status is PspRefundStatus.FAILED and action.update.failure_reason


async def test_others_refunds_and_other_events_are_ignored(sandbox: PayPalSandbox) -> None:
    sign = signer(sandbox).signed_headers
    body = refund_event(custom_id=None)
    (ignored,) = await verifier(sandbox).actions(body, sign(body))
    assert isinstance(ignored, IgnoredEvent)
    other = event_bytes({"id": "WH-1", "event_type": "CHECKOUT.ORDER.APPROVED", "resource": {}})
    (ignored,) = await verifier(sandbox).actions(other, sign(other))
    assert isinstance(ignored, IgnoredEvent) and ignored.event_type == "CHECKOUT.ORDER.APPROVED"


async def test_a_dispute_names_the_disputed_capture(sandbox: PayPalSandbox) -> None:
    dispute = {
        "dispute_id": "PP-D-27803",
        "disputed_transactions": [{"seller_transaction_id": "3BC38643YC807283D"}],
        "status": "OPEN",
    }
    body = event_bytes(
        {"id": "WH-D1", "event_type": "CUSTOMER.DISPUTE.CREATED", "resource": dispute}
    )
    (action,) = await verifier(sandbox).actions(body, signer(sandbox).signed_headers(body))
    assert isinstance(action, DisputeOpened)
    assert (action.dispute_id, action.payment_ids, action.psp.value) == (
        "PP-D-27803",
        ("3BC38643YC807283D",),
        "paypal",
    )


async def test_forged_deliveries_are_rejected(sandbox: PayPalSandbox) -> None:
    body = refund_event()
    headers = signer(sandbox).signed_headers(body)
    check = verifier(sandbox)
    with pytest.raises(WebhookRejected, match="does not verify"):
        await check.actions(body.replace(b"10.99", b"99.99"), headers)
    other_id = signer(sandbox, "WH-SOMEONE-ELSE").signed_headers(body)
    with pytest.raises(WebhookRejected, match="does not verify"):
        await check.actions(body, other_id)
    for name in ("PAYPAL-TRANSMISSION-SIG", "PAYPAL-CERT-URL", "PAYPAL-TRANSMISSION-ID"):
        with pytest.raises(WebhookRejected, match=name):
            await check.actions(body, {k: v for k, v in headers.items() if k != name})
    with pytest.raises(WebhookRejected, match="no PAYPAL_WEBHOOK_ID"):
        await PayPalWebhookVerifier(None, certificate_pem=sandbox.certificate_pem).actions(
            body, headers
        )


async def test_stale_and_future_transmissions_are_rejected(sandbox: PayPalSandbox) -> None:
    body = refund_event()
    for moment, why in ((time.time() - 600, "old"), (time.time() + 600, "future")):
        headers = signer(sandbox).signed_headers(body, at=moment)
        with pytest.raises(WebhookRejected, match=why):
            await verifier(sandbox).actions(body, headers)


async def test_certificates_come_only_from_paypal_over_https(sandbox: PayPalSandbox) -> None:
    body = refund_event()
    headers = signer(sandbox).signed_headers(body)
    downloads = PayPalWebhookVerifier(WEBHOOK_ID)  # no configured PEM: it would download
    for url in (
        "http://api.paypal.com/v1/notifications/certs/CERT-1",
        "https://evil.com/v1/notifications/certs/CERT-1",
        "https://api.paypal.com.evil.com/certs/CERT-1",
        sandbox.webhooks.cert_url,  # http on 127.0.0.1: not PayPal's
    ):
        with pytest.raises(WebhookRejected, match="not downloaded"):
            await downloads.actions(body, {**headers, "PAYPAL-CERT-URL": url})
    # Allowed (here: the local sandbox), the certificate is downloaded and then verifies.
    local = PayPalWebhookVerifier(WEBHOOK_ID, allowed_cert_hosts=("127.0.0.1",), https_only=False)
    (action,) = await local.actions(body, headers)
    assert isinstance(action, RefundUpdateAction)


async def test_signed_but_malformed_bodies_are_400(sandbox: PayPalSandbox) -> None:
    for body in (b"{not json", json.dumps({"id": "WH-1"}).encode(), b"[]"):
        with pytest.raises(WebhookMalformed):
            await verifier(sandbox).actions(body, signer(sandbox).signed_headers(body))


async def test_api_mode_asks_paypal(sandbox: PayPalSandbox) -> None:
    from activities.paypal_provider import PayPalProvider

    provider = PayPalProvider(CLIENT_ID, CLIENT_SECRET, sandbox.base_url)
    check = PayPalWebhookVerifier(WEBHOOK_ID, mode="api", api=provider)
    body = refund_event()
    headers = signer(sandbox).signed_headers(body)
    (action,) = await check.actions(body, headers)
    assert isinstance(action, RefundUpdateAction)
    with pytest.raises(WebhookRejected):
        await check.actions(body.replace(b"10.99", b"11.99"), headers)


async def test_cert_urls_outside_paypals_cert_path_are_never_downloaded(
    sandbox: PayPalSandbox,
) -> None:
    body = refund_event()
    headers = signer(sandbox).signed_headers(body)
    live = PayPalWebhookVerifier(WEBHOOK_ID, paypal_mode="live")
    for url in (
        "https://api.paypal.com/v1/oauth2/token",  # PayPal's host, not a certificate
        "https://api-m.paypal.com/v1/notifications/certs/",
        "https://api.paypal.com/v1/notifications/certs/CERT-1?next=https://evil.com",
        "https://api.paypal.com/v1/notifications/certs/CERT-1?",
        "https://api.paypal.com/v1/notifications/certs/CERT-1#x",
        "https://api.paypal.com/v1/notifications/certs/../../oauth2/token",
        "https://api.paypal.com/v1/notifications/certs/%2e%2e/x",
        "https://api.paypal.com:8443/v1/notifications/certs/CERT-1",
        "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-1",  # not live's host
    ):
        with pytest.raises(WebhookRejected, match="not downloaded"):
            await live.actions(body, {**headers, "PAYPAL-CERT-URL": url})
    sandboxed = PayPalWebhookVerifier(WEBHOOK_ID, paypal_mode="sandbox")
    with pytest.raises(WebhookRejected, match=r"host 'api-m\.paypal\.com' is not PayPal's"):
        url = "https://api-m.paypal.com/v1/notifications/certs/CERT-1"
        await sandboxed.actions(body, {**headers, "PAYPAL-CERT-URL": url})
    assert sandboxed.allowed_cert_hosts == ("api.sandbox.paypal.com", "api-m.sandbox.paypal.com")
    with pytest.raises(ValueError, match="live or sandbox"):
        PayPalWebhookVerifier(WEBHOOK_ID, paypal_mode="production")


async def test_the_certificate_cache_keeps_the_latest_16(sandbox: PayPalSandbox) -> None:
    """A PayPal-like host serving a certificate under any name: every new name is a download,
    and only the 16 latest stay cached."""
    served = web.Application()

    async def certificate(_: web.Request) -> web.Response:
        return web.Response(body=sandbox.certificate_pem)

    served.router.add_get("/v1/notifications/certs/{name}", certificate)
    runner = web.AppRunner(served)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        check = PayPalWebhookVerifier(
            WEBHOOK_ID, allowed_cert_hosts=("127.0.0.1",), https_only=False
        )
        body = refund_event()
        urls = [f"http://127.0.0.1:{port}/v1/notifications/certs/CERT-{n}" for n in range(20)]
        for url in urls:
            headers = {**signer(sandbox).signed_headers(body), "PAYPAL-CERT-URL": url}
            (action,) = await check.actions(body, headers)
            assert isinstance(action, RefundUpdateAction)
        assert list(check._downloaded) == urls[-16:]
    finally:
        await runner.cleanup()


def certificate_valid(start: datetime, end: datetime) -> SigningCertificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "messageverificationcerts")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    return SigningCertificate(key, pem, Path("unused.pem"))


async def test_expired_or_not_yet_valid_certificates_are_refused(
    sandbox: PayPalSandbox,
) -> None:
    now = datetime.now(UTC)
    body = refund_event()
    for start, end, why in (
        (now - timedelta(days=30), now - timedelta(days=1), "expired"),
        (now + timedelta(days=1), now + timedelta(days=30), "not valid before"),
    ):
        cert = certificate_valid(start, end)
        webhooks = Webhooks(None, WEBHOOK_ID, cert)
        webhooks.cert_url = sandbox.webhooks.cert_url
        check = PayPalWebhookVerifier(WEBHOOK_ID, certificate_pem=cert.pem)
        with pytest.raises(WebhookRejected, match=f"configured PayPal certificate .*{why}"):
            await check.actions(body, webhooks.signed_headers(body))
    # The sandbox's own certificate is valid now: deliveries signed with it verify.
    (action,) = await verifier(sandbox).actions(body, signer(sandbox).signed_headers(body))
    assert isinstance(action, RefundUpdateAction)
