"""The embedded local stack: Temporal dev server, PostgreSQL, the provider sandboxes.

Each part is started only when the configuration does not point elsewhere:
``REFUNDS_DATABASE_URL`` replaces the embedded PostgreSQL; a provider's API base or real
credentials (``STRIPE_API_KEY``, ``PAYPAL_CLIENT_ID``, ``ADYEN_API_KEY``) replace its
sandbox. The embedded PostgreSQL is given the seed exchange rates (``fx_seed``). What runs
is written to ``stack.json`` in the state folder so ``refunds demo`` and
``refunds bench`` can use a stack ``refunds dev`` already runs.
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

from deploy.local.fx_seed import seed_rates
from deploy.local.provider_sandboxes import (
    SandboxPorts,
    SandboxSettings,
    receiver_url,
    start_sandboxes,
)
from deploy.local.temporal_server import TemporalDevServer

__all__ = ["LocalStack", "RunningStack", "StackPorts", "read_running_stack", "receiver_url"]


@dataclass(frozen=True)
class StackPorts:
    temporal_ui: int | None = 8233
    stripe_sandbox: int = 12111
    paypal_sandbox: int = 12112
    adyen_sandbox: int = 12113

    @classmethod
    def from_env(cls) -> StackPorts:
        ui = _port("REFUNDS_TEMPORAL_UI_PORT", 8233)
        return cls(
            temporal_ui=ui or None,
            stripe_sandbox=_port("REFUNDS_STRIPE_SANDBOX_PORT", 12111),
            paypal_sandbox=_port("REFUNDS_PAYPAL_SANDBOX_PORT", 12112),
            adyen_sandbox=_port("REFUNDS_ADYEN_SANDBOX_PORT", 12113),
        )


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
    paypal_api_base: str | None = None
    adyen_checkout_base: str | None = None
    paypal_webhook_certificate: str | None = None  # the PayPal sandbox's signing certificate


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


class StackSettings(SandboxSettings, Protocol):
    """What the stack reads of the service's settings (``workers.settings.Settings``)."""

    @property
    def temporal_address(self) -> str: ...
    @property
    def database_url(self) -> str | None: ...
    @property
    def state_dir(self) -> Path: ...


class LocalStack:
    def __init__(
        self,
        settings: StackSettings,
        ports: StackPorts | None = None,
        with_receiver: bool = True,
        ui_codec_endpoint: str | None = None,
    ) -> None:
        """``with_receiver``: the caller serves the webhook receiver, so the sandboxes deliver
        their webhooks to it (without one, they send none rather than retry into the void)."""
        self.settings = settings
        self.with_receiver = with_receiver
        self.ui_codec_endpoint = ui_codec_endpoint
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
            self.settings.temporal_address,
            self.ports.temporal_ui,
            self.state_dir / "temporal.db",
            ui_codec_endpoint=self.ui_codec_endpoint,
        )
        database_url = self.settings.database_url or ""
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
            # Its own PostgreSQL gets the seed exchange rates (a configured one keeps its own).
            await seed_rates(database_url)
        ports = self.ports
        bases = await start_sandboxes(
            self.settings,
            SandboxPorts(ports.stripe_sandbox, ports.paypal_sandbox, ports.adyen_sandbox),
            self.state_dir,
            self._exit,
            self.with_receiver,
        )
        return RunningStack(
            temporal_address=self.settings.temporal_address,
            temporal_ui=temporal.ui_url,
            database_url=database_url,
            stripe_api_base=bases.stripe,
            pid=os.getpid(),
            paypal_api_base=bases.paypal,
            adyen_checkout_base=bases.adyen,
            paypal_webhook_certificate=bases.paypal_certificate,
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
