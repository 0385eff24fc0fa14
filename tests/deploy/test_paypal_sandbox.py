"""The PayPal sandbox over plain HTTP and through paypalrestsdk: what a PayPal client sees."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import paypalrestsdk  # type: ignore[import-untyped]
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from activities.paypal_webhooks import PayPalWebhookVerifier
from activities.webhook_actions import RefundUpdateAction
from deploy.sandboxes.paypal_certs import load_or_make, valid_now
from deploy.sandboxes.paypal_objects import LATE_FAILURE_CARD, PENDING_REFUND_CARD
from deploy.sandboxes.paypal_sandbox import PayPalSandbox
from deploy.sandboxes.paypal_shop import paypal_checkout

WEBHOOK_ID = "WH-SANDBOX-TEST"


@pytest.fixture
async def sandbox() -> AsyncIterator[PayPalSandbox]:
    box = PayPalSandbox(settle_after_seconds=0.3)
    await box.start("127.0.0.1", 0)
    try:
        yield box
    finally:
        await box.stop()


@pytest.fixture
async def raw(sandbox: PayPalSandbox) -> AsyncIterator[httpx.AsyncClient]:
    """Plain HTTP with a token from the sandbox's OAuth endpoint."""
    async with httpx.AsyncClient(base_url=sandbox.base_url, trust_env=False) as client:
        token = await client.post(
            "/v1/oauth2/token", auth=("raw", "secret"), data={"grant_type": "client_credentials"}
        )
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield client


def refund_body(value: str | None = None, currency: str = "EUR") -> dict[str, Any]:
    body: dict[str, Any] = {"custom_id": "req-1", "note_to_payer": "sorry"}
    if value is not None:
        body["amount"] = {"currency_code": currency, "value": value}
    return body


async def test_oauth_refuses_the_wrong_secret(sandbox: PayPalSandbox) -> None:
    async with httpx.AsyncClient(base_url=sandbox.base_url, trust_env=False) as client:
        form = {"grant_type": "client_credentials"}
        for secret in ("bad-secret", "wrong"):
            answer = await client.post("/v1/oauth2/token", auth=("id", secret), data=form)
            assert answer.status_code == 401
            assert answer.json() == {
                "error": "invalid_client",
                "error_description": "Client Authentication failed",
            }
        no_token = await client.get("/v2/payments/captures/X")
        assert no_token.status_code == 401 and no_token.json()["error"] == "invalid_token"


async def test_same_request_id_replays_the_first_answer(
    sandbox: PayPalSandbox, raw: httpx.AsyncClient
) -> None:
    capture = await paypal_checkout(sandbox.base_url, 1000, "EUR")
    url, key = f"/v2/payments/captures/{capture}/refund", {"PayPal-Request-Id": "rq-1"}
    first = await raw.post(url, json=refund_body("4.00"), headers=key)
    again = await raw.post(url, json=refund_body("4.00"), headers=key)
    other_body = await raw.post(url, json=refund_body("6.00"), headers=key)
    assert first.status_code == again.status_code == other_body.status_code == 201
    assert first.json() == again.json() == other_body.json()  # PayPal does not compare bodies
    listing = (await raw.get(f"/_sandbox/captures/{capture}/refunds")).json()
    assert len(listing["refunds"]) == 1
    shown = await raw.get(f"/v2/payments/captures/{capture}")
    assert shown.json()["status"] == "PARTIALLY_REFUNDED"


async def test_a_request_id_still_running_gets_409(
    sandbox: PayPalSandbox, raw: httpx.AsyncClient
) -> None:
    capture = await paypal_checkout(sandbox.base_url, 1000, "EUR")
    sandbox.faults.script("/v2/payments/captures/", "POST", latency="300ms")
    url, key = f"/v2/payments/captures/{capture}/refund", {"PayPal-Request-Id": "slow"}
    first = asyncio.create_task(raw.post(url, json=refund_body(), headers=key))
    await asyncio.sleep(0.1)
    second = await raw.post(url, json=refund_body(), headers=key)
    assert second.status_code == 409
    assert second.json()["details"][0]["issue"] == "PREVIOUS_REQUEST_IN_PROGRESS"
    assert (await first).status_code == 201


