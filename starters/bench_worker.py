"""The worker ``refunds bench`` measures, in a process of its own, and how the bench watches it.

``python -m starters.bench_worker --task-queue Q [--with-ceiling]`` runs a refund worker built
exactly as ``refunds worker`` builds it (with ``--with-ceiling`` also the one-empty-activity
workflow), configured from the environment like any worker. It prints ``READY_LINE`` on stdout
once it polls and stops on SIGTERM, letting activities in flight finish.

``worker_process`` starts one from the bench and always stops it again; ``WorkerProcess`` reads
its CPU time and peak memory from /proc, so the figures are the worker's alone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import click

from activities.ceiling import ceiling_activity
from activities.risk import RiskPolicy
from deploy.local.temporal_server import die_with_parent
from starters.processes import run_until_interrupted
from workers.client import connect
from workers.logging_setup import configure_logging
from workers.ops_settings import format_encryption_keys
from workers.settings import Settings, SettingsError
from workers.worker import (
    build_providers,
    ledger_pool,
    refund_workers,
    running,
    worker_activities,
)
from workflows.ceiling import CeilingWorkflow

T = TypeVar("T")

READY_LINE = "bench worker ready"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


# --- the parent's side: start, measure, stop -----------------------------------------------


@dataclass(frozen=True)
class WorkerProcess:
    process: asyncio.subprocess.Process
    task_queue: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        """User plus system CPU time of every thread of the worker so far."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()  # fields 3.. (the name may hold spaces)
        ticks = int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15
        return ticks / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
        raise click.ClickException(f"no VmHWM in /proc/{self.pid}/status")

    async def unless_it_dies(self, work: Awaitable[T], during: str) -> T:
        """Await ``work``; if the worker exits first, stop it and say so in one line."""
        task = asyncio.ensure_future(work)
        exited = asyncio.ensure_future(self.process.wait())
        try:
            await asyncio.wait({task, exited}, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                return task.result()
            raise click.ClickException(
                f"the bench worker exited ({self.process.returncode}) during {during}: "
                f"{self.log_tail() or self.log}"
            )
        finally:
            for pending in (task, exited):
                pending.cancel()
            await asyncio.gather(task, exited, return_exceptions=True)

    def log_tail(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else ""


def worker_environment(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        TEMPORAL_ADDRESS=settings.temporal_address,
        TEMPORAL_NAMESPACE=settings.temporal_namespace,
        REFUNDS_DATABASE_URL=settings.require_database_url(),
    )
    for name, value in (
        ("STRIPE_API_BASE", settings.stripe_api_base),
        ("STRIPE_API_KEY", settings.stripe_api_key),
        ("REFUNDS_ENCRYPTION_KEYS", format_encryption_keys(settings.ops.encryption_keys)),
        ("REFUNDS_ALLOW_UNENCRYPTED", "true" if settings.ops.allow_unencrypted else ""),
        ("REFUNDS_METRICS_ADDRESS", "off"),  # the measured worker serves no endpoint
    ):
        if value:
            env[name] = value
    return env


@asynccontextmanager
async def worker_process(
    settings: Settings, task_queue: str, log: Path
) -> AsyncIterator[WorkerProcess]:
    """A bench worker polling ``task_queue``, stopped (SIGTERM, then SIGKILL) on the way out."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "starters.bench_worker",
            "--task-queue",
            task_queue,
            "--with-ceiling",
            stdout=asyncio.subprocess.PIPE,
            stderr=log_file,
            env=worker_environment(settings),
        )
    worker = WorkerProcess(process, task_queue, log)
    try:
        await _wait_until_ready(worker)
        yield worker
    finally:
        await _stop(process)


async def _wait_until_ready(worker: WorkerProcess) -> None:
    assert worker.process.stdout is not None
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            while line := await worker.process.stdout.readline():
                if line.decode(errors="replace").startswith(READY_LINE):
                    return
    except TimeoutError:
        raise click.ClickException(
            f"the bench worker did not poll within {READY_TIMEOUT_S:.0f}s; see {worker.log}"
        ) from None
    code = await worker.process.wait()
    raise click.ClickException(
        f"the bench worker exited ({code}) before polling: {worker.log_tail() or worker.log}"
    )


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        try:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except ProcessLookupError:
            pass
        except TimeoutError:
            process.kill()
    await process.wait()


# --- the child's side: the worker itself ---------------------------------------------------


async def serve(
    settings: Settings, task_queue: str, with_ceiling: bool, stop: asyncio.Event
) -> None:
    client = await connect(settings)
    async with ledger_pool(settings.require_database_url()) as pool:
        # Every bench refund must be auto-approved: it measures the path without a human.
        never_review = RiskPolicy(review_score=101, review_above=10**15)
        providers = build_providers(settings, pool=pool)
        activities = worker_activities(providers, pool, never_review)
        workers = refund_workers(
            client,
            task_queue,
            [*activities, *([ceiling_activity] if with_ceiling else [])],
            providers,
            rate_limits=settings.provider_rate_limits,
            extra_workflows=[CeilingWorkflow] if with_ceiling else [],
        )
        async with running(workers):
            print(f"{READY_LINE} on {task_queue} (pid {os.getpid()})", flush=True)
            await stop.wait()


@click.command()
@click.option("--task-queue", required=True, help="The queue to poll (a fresh one per run).")
@click.option("--with-ceiling", is_flag=True, help="Also run CeilingWorkflow.")
def main(task_queue: str, with_ceiling: bool) -> None:
    """Run the worker under test until SIGTERM."""
    die_with_parent()
    configure_logging()
    code = 0
    try:
        settings = Settings.from_env()
        run_until_interrupted(lambda stop: serve(settings, task_queue, with_ceiling, stop))
    except SettingsError as exc:
        print(f"bench worker: {exc}", file=sys.stderr)
        code = 2
    except Exception:
        logging.getLogger(__name__).exception("bench worker failed")
        code = 1
    # Leave as the CLI does: the Temporal client's threads can abort CPython's finalisation.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
