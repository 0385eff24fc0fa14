"""A local Stripe that the real `stripe` SDK talks to (API base `http://127.0.0.1:12111`).

Nothing may reach the network, yet the refund service must be tested through the SDK it runs
in production; so this speaks Stripe's API v1 for PaymentIntents, Charges and Refunds, with
Stripe's fields, refusals, idempotency and test cards, plus injected faults (see `faults`).
Tests start it in-process on port 0; `refunds dev` runs it on 12111 with a state file so
payments survive restarts. Standalone: `python -m deploy.sandboxes.stripe_sandbox --port 12111`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import tempfile
from pathlib import Path

from aiohttp import web

from deploy.sandboxes.faults import SandboxFaults, add_fault_routes, fault_middleware
from deploy.sandboxes.stripe_errors import fault_body
from deploy.sandboxes.stripe_objects import SandboxState
from deploy.sandboxes.stripe_payments import Payments
from deploy.sandboxes.stripe_refunds import Refunds
from deploy.sandboxes.stripe_routes import StripeApi

DEFAULT_PORT = 12111
SAVE_EVERY_SECONDS = 0.5
log = logging.getLogger(__name__)


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` in one step, so a crash mid-write never leaves half a state file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


class StripeSandbox:
    """The server. `faults` can be changed while it runs (`sandbox.faults.script(...)`)."""

    def __init__(
        self,
        faults: SandboxFaults | None = None,
        state_file: Path | None = None,
        *,
        pending_refund_seconds: float = 10.0,
    ) -> None:
        self.faults = faults if faults is not None else SandboxFaults()
        self.state_file = state_file
        self.pending_refund_seconds = pending_refund_seconds
        self.state = SandboxState()
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self._unsaved = False
        self._saver: asyncio.Task[None] | None = None

    async def start(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> str:
        """Serve on `host:port` (0 picks a free port) and return the API base URL."""
        if self._runner is not None:
            raise RuntimeError("the Stripe sandbox is already running")
        if self.state_file is not None and self.state_file.exists():
            self.state = SandboxState.from_json(self.state_file.read_text(encoding="utf-8"))
        payments = Payments(self.state)
        refunds = Refunds(self.state, payments, self.pending_refund_seconds)
        app = web.Application(middlewares=[fault_middleware(self.faults, fault_body)])
        add_fault_routes(app, self.faults)
        StripeApi(self.state, payments, refunds, self._save).add_routes(app)
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
        log.info("Stripe sandbox listening on %s", self.base_url)
        return self.base_url

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        if self._saver is not None:
            await self._saver
        await self._write_state()

    def _save(self) -> None:
        """Note a change; the state file is rewritten at most every SAVE_EVERY_SECONDS.

        Rewriting the whole file (with fsync) on every request made the sandbox slower the more
        payments it held; a crash now loses at most the last half second of sandbox changes.
        """
        if self.state_file is None:
            return
        self._unsaved = True
        if self._saver is None or self._saver.done():
            self._saver = asyncio.get_running_loop().create_task(self._save_soon())

    async def _save_soon(self) -> None:
        await asyncio.sleep(SAVE_EVERY_SECONDS)
        await self._write_state()

    async def _write_state(self) -> None:
        if self.state_file is None or not self._unsaved:
            return
        self._unsaved = False
        text = self.state.to_json()  # on the loop: no request changes the state mid-dump
        await asyncio.to_thread(write_atomically, self.state_file, text)


async def _serve(host: str, port: int, state_file: Path | None, faults: SandboxFaults) -> None:
    sandbox = StripeSandbox(faults, state_file)
    await sandbox.start(host, port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    print(f"Stripe sandbox on {sandbox.base_url}", flush=True)
    try:
        await stopping.wait()
    finally:
        await sandbox.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--state-file", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        faults = SandboxFaults.from_env(os.environ)
    except ValueError as problem:
        parser.error(str(problem))
    logging.basicConfig(level=logging.INFO)
    asyncio.run(_serve(args.host, args.port, args.state_file, faults))


if __name__ == "__main__":
    main()
