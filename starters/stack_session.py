"""The stack a command works against: the one a running ``refunds dev`` serves, or its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import click

from deploy.local.stack import LocalStack, read_running_stack
from starters.cli_support import pointed_at
from workers.settings import Settings
from workers.worker import run_worker


@asynccontextmanager
async def local_stack(settings: Settings, with_worker: bool = True) -> AsyncIterator[Settings]:
    """Yield settings pointed at a running stack, or at one brought up for this command
    (with an in-process worker unless ``with_worker`` is False), stopped on the way out."""
    running = read_running_stack(settings.state_dir.resolve())
    if running is not None:
        click.echo(f"using the stack of refunds dev (pid {running.pid})", err=True)
        yield pointed_at(settings, running)
        return
    parts = "Temporal, PostgreSQL, Stripe sandbox" + (", worker" if with_worker else "")
    click.echo(f"starting the embedded stack ({parts})...", err=True)
    async with LocalStack(settings) as stack:
        ready = pointed_at(settings, stack)
        if not with_worker:
            yield ready
            return
        stop = asyncio.Event()
        worker = asyncio.create_task(run_worker(ready, stop))
        try:
            yield ready
        finally:
            stop.set()
            await worker
