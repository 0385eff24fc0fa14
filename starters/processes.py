"""Running long-lived async services from a command until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from starters.cli_support import one_line_errors


def run_until_interrupted(service: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
    """Run ``service(stop)``; SIGINT/SIGTERM set ``stop`` so it can shut down cleanly."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await service(stop)

    with one_line_errors():
        asyncio.run(main())
