"""A local PayPal that paypalrestsdk talks to (API base `http://127.0.0.1:12112`).

Nothing may reach the network, yet the refund service must be tested through the SDK it runs
in production; so this speaks PayPal's REST API as paypalrestsdk uses it: OAuth
(`/v1/oauth2/token`), Orders v2 (card `payment_source`, so no buyer approval), Payments v2
(authorizations, captures, refunds) with PayPal's fields, refusals, `PayPal-Request-Id`
idempotency and `Prefer`, plus injected faults (see `faults`). Given a `webhook_url` and a
`webhook_id` it sends PayPal-signed webhooks (see `paypal_webhooks`), signed with a
certificate it makes at start (or keeps in `cert_dir`) and serves at
`/v1/notifications/certs/{name}`; `/v1/notifications/verify-webhook-signature` checks them.

Credentials: any client id and secret are accepted, except a secret `bad-secret` or `wrong`
(401 invalid_client), so a test can show what bad credentials do.

Test cards (`payment_source.card.number`):
    4111111111111111  Visa: refunds COMPLETED at once (so does any other card number)
    4000000000000093  refunds PENDING, COMPLETED `settle_after_seconds` later
    4000000000000101  refunds COMPLETED, then FAILED `settle_after_seconds` later (late failure,
                      `PAYMENT.REFUND.FAILED`; see `paypal_refunds` for why not REVERSED)
    4000000000001810  captured 181 days ago: refunds refused REFUND_TIME_LIMIT_EXCEEDED

Controls (never faulted): `GET /_sandbox/captures/{id}/refunds`, `POST
/_sandbox/refunds/{id}/settle` `{"status": "COMPLETED"|"FAILED"|"CANCELLED"}`, `POST
/_sandbox/disputes` `{"capture_id", "reason"}` (CUSTOMER.DISPUTE.CREATED), `/_sandbox/faults`,
`/_sandbox/answers` (non-JSON errors, redirects, minimal answers: see `paypal_answers`),
`GET /_sandbox/webhooks`, `GET /_sandbox/health`.

Standalone: `python -m deploy.sandboxes.paypal_sandbox --port 12112 --webhook-url
http://127.0.0.1:8000/webhooks/paypal` (webhook id from PAYPAL_WEBHOOK_ID).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import tempfile
from pathlib import Path

from aiohttp import web

from deploy.sandboxes.faults import SandboxFaults, add_fault_routes, fault_middleware
from deploy.sandboxes.paypal_answers import Answers
from deploy.sandboxes.paypal_certs import CERT_NAME, SigningCertificate, load_or_make
from deploy.sandboxes.paypal_errors import fault_body
from deploy.sandboxes.paypal_objects import SandboxState
from deploy.sandboxes.paypal_payments import Payments
from deploy.sandboxes.paypal_refunds import Refunds
from deploy.sandboxes.paypal_routes import PayPalApi
from deploy.sandboxes.paypal_webhooks import Webhooks
from deploy.sandboxes.standalone import serve_until_signalled
from deploy.sandboxes.state_file import StateFile
from deploy.sandboxes.stripe_sandbox import settle_after_from_env

DEFAULT_PORT = 12112
SETTLE_EVERY_SECONDS = 0.2  # how often due refunds settle when nobody asks
log = logging.getLogger(__name__)


class PayPalSandbox:
    """The server. `faults` and `answers` can be changed while it runs
    (`sandbox.faults.script(...)`, `sandbox.answers.script(...)`).

    `settle_after_seconds` is how long a pending refund stays PENDING and a late-failure one
    stays COMPLETED. Without `webhook_url` and `webhook_id` no webhook is sent.
    """

    def __init__(
        self,
        faults: SandboxFaults | None = None,
        state_file: Path | None = None,
        *,
        settle_after_seconds: float = 10.0,
        webhook_url: str | None = None,
        webhook_id: str | None = None,
        cert_dir: Path | None = None,
    ) -> None:
        self.faults = faults if faults is not None else SandboxFaults()
        self.answers = Answers()
        self.state_file, self.cert_dir = state_file, cert_dir
        self.settle_after_seconds = settle_after_seconds
        self.webhook_url, self.webhook_id = webhook_url, webhook_id
        self.webhooks = Webhooks(webhook_url, webhook_id, None)  # checks the URL early
        self.state = SandboxState()
        self.base_url = ""
        self._certificate: SigningCertificate | None = None
        self._own_cert_dir: Path | None = None
        self._runner: web.AppRunner | None = None
        self._state_file = StateFile(state_file, lambda: self.state.to_json())
        self._settler: asyncio.Task[None] | None = None

    @property
    def certificate_pem(self) -> bytes:
        """The PEM certificate webhooks are signed with (known once started)."""
        if self._certificate is None:
            raise RuntimeError("the PayPal sandbox has not started")
        return self._certificate.pem

    @property
    def certificate_file(self) -> Path:
        """Where that PEM is, for a receiver's PAYPAL_WEBHOOK_CERT_FILE."""
        if self._certificate is None:
            raise RuntimeError("the PayPal sandbox has not started")
        return self._certificate.file

    async def start(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> str:
        """Serve on `host:port` (0 picks a free port) and return the API base URL."""
        if self._runner is not None:
            raise RuntimeError("the PayPal sandbox is already running")
        if self.state_file is not None and self.state_file.exists():
            self.state = SandboxState.from_json(self.state_file.read_text(encoding="utf-8"))
        cert_dir = self.cert_dir
        if cert_dir is None:
            cert_dir = self._own_cert_dir = Path(tempfile.mkdtemp(prefix="paypal-sandbox-"))
        self._certificate = await asyncio.to_thread(load_or_make, cert_dir)
        webhooks = self.webhooks = Webhooks(self.webhook_url, self.webhook_id, self._certificate)
        if self.webhook_url and not self.webhook_id:
            log.warning("PayPal sandbox: a webhook_url without a webhook_id; no webhook is sent")
        payments = Payments(self.state, webhooks.emit if webhooks.enabled else None)
        refunds = Refunds(payments, self.settle_after_seconds)
        api = PayPalApi(self.state, payments, refunds, webhooks, self._save)
        # Request ids outermost (a dropped answer is kept), then scripted answers and faults
        # around the endpoints.
        app = web.Application(
            middlewares=[
                api.idempotency(),
                self.answers.middleware(),
                fault_middleware(self.faults, fault_body),
            ]
        )
        add_fault_routes(app, self.faults)
        self.answers.add_routes(app)
        webhooks.add_routes(app)
        api.add_routes(app)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound = runner.addresses[0][1]
        self.base_url = f"http://[{host}]:{bound}" if ":" in host else f"http://{host}:{bound}"
        payments.base = self.base_url
        webhooks.cert_url = f"{self.base_url}/v1/notifications/certs/{CERT_NAME}"
        self._settler = asyncio.get_running_loop().create_task(self._settle_due(refunds))
        log.info("PayPal sandbox listening on %s", self.base_url)
        return self.base_url

    async def stop(self) -> None:
        """Stop serving; deliveries under way get a moment to finish, the rest are dropped."""
        settler, self._settler = self._settler, None
        if settler is not None:
            settler.cancel()
            await asyncio.gather(settler, return_exceptions=True)
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        await self.webhooks.close()
        await self._state_file.flush()
        if self._own_cert_dir is not None:
            shutil.rmtree(self._own_cert_dir, ignore_errors=True)
            self._own_cert_dir = None

    async def _settle_due(self, refunds: Refunds) -> None:
        """Settle due refunds on a timer, as PayPal does whether or not anyone polls."""
        while True:
            await asyncio.sleep(SETTLE_EVERY_SECONDS)
            try:
                if refunds.settle_due():
                    self._save()
            except Exception:
                log.exception("PayPal sandbox could not settle refunds")

    def _save(self) -> None:
        self._state_file.changed()


async def _serve(args: argparse.Namespace, faults: SandboxFaults) -> None:
    sandbox = PayPalSandbox(
        faults,
        args.state_file,
        settle_after_seconds=args.settle_after,
        webhook_url=args.webhook_url,
        webhook_id=args.webhook_id,
        cert_dir=args.cert_dir,
    )
    await serve_until_signalled(
        sandbox,
        args.host,
        args.port,
        lambda base: [
            f"PayPal sandbox on {base}",
            f"webhook signing certificate: {sandbox.certificate_file}",
        ],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--state-file", type=Path, default=None)
    parser.add_argument("--cert-dir", type=Path, default=None, help="keep the signing cert here")
    parser.add_argument("--webhook-url", default=None, help="where to POST signed events")
    parser.add_argument(
        "--webhook-id",
        default=os.environ.get("PAYPAL_WEBHOOK_ID"),
        help="the webhook id signatures name (default: PAYPAL_WEBHOOK_ID)",
    )
    args = parser.parse_args(argv)
    try:
        faults = SandboxFaults.from_env(os.environ)
        args.settle_after = settle_after_from_env(os.environ)
        Webhooks(args.webhook_url, args.webhook_id, None)
    except ValueError as problem:
        parser.error(str(problem))
    logging.basicConfig(level=logging.INFO)
    asyncio.run(_serve(args, faults))


if __name__ == "__main__":
    main()
