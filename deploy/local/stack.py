"""The embedded local stack: Temporal dev server, PostgreSQL, the Stripe sandbox.

Each part is started only when the configuration does not point elsewhere:
``REFUNDS_DATABASE_URL`` replaces the embedded PostgreSQL; ``STRIPE_API_BASE`` or a real
``STRIPE_API_KEY`` replaces the sandbox. What runs is written to ``stack.json`` in the state
folder so ``refunds demo`` and ``refunds bench`` can use a stack ``refunds dev`` already runs.
"""

from __future__ import annotations

import asyncio
import json
import os
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

from deploy.local.temporal_server import TemporalDevServer
from deploy.sandboxes.faults import SandboxFaults
from deploy.sandboxes.stripe_sandbox import StripeSandbox, settle_after_from_env


@dataclass(frozen=True)
class StackPorts:
    temporal_ui: int | None = 8233
    stripe_sandbox: int = 12111

    @classmethod
    def from_env(cls) -> StackPorts:
        ui = _port("REFUNDS_TEMPORAL_UI_PORT", 8233)
        return cls(
            temporal_ui=ui or None, stripe_sandbox=_port("REFUNDS_STRIPE_SANDBOX_PORT", 12111)
        )


def receiver_url(http_address: str) -> str:
    """Where the local sandbox delivers Stripe webhooks: this stack's own receiver."""
    host, _, port = http_address.rpartition(":")
    host = "127.0.0.1" if host in ("", "0.0.0.0", "[::]") else host
    return f"http://{host}:{port}/webhooks/stripe"


def _port(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) > 65535:
        raise ValueError(f"{name} must be a port number (0-65535), got {text!r}")
    return int(text)


@dataclass(frozen=True)
class RunningStack:
    """Where the parts of a running stack answer."""

    temporal_address: str
    temporal_ui: str | None
    database_url: str
    stripe_api_base: str | None
    pid: int


def read_running_stack(state_dir: Path) -> RunningStack | None:
    """The stack a live ``refunds dev`` wrote, or None when there is none (or it died)."""
    try:
        stack = RunningStack(**json.loads((state_dir / "stack.json").read_text()))
        os.kill(stack.pid, 0)
    except (OSError, ValueError, TypeError):
        return None
    return stack


def _forget_dead_handles(data_dir: Path) -> None:
    """Drop crashed processes from pgserver's list of handles on this data folder.

    pgserver stops the server only when the last live handle closes; the pid of a process
    that died without closing stays listed, and the server would then outlive every later
    clean stop.
    """
    handles = data_dir / ".handle_pids.json"
    try:
        pids = [int(pid) for pid in json.loads(handles.read_text())]
    except (OSError, ValueError, TypeError):
        return
    handles.write_text(json.dumps([pid for pid in pids if _alive(pid)]))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StackSettings(Protocol):
    """What the stack reads of the service's settings (``workers.settings.Settings``)."""

    @property
    def temporal_address(self) -> str: ...
    @property
    def database_url(self) -> str | None: ...
    @property
    def stripe_api_base(self) -> str | None: ...
    @property
    def stripe_api_key(self) -> str | None: ...
    @property
    def state_dir(self) -> Path: ...
    @property
    def http_address(self) -> str: ...
    @property
    def stripe_webhook_secret(self) -> str | None: ...


class LocalStack:
    def __init__(self, settings: StackSettings, ports: StackPorts | None = None) -> None:
        self.settings = settings
        self.ports = ports or StackPorts.from_env()
        self.state_dir = settings.state_dir.resolve()
        self.running: RunningStack | None = None
        self._exit = AsyncExitStack()

    async def __aenter__(self) -> RunningStack:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.running = await self._start()
        except BaseException:
            await self._exit.aclose()
            raise
        (self.state_dir / "stack.json").write_text(json.dumps(asdict(self.running), indent=2))
        return self.running

    async def _start(self) -> RunningStack:
        temporal = TemporalDevServer(
            self.settings.temporal_address, self.ports.temporal_ui, self.state_dir / "temporal.db"
        )
        database_url = self.settings.database_url or ""
        stripe_base = self.settings.stripe_api_base
        sandbox_needed = not stripe_base and not self.settings.stripe_api_key
        self._exit.push_async_callback(temporal.stop)
        if database_url:
            await temporal.start()
        else:
            # Both must finish before an error propagates: a PostgreSQL still starting in its
            # thread would register its cleanup after the exit stack had already run.
            started = await asyncio.gather(
                temporal.start(), asyncio.to_thread(self._start_postgres), return_exceptions=True
            )
            for outcome in started:
                if isinstance(outcome, BaseException):
                    raise outcome
            database_url = str(started[1])
        if sandbox_needed:
            secret = (self.settings.stripe_webhook_secret or "").split(",")[0].strip()
            settle_after = settle_after_from_env(os.environ)  # REFUNDS_SANDBOX_SETTLE_AFTER
            sandbox = StripeSandbox(
                faults=SandboxFaults.from_env(os.environ),
                state_file=self.state_dir / "stripe-sandbox.json",
                pending_refund_seconds=settle_after,
                late_failure_seconds=settle_after,
                webhook_url=receiver_url(self.settings.http_address) if secret else None,
                webhook_secret=secret or None,
            )
            stripe_base = await sandbox.start("127.0.0.1", self.ports.stripe_sandbox)
            self._exit.push_async_callback(sandbox.stop)
        return RunningStack(
            temporal_address=self.settings.temporal_address,
            temporal_ui=temporal.ui_url,
            database_url=database_url,
            stripe_api_base=stripe_base,
            pid=os.getpid(),
        )

    def _start_postgres(self) -> str:
        from pgserver import get_server  # type: ignore[attr-defined]

        _forget_dead_handles(self.state_dir / "postgres")
        server = get_server(self.state_dir / "postgres", cleanup_mode="stop")
        self._exit.callback(server.cleanup)
        return str(server.get_uri())

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        (self.state_dir / "stack.json").unlink(missing_ok=True)
        await self._exit.aclose()
