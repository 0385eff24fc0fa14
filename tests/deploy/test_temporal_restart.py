"""The local Temporal server restarts cleanly while a dying one still holds its SQLite file."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from pathlib import Path

from temporalio.client import Client

from deploy.local.temporal_server import TemporalDevServer


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_database_still_locked_is_waited_for(tmp_path: Path) -> None:
    db = tmp_path / "temporal.db"
    first = TemporalDevServer(f"127.0.0.1:{free_port()}", None, db)
    await first.start()
    await first.stop()

    # What a server killed a moment ago can leave: its SQLite file locked for a while.
    holder = sqlite3.connect(db, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    asyncio.get_running_loop().call_later(1.5, holder.close)
    address = f"127.0.0.1:{free_port()}"
    again = TemporalDevServer(address, None, db)
    try:
        await again.start()
        client = await Client.connect(address)
        assert await client.count_workflows() is not None
    finally:
        await again.stop()
    assert b"SQLITE_BUSY" in (tmp_path / "temporal.log").read_bytes(), "the lock was not met"
