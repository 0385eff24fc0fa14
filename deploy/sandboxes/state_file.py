"""A sandbox's state on disk: written atomically, and at most every half second.

Rewriting the whole file (with fsync) on every request made a sandbox slower the more
payments it held; a crash now loses at most the last half second of sandbox changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

SAVE_EVERY_SECONDS = 0.5


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


class StateFile:
    """``changed()`` after each change; the file follows within SAVE_EVERY_SECONDS, and
    ``flush()`` (at stop) writes what is still unsaved. Without a path nothing is written."""

    def __init__(self, path: Path | None, dump: Callable[[], str]) -> None:
        self.path = path
        self._dump = dump  # called on the loop: no request changes the state mid-dump
        self._unsaved = False
        self._saver: asyncio.Task[None] | None = None

    def changed(self) -> None:
        if self.path is None:
            return
        self._unsaved = True
        if self._saver is None or self._saver.done():
            self._saver = asyncio.get_running_loop().create_task(self._save_soon())

    async def flush(self) -> None:
        if self._saver is not None:
            await self._saver
        await self._write()

    async def _save_soon(self) -> None:
        await asyncio.sleep(SAVE_EVERY_SECONDS)
        await self._write()

    async def _write(self) -> None:
        if self.path is None or not self._unsaved:
            return
        self._unsaved = False
        await asyncio.to_thread(write_atomically, self.path, self._dump())
