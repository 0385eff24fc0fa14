"""A local Adyen Checkout that the real Adyen library talks to (base ``http://127.0.0.1:12113/v72``).

Nothing may reach the network, yet the refund service must be tested through the library it
runs in production; so this speaks Checkout API v72 for payments, refunds, cancels and
captures, with Adyen's answers, errors, idempotency and ``test_`` cards (see ``adyen_state``),
plus injected faults (see ``faults``). Like Adyen it decides a modification later and says so in
a notification: ``settle_after_seconds`` after each request it sends AUTHORISATION (+ CAPTURE),
REFUND, CANCELLATION or CAPTURE items, HMAC-signed, to ``webhook_url`` (see ``adyen_notifier``).
``POST /_sandbox/chargebacks`` ``{"pspReference": ..., "stage": "notification"|"chargeback"}``
sends NOTIFICATION_OF_CHARGEBACK (or CHARGEBACK) for a payment.
Standalone: ``python -m deploy.sandboxes.adyen_sandbox --port 12113 --webhook-url
http://127.0.0.1:8000/webhooks/adyen`` (HMAC key from ADYEN_HMAC_KEY).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from pathlib import Path

from aiohttp import web

from deploy.sandboxes.adyen_api import AdyenApi, authenticate, error_response
from deploy.sandboxes.adyen_notifier import Notifier, notification_item
from deploy.sandboxes.adyen_settlement import due_steps, run_step
from deploy.sandboxes.adyen_state import (
    AdyenApiError,
    Modification,
    SandboxState,
    fault_body,
    new_psp_reference,
)
from deploy.sandboxes.faults import SandboxFaults, add_fault_routes, fault_middleware
from deploy.sandboxes.standalone import serve_until_signalled
from deploy.sandboxes.state_file import StateFile

DEFAULT_PORT = 12113
API_VERSION = "v72"
SANDBOX_MERCHANT_ACCOUNT = "RefundsSandboxECOM"
TICK_SECONDS = 0.05
log = logging.getLogger(__name__)


class AdyenSandbox:
    """The server. ``faults`` can be changed while it runs; ``notifier`` holds the delivery
    log of the current run (its retry settings may be changed by tests)."""

    def __init__(
        self,
        faults: SandboxFaults | None = None,
        state_file: Path | None = None,
        *,
        settle_after_seconds: float = 1.0,
        late_failure_seconds: float = 10.0,
        webhook_url: str | None = None,
        hmac_key: str | None = None,
        webhook_auth: tuple[str, str] | None = None,
        merchant_account: str = SANDBOX_MERCHANT_ACCOUNT,
    ) -> None:
        self.faults = faults if faults is not None else SandboxFaults()
        self.state_file = state_file
        self.settle_after_seconds = settle_after_seconds
        self.late_failure_seconds = late_failure_seconds
        self.merchant_account = merchant_account
        self.notifier = Notifier(webhook_url, hmac_key, webhook_auth)  # checks them early
        self.state = SandboxState()
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._state_file = StateFile(state_file, lambda: self.state.to_json())

    async def start(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> str:
        """Serve on ``host:port`` (0 picks a free port); the Checkout base URL (``.../v72``)."""
        if self._runner is not None:
            raise RuntimeError("the Adyen sandbox is already running")
        if self.state_file is not None and self.state_file.exists():
            self.state = SandboxState.from_json(self.state_file.read_text(encoding="utf-8"))
        api = AdyenApi(
            self.state, self.merchant_account, lambda: self.settle_after_seconds, self._changed
        )
        app = web.Application(middlewares=[fault_middleware(self.faults, fault_body), authenticate])
        add_fault_routes(app, self.faults)
        self.notifier.add_routes(app)
        app.router.add_post("/_sandbox/chargebacks", self._chargeback)
        app.router.add_get("/_sandbox/payments/{psp}", self._show_payment)
        api.add_routes(app)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._ticker = asyncio.get_running_loop().create_task(self._tick())
        bound = runner.addresses[0][1]
        root = f"http://[{host}]:{bound}" if ":" in host else f"http://{host}:{bound}"
        self.base_url = f"{root}/{API_VERSION}"
        log.info("Adyen sandbox listening on %s", self.base_url)
        return self.base_url

    async def stop(self) -> None:
        """Stop serving; deliveries under way get a moment, the rest are dropped (the owed
        notifications stay in the state file and go out after a restart)."""
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        await self.notifier.close()
        await self._state_file.flush()

    def refunds_of(self, psp_reference: str) -> list[Modification]:
        """Every refund the sandbox accepted for the payment, whatever became of it."""
        return self.state.modifications_of(psp_reference, "refund")

    def settle_now(self) -> None:
        """Carry out every owed step at once (tests that do not want to wait)."""
        for step in self.state.scheduled:
            step.due = 0.0

    def _changed(self) -> None:
        self._state_file.changed()

    async def _tick(self) -> None:
        """Settle what is due and send its notifications."""
        while True:
            try:
                for step in due_steps(self.state):
                    self.notifier.send(run_step(self.state, step, self.late_failure_seconds))
                    self._changed()
            except Exception:
                log.exception("Adyen sandbox could not settle")
            await asyncio.sleep(TICK_SECONDS)

    async def _chargeback(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            payment = self.state.payments.get(str(body.get("pspReference")))
        except (ValueError, AttributeError):
            return error_response(AdyenApiError(400, "000", "Unable to parse message"))
        if payment is None:
            return error_response(
                AdyenApiError(422, "167", "Original pspReference required for this operation")
            )
        stage = body.get("stage", "notification")
        if stage not in ("notification", "chargeback"):
            return error_response(AdyenApiError(422, "000", "stage: notification or chargeback"))
        payment.disputed = True
        self._changed()
        item = notification_item(
            "CHARGEBACK" if stage == "chargeback" else "NOTIFICATION_OF_CHARGEBACK",
            new_psp_reference(),
            payment.merchant_account,
            payment.reference,
            payment.value,
            payment.currency,
            True,
            original_reference=payment.psp_reference,
            reason=str(body.get("reason", "Fraudulent transaction")),
        )
        self.notifier.send(item)
        return web.json_response(item)

    async def _show_payment(self, request: web.Request) -> web.Response:
        psp = request.match_info["psp"]
        payment = self.state.payments.get(psp)
        if payment is None:
            return web.json_response({"error": f"no payment {psp}"}, status=404)
        made = [vars(m) for m in self.state.modifications_of(psp)]
        return web.json_response({**vars(payment), "modifications": made})


async def _serve(args: argparse.Namespace, faults: SandboxFaults) -> None:
    sandbox = AdyenSandbox(
        faults,
        args.state_file,
        settle_after_seconds=args.settle_after_seconds,
        late_failure_seconds=args.late_failure_seconds,
        webhook_url=args.webhook_url,
        hmac_key=args.hmac_key,
    )
    await serve_until_signalled(
        sandbox, args.host, args.port, lambda base: [f"Adyen sandbox on {base}"]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--state-file", type=Path, default=None)
    parser.add_argument("--settle-after-seconds", type=float, default=1.0)
    parser.add_argument("--late-failure-seconds", type=float, default=10.0)
    parser.add_argument("--webhook-url", default=None, help="where to POST notifications")
    parser.add_argument(
        "--hmac-key",
        default=(os.environ.get("ADYEN_HMAC_KEY") or "").split(",")[0] or None,
        help="hex HMAC key (default: the first of ADYEN_HMAC_KEY)",
    )
    args = parser.parse_args(argv)
    try:
        faults = SandboxFaults.from_env(os.environ)
        Notifier(args.webhook_url, args.hmac_key)
    except ValueError as problem:
        parser.error(str(problem))
    logging.basicConfig(level=logging.INFO)
    asyncio.run(_serve(args, faults))


if __name__ == "__main__":
    main()
