"""Running a sandbox on its own (`python -m deploy.sandboxes.<provider>_sandbox`) until Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence
from typing import Protocol


class Sandbox(Protocol):
    async def start(self, host: str, port: int) -> str: ...
    async def stop(self) -> None: ...


async def serve_until_signalled(
    sandbox: Sandbox, host: str, port: int, announce: Callable[[str], Sequence[str]]
) -> None:
    """Start ``sandbox``, print what ``announce`` says of its base URL, and stop it cleanly
    (state saved, webhooks given their grace) on SIGINT or SIGTERM."""
    base_url = await sandbox.start(host, port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    for line in announce(base_url):
        print(line, flush=True)
    try:
        await stopping.wait()
    finally:
        await sandbox.stop()
