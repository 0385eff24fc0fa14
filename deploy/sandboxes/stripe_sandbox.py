"""A local Stripe that the real `stripe` SDK talks to (API base `http://127.0.0.1:12111`).

Nothing may reach the network, yet the refund service must be tested through the SDK it runs
in production; so this speaks Stripe's API v1 for PaymentIntents, Charges and Refunds (and
their balance transactions, converted to the account's settlement currency), with
Stripe's fields, refusals, idempotency and test cards, plus injected faults (see `faults`).
Given a `webhook_url` and `webhook_secret` it also sends Stripe-signed webhook events for its
refunds, disputes and early fraud warnings (see `stripe_webhooks`).
Tests start it in-process on port 0; `refunds dev` runs it on 12111 with a state file so
payments survive restarts. Standalone: `python -m deploy.sandboxes.stripe_sandbox --port 12111
--webhook-url http://127.0.0.1:8000/webhooks/stripe` (secret from STRIPE_WEBHOOK_SECRET).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from aiohttp import web

from deploy.sandboxes.faults import (
    SandboxFaults,
    add_fault_routes,
    fault_middleware,
    parse_duration,
)
from deploy.sandboxes.standalone import serve_until_signalled
from deploy.sandboxes.state_file import StateFile
from deploy.sandboxes.stripe_balance import add_rate_routes
from deploy.sandboxes.stripe_errors import StripeApiError, fault_body, invalid
from deploy.sandboxes.stripe_objects import CURRENCIES, SandboxState
from deploy.sandboxes.stripe_payments import Payments
from deploy.sandboxes.stripe_refunds import Refunds
from deploy.sandboxes.stripe_routes import StripeApi
from deploy.sandboxes.stripe_webhooks import FRAUD_TYPES, Webhooks, early_fraud_warning

DEFAULT_PORT = 12111
SETTLE_EVERY_SECONDS = 0.5  # how often due pending refunds settle when nobody asks
SETTLE_AFTER_ENV_VAR = "REFUNDS_SANDBOX_SETTLE_AFTER"
DEFAULT_SETTLE_AFTER_SECONDS = 10.0
log = logging.getLogger(__name__)


def settle_after_from_env(environ: Mapping[str, str]) -> float:
    """Seconds from `REFUNDS_SANDBOX_SETTLE_AFTER` (`10s`, `2m`, `300ms`; default 10s): how
    long a `pm_card_pendingRefund` refund stays pending and a `pm_card_refundLateFail` one
    stays succeeded before it fails."""
    text = environ.get(SETTLE_AFTER_ENV_VAR, "").strip()
    if not text:
        return DEFAULT_SETTLE_AFTER_SECONDS
    try:
        return parse_duration(text)
    except ValueError as problem:
        raise ValueError(f"{SETTLE_AFTER_ENV_VAR}: {problem}") from None


class StripeSandbox:
    """The server. `faults` can be changed while it runs (`sandbox.faults.script(...)`).

    With both `webhook_url` and `webhook_secret`, events go to that URL (faults never apply
    to them); `webhooks` holds the delivery log of the current run. `pending_refund_seconds`
    is how long a `pm_card_pendingRefund` refund stays pending, `late_failure_seconds` how long
    a `pm_card_refundLateFail` refund stays succeeded before it fails. Charges and refunds in
    another currency than `settlement_currency` are converted (see `stripe_balance`).
    """

    def __init__(
        self,
        faults: SandboxFaults | None = None,
        state_file: Path | None = None,
        *,
        pending_refund_seconds: float = 10.0,
        late_failure_seconds: float = 10.0,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        settlement_currency: str = "usd",
    ) -> None:
        self.faults = faults if faults is not None else SandboxFaults()
        self.state_file = state_file
        self.pending_refund_seconds = pending_refund_seconds
        self.late_failure_seconds = late_failure_seconds
        self.webhook_url, self._webhook_secret = webhook_url, webhook_secret
        self.webhooks = Webhooks(webhook_url, webhook_secret)  # checks the pair early
        self.state = SandboxState()
        self.settlement_currency = settlement_currency.lower()
        if self.settlement_currency not in CURRENCIES:
            raise ValueError(f"settlement currency {settlement_currency!r} is not one Stripe takes")
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self._state_file = StateFile(state_file, lambda: self.state.to_json())
        self._settler: asyncio.Task[None] | None = None

    async def start(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> str:
        """Serve on `host:port` (0 picks a free port) and return the API base URL."""
        if self._runner is not None:
            raise RuntimeError("the Stripe sandbox is already running")
        if self.state_file is not None and self.state_file.exists():
            self.state = SandboxState.from_json(self.state_file.read_text(encoding="utf-8"))
        self.state.settlement_currency = self.settlement_currency
        webhooks = self.webhooks = Webhooks(self.webhook_url, self._webhook_secret)
        emit = webhooks.emit if webhooks.enabled else None
        payments = Payments(self.state, emit)
        refunds = Refunds(
            self.state,
            payments,
            self.pending_refund_seconds,
            emit,
            late_failure_seconds=self.late_failure_seconds,
        )
        # Faults outermost: a faulted answer made no change, a dropped one did (and tells).
        middlewares = [fault_middleware(self.faults, fault_body), webhooks.middleware()]
        app = web.Application(middlewares=middlewares)
        add_fault_routes(app, self.faults)
        webhooks.add_routes(app)
        app.router.add_post("/_sandbox/early_fraud_warnings", self._warn(payments))
        add_rate_routes(app, self.state, self._save)
        StripeApi(self.state, payments, refunds, self._save).add_routes(app)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            await webhooks.close(0)
            raise
        self._runner = runner
        self._settler = asyncio.get_running_loop().create_task(self._settle_pending(refunds))
        bound = runner.addresses[0][1]
        self.base_url = f"http://[{host}]:{bound}" if ":" in host else f"http://{host}:{bound}"
        log.info("Stripe sandbox listening on %s", self.base_url)
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

    def _warn(self, payments: Payments) -> Callable[[web.Request], Awaitable[web.Response]]:
        """`POST /_sandbox/early_fraud_warnings` `{"charge": "ch_...", "fraud_type": "misc"}`:
        the card issuer reports fraud (`radar.early_fraud_warning.created`); answers the
        warning."""

        async def warn(request: web.Request) -> web.Response:
            try:
                body = await request.json()
                if not isinstance(body, dict) or not isinstance(body.get("charge"), str):
                    raise invalid("expected a JSON object with a charge id", "charge")
                fraud_type = body.get("fraud_type", "misc")
                if fraud_type not in FRAUD_TYPES:
                    raise invalid(f"fraud_type must be one of {', '.join(FRAUD_TYPES)}")
                warning = early_fraud_warning(payments.charge(body["charge"]), fraud_type)
            except ValueError:
                return web.json_response(invalid("expected a JSON object").body(), status=400)
            except StripeApiError as error:
                return web.json_response(error.body(), status=error.status)
            self.webhooks.emit("radar.early_fraud_warning.created", warning)
            return web.json_response(warning)

        return warn

    async def _settle_pending(self, refunds: Refunds) -> None:
        """Settle due pending refunds on a timer, as Stripe does whether or not anyone polls
        (requests settle them too, so a retrieve never shows an overdue refund pending)."""
        while True:
            await asyncio.sleep(SETTLE_EVERY_SECONDS)
            try:
                if refunds.settle_due():
                    self._save()
            except Exception:
                log.exception("Stripe sandbox could not settle pending refunds")

    def _save(self) -> None:
        self._state_file.changed()


async def _serve(args: argparse.Namespace, faults: SandboxFaults) -> None:
    sandbox = StripeSandbox(
        faults,
        args.state_file,
        pending_refund_seconds=args.pending_refund_seconds,
        late_failure_seconds=args.late_failure_seconds,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        settlement_currency=args.settlement_currency,
    )
    await serve_until_signalled(
        sandbox, args.host, args.port, lambda base: [f"Stripe sandbox on {base}"]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--state-file", type=Path, default=None)
    parser.add_argument("--pending-refund-seconds", type=float, default=10.0)
    parser.add_argument("--late-failure-seconds", type=float, default=10.0)
    parser.add_argument("--webhook-url", default=None, help="where to POST signed events")
    parser.add_argument(
        "--webhook-secret",
        default=os.environ.get("STRIPE_WEBHOOK_SECRET"),
        help="signing secret (default: STRIPE_WEBHOOK_SECRET)",
    )
    parser.add_argument(
        "--settlement-currency",
        default=os.environ.get("REFUNDS_SETTLEMENT_CURRENCY", "").strip() or "usd",
        help="the account's settlement currency (default: REFUNDS_SETTLEMENT_CURRENCY or usd)",
    )
    args = parser.parse_args(argv)
    try:
        faults = SandboxFaults.from_env(os.environ)
        Webhooks(args.webhook_url, args.webhook_secret)
        if args.settlement_currency.lower() not in CURRENCIES:
            raise ValueError(f"--settlement-currency {args.settlement_currency!r} is not known")
    except ValueError as problem:
        parser.error(str(problem))
    logging.basicConfig(level=logging.INFO)
    asyncio.run(_serve(args, faults))


if __name__ == "__main__":
    main()