async def test_refusals_have_paypal_error_shapes(
    sandbox: PayPalSandbox, raw: httpx.AsyncClient
) -> None:
    capture = await paypal_checkout(sandbox.base_url, 1000, "EUR")
    url = f"/v2/payments/captures/{capture}/refund"
    over = await raw.post(url, json=refund_body("10.01"))
    assert over.status_code == 422
    error = over.json()
    assert error["name"] == "UNPROCESSABLE_ENTITY" and error["debug_id"]
    assert error["details"][0]["issue"] == "REFUND_AMOUNT_EXCEEDED"
    assert error["links"][0]["rel"] == "information_link"
    precision = await raw.post(url, json=refund_body("1.001"))
    assert precision.json()["details"][0]["issue"] == "DECIMAL_PRECISION"
    missing = await raw.get("/v2/payments/refunds/NOSUCHREFUND0001")
    assert missing.status_code == 404
    assert missing.json()["details"][0]["issue"] == "INVALID_RESOURCE_ID"
    malformed = await raw.post(url, content=b"{nope", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["name"] == "INVALID_REQUEST"


async def test_voiding_a_captured_authorization_is_refused(
    sandbox: PayPalSandbox, raw: httpx.AsyncClient
) -> None:
    auth = await paypal_checkout(sandbox.base_url, 500, "USD", capture=False)
    captured = await raw.post(
        f"/v2/payments/authorizations/{auth}/capture",
        json={},
        headers={"Prefer": "return=representation"},
    )
    assert captured.status_code == 201 and captured.json()["status"] == "COMPLETED"
    void = await raw.post(f"/v2/payments/authorizations/{auth}/void")
    assert void.status_code == 422
    assert void.json()["details"][0]["issue"] == "PREVIOUSLY_CAPTURED"


async def test_the_sdk_gets_a_400_back_as_an_error_object(sandbox: PayPalSandbox) -> None:
    api = paypalrestsdk.Api(
        {"mode": "sandbox", "client_id": "a", "client_secret": "b", "endpoint": sandbox.base_url}
    )
    answer = await asyncio.to_thread(api.post, "v2/checkout/orders", {"intent": "SELL"})
    assert answer["error"]["name"] == "INVALID_REQUEST"
    assert answer["error"]["details"][0]["field"] == "/intent"


async def test_pending_and_late_failing_refunds_change_later(
    sandbox: PayPalSandbox, raw: httpx.AsyncClient
) -> None:
    statuses = []
    for card in (PENDING_REFUND_CARD, LATE_FAILURE_CARD):
        capture = await paypal_checkout(sandbox.base_url, 800, "GBP", card=card)
        made = await raw.post(f"/v2/payments/captures/{capture}/refund", json={})
        statuses.append(made.json()["status"])
        await asyncio.sleep(0.6)
        refund = (await raw.get(f"/v2/payments/refunds/{made.json()['id']}")).json()
        statuses.append(refund["status"])
    assert statuses == ["PENDING", "COMPLETED", "COMPLETED", "FAILED"]


async def test_injected_faults_fail_before_or_drop_after_the_change(
    sandbox: PayPalSandbox, raw: httpx.AsyncClient
) -> None:
    capture = await paypal_checkout(sandbox.base_url, 1000, "EUR")
    url = f"/v2/payments/captures/{capture}/refund"
    sandbox.faults.script("/v2/payments/captures/", "POST", fail_times=1, status=500)
    failed = await raw.post(url, json=refund_body("1.00"), headers={"PayPal-Request-Id": "f1"})
    assert failed.status_code == 500 and failed.json()["name"] == "INTERNAL_SERVER_ERROR"
    sandbox.faults.script("/v2/payments/captures/", "POST", drop_times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        await raw.post(url, json=refund_body("1.00"), headers={"PayPal-Request-Id": "f1"})
    replayed = await raw.post(url, json=refund_body("1.00"), headers={"PayPal-Request-Id": "f1"})
    assert replayed.status_code == 201
    listing = (await raw.get(f"/_sandbox/captures/{capture}/refunds")).json()
    assert len(listing["refunds"]) == 1  # the fault made none, the drop one, the replay none


async def test_state_and_certificate_survive_a_restart(tmp_path: Path) -> None:
    box = PayPalSandbox(state_file=tmp_path / "state.json", cert_dir=tmp_path / "cert")
    base = await box.start("127.0.0.1", 0)
    try:
        capture = await paypal_checkout(base, 1000, "EUR")
        pem = box.certificate_pem
    finally:
        await box.stop()
    again = PayPalSandbox(state_file=tmp_path / "state.json", cert_dir=tmp_path / "cert")
    await again.start("127.0.0.1", 0)
    try:
        assert again.certificate_pem == pem and again.certificate_file.read_bytes() == pem
        assert capture in again.state.captures
    finally:
        await again.stop()


async def test_webhooks_arrive_signed_and_verify(tmp_path: Path) -> None:
    received: asyncio.Queue[tuple[bytes, dict[str, str]]] = asyncio.Queue()
    refused_once: list[bool] = []

    async def receive(request: web.Request) -> web.Response:
        if not refused_once:  # the first delivery fails: the sandbox must retry it
            refused_once.append(True)
            return web.Response(status=503)
        await received.put((await request.read(), dict(request.headers)))
        return web.json_response({"received": True})

    app = web.Application()
    app.router.add_post("/webhooks/paypal", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    box = PayPalSandbox(
        webhook_url=f"http://127.0.0.1:{port}/webhooks/paypal", webhook_id=WEBHOOK_ID
    )
    try:
        base = await box.start("127.0.0.1", 0)
        box.webhooks.first_backoff = 0.05
        capture = await paypal_checkout(base, 1000, "EUR", custom_id=str(uuid.uuid4()))
        verifier = PayPalWebhookVerifier(
            WEBHOOK_ID, allowed_cert_hosts=("127.0.0.1",), https_only=False
        )
        async with httpx.AsyncClient(base_url=base, trust_env=False) as raw:
            token = await raw.post(
                "/v1/oauth2/token", auth=("a", "b"), data={"grant_type": "client_credentials"}
            )
            raw.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
            await raw.post(f"/v2/payments/captures/{capture}/refund", json={"custom_id": "req-7"})
            dispute = await raw.post("/_sandbox/disputes", json={"capture_id": capture})
            assert dispute.status_code == 200
        kinds = []
        for _ in range(3):
            body, headers = await asyncio.wait_for(received.get(), 5)
            assert headers["PAYPAL-AUTH-ALGO"] == "SHA256withRSA"
            actions = await verifier.actions(body, headers)  # downloads the cert, verifies
            kinds.append(type(actions[0]).__name__)
            if isinstance(actions[0], RefundUpdateAction):
                assert actions[0].request_id == "req-7"
        assert sorted(kinds) == ["DisputeOpened", "IgnoredEvent", "RefundUpdateAction"]
    finally:
        await box.stop()
        await runner.cleanup()


async def test_request_ids_longer_than_paypal_takes_are_refused(
    sandbox: PayPalSandbox, raw: httpx.AsyncClient
) -> None:
    capture = await paypal_checkout(sandbox.base_url, 1000, "EUR")
    url = f"/v2/payments/captures/{capture}/refund"
    too_long = await raw.post(
        url, json=refund_body("1.00"), headers={"PayPal-Request-Id": "x" * 109}
    )
    assert too_long.status_code == 400
    assert too_long.json()["details"][0]["field"] == "PayPal-Request-Id"
    fits = await raw.post(url, json=refund_body("1.00"), headers={"PayPal-Request-Id": "x" * 108})
    assert fits.status_code == 201


async def test_scripted_answers_over_http(sandbox: PayPalSandbox, raw: httpx.AsyncClient) -> None:
    capture = await paypal_checkout(sandbox.base_url, 1000, "EUR")
    rules = [
        {"path_prefix": "/v2/payments/captures/", "method": "GET", "status": 400, "body": "<p>"},
        {"path_prefix": "/v2/payments/captures/", "method": "POST", "minimal": True},
        {"path_prefix": "/v2/payments/refunds/", "status": 302, "location": "https://x.test/"},
    ]
    assert (await raw.post("/_sandbox/answers", json=rules)).status_code == 200
    html = await raw.get(f"/v2/payments/captures/{capture}")
    assert (html.status_code, html.text) == (400, "<p>")
    refund = await raw.post(
        f"/v2/payments/captures/{capture}/refund",
        json=refund_body("2.00"),
        headers={"Prefer": "return=representation"},
    )
    assert refund.status_code == 201 and set(refund.json()) == {"id", "status", "links"}
    moved = await raw.get(f"/v2/payments/refunds/{refund.json()['id']}", follow_redirects=False)
    assert (moved.status_code, moved.headers["Location"]) == (302, "https://x.test/")
    assert (await raw.get("/_sandbox/answers")).json() == []  # each rule was used up
    shown = await raw.get(f"/v2/payments/captures/{capture}")
    assert shown.json()["status"] == "PARTIALLY_REFUNDED"
    refused = await raw.post("/_sandbox/answers", json={"path_prefix": "/", "times": 0})
    assert refused.status_code == 400


def test_a_kept_certificate_that_is_no_longer_valid_is_replaced(tmp_path: Path) -> None:
    first = load_or_make(tmp_path)
    assert valid_now(first.pem)
    old = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=400)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expired")])
    expired = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(first.key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(old)
        .not_valid_after(old + datetime.timedelta(days=30))
        .sign(first.key, hashes.SHA256())
    )
    first.file.write_bytes(expired.public_bytes(serialization.Encoding.PEM))
    again = load_or_make(tmp_path)
    assert valid_now(again.pem) and again.pem == again.file.read_bytes()
    certificate = x509.load_pem_x509_certificate(again.pem)
    now = datetime.datetime.now(datetime.UTC)
    assert certificate.not_valid_before_utc < now - datetime.timedelta(hours=1)
    assert certificate.not_valid_after_utc > now + datetime.timedelta(days=365)
