"""``refunds bench``: how fast, how big and how costly an auto-approved refund is.

Two phases on the same stack, each against a fresh worker process on a fresh task queue: first
``CeilingWorkflow`` (one empty activity: the fastest a one-activity workflow goes here), then
real refunds of payments made in the Stripe sandbox beforehand. Each phase records every
start-to-result latency, the worker's CPU time and peak RSS, and a sample of histories, from
which events and Temporal Cloud actions per workflow are counted (``starters.bench_history``).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from deploy.sandboxes.stripe_shop import StripeShop, create_payment, shop_session
from starters.bench_history import HistoryFigures, sample_histories
from starters.bench_worker import worker_process
from starters.cli_support import load_settings, run_async
from starters.client import start_refund
from starters.stack_session import local_stack
from workers.client import connect
from workers.settings import Settings
from workflows.ceiling import CeilingWorkflow
from workflows.models import Psp, RefundReason, RefundRequest, RefundResult, RefundStatus

RUN_TIMEOUT_S = 180.0  # one workflow, start to result, before the bench gives up
CURRENCIES = ("USD", "EUR", "GBP", "JPY")
TARGETS = "targets: ratio >= 0.75, actions <= 4, events <= 20 per refund"

# One run: start a workflow on the task queue, wait for its result; (handle, problem or None).
Run = Callable[[str, int], Awaitable[tuple[WorkflowHandle[Any, Any], str | None]]]


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float
    latencies_s: list[float]
    cpu_s: float
    peak_rss_mb: float
    history: HistoryFigures
    problems: list[str]

    def figures(self) -> dict[str, float]:
        count = len(self.latencies_s)
        return {
            "refunds_per_s": round(count / self.seconds, 2),
            "p50_ms": round(percentile(self.latencies_s, 50) * 1000, 1),
            "p99_ms": round(percentile(self.latencies_s, 99) * 1000, 1),
            "events_per_refund": self.history.events,
            "actions_per_refund": self.history.actions,
            "cpu_s_per_refund": round(self.cpu_s / count, 5),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
        }


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile: the smallest value with ``pct`` percent at or below it."""
    ordered = sorted(values)
    return ordered[max(math.ceil(pct / 100 * len(ordered)) - 1, 0)]


def run_bench(count: int, concurrency: int, as_json: bool) -> None:
    if count < 1:
        raise click.BadParameter("must be at least 1", param_hint="--count")
    if concurrency < 1:
        raise click.BadParameter("must be at least 1", param_hint="--concurrency")
    report = run_async(bench)(count, concurrency)
    click.echo(json.dumps(report, indent=2) if as_json else report_table(report))
    if report["not_succeeded"]:
        shown = "; ".join(report["not_succeeded"][:5])
        raise click.ClickException(
            f"{len(report['not_succeeded'])} of {count * 2} workflows did not succeed: {shown}"
        )


async def bench(count: int, concurrency: int) -> dict[str, Any]:
    async with local_stack(load_settings(), with_worker=False) as settings:
        client = await connect(settings)
        run_id = uuid.uuid4().hex[:8]
        log_dir = settings.state_dir.resolve() / "bench"
        ceiling = await measure(
            "ceiling", settings, log_dir, count, concurrency, ceiling_run(client, run_id)
        )
        requests = await pay_for_refunds(settings, count, concurrency, run_id)
        refunds = await measure(
            "refunds", settings, log_dir, count, concurrency, refund_run(client, requests)
        )
    figures = refunds.figures()
    return {
        **figures,
        "ceiling": ceiling.figures(),
        "ratio": round(figures["refunds_per_s"] / ceiling.figures()["refunds_per_s"], 3),
        "count": count,
        "concurrency": concurrency,
        "machine": machine(),
        "not_succeeded": ceiling.problems + refunds.problems,
    }


def ceiling_run(client: Client, run_id: str) -> Run:
    async def run(task_queue: str, index: int) -> tuple[WorkflowHandle[Any, Any], str | None]:
        handle = await client.start_workflow(
            CeilingWorkflow.run, id=f"ceiling-{run_id}-{index:05d}", task_queue=task_queue
        )
        try:
            await handle.result()
        except WorkflowFailureError as error:
            return handle, f"{handle.id} failed: {error.cause or error}"
        return handle, None

    return run


def refund_run(client: Client, requests: list[RefundRequest]) -> Run:
    async def run(task_queue: str, index: int) -> tuple[WorkflowHandle[Any, Any], str | None]:
        handle = await start_refund(client, requests[index], task_queue)
        try:
            result: RefundResult = await handle.result()
        except WorkflowFailureError as error:
            return handle, f"{handle.id} failed: {error.cause or error}"
        if result.status is RefundStatus.SUCCEEDED:
            return handle, None
        return handle, f"{handle.id} {result.status.value}: {result.reason}"

    return run


async def pay_for_refunds(
    settings: Settings, count: int, concurrency: int, run_id: str
) -> list[RefundRequest]:
    """Captured payments in several currencies, refunded in full or in part (not timed)."""
    if not settings.stripe_api_base:
        raise click.ClickException(
            "refunds bench pays for its refunds in the Stripe sandbox, but a real Stripe key "
            "is configured (STRIPE_API_KEY without STRIPE_API_BASE)"
        )
    click.echo(f"paying for {count} orders in the Stripe sandbox...", err=True)
    gate = asyncio.Semaphore(concurrency)

    async def pay(shop: StripeShop, index: int) -> RefundRequest:
        currency = CURRENCIES[index % len(CURRENCIES)]
        paid = 1500 + (index * 173) % 20000  # 15.00 to 214.99; yen 1500 to 21499
        customer = f"cus_bench{index % 11}"
        async with gate:
            payment = await create_payment(
                shop, amount=paid, currency=currency.lower(), customer=customer
            )
        return RefundRequest(
            request_id=f"bench-{run_id}-{index:05d}",
            psp=Psp.STRIPE,
            payment_id=payment,
            amount=None if index % 2 == 0 else paid // 3,  # full, or a third
            currency=currency,
            reason=RefundReason.REQUESTED_BY_CUSTOMER,
            customer_id=customer,
            requested_by="bench@shop.example",
        )

    async with shop_session(settings.stripe_api_base, settings.stripe_api_key or "") as shop:
        return list(await asyncio.gather(*(pay(shop, index) for index in range(count))))


async def measure(
    name: str, settings: Settings, log_dir: Path, count: int, concurrency: int, run: Run
) -> Phase:
    task_queue = f"refunds-bench-{uuid.uuid4().hex[:12]}"
    click.echo(
        f"{name}: {count} workflows, at most {concurrency} in flight, on {task_queue}", err=True
    )
    async with worker_process(settings, task_queue, log_dir / f"worker-{name}.log") as worker:
        cpu_before = worker.cpu_seconds()
        started = time.monotonic()
        outcomes = await worker.unless_it_dies(
            _run_all(name, count, concurrency, run, worker.task_queue), f"the {name} phase"
        )
        seconds = time.monotonic() - started
        cpu_s = worker.cpu_seconds() - cpu_before
        peak_rss_mb = worker.peak_rss_mb()
    handles = [handle for handle, _, _ in outcomes]
    return Phase(
        name=name,
        seconds=seconds,
        latencies_s=[latency for _, _, latency in outcomes],
        cpu_s=cpu_s,
        peak_rss_mb=peak_rss_mb,
        history=await sample_histories(handles),
        problems=[problem for _, problem, _ in outcomes if problem],
    )


Outcome = tuple[WorkflowHandle[Any, Any], str | None, float]


async def _run_all(
    name: str, count: int, concurrency: int, run: Run, task_queue: str
) -> list[Outcome]:
    gate = asyncio.Semaphore(concurrency)
    done = 0
    every = max(count // 10, 1)

    async def timed(index: int) -> Outcome:
        nonlocal done
        async with gate:
            started = time.perf_counter()
            try:
                async with asyncio.timeout(RUN_TIMEOUT_S):
                    handle, problem = await run(task_queue, index)
            except TimeoutError:
                raise click.ClickException(
                    f"{name}: workflow {index} did not finish within {RUN_TIMEOUT_S:.0f}s"
                ) from None
            latency = time.perf_counter() - started
        done += 1
        if done % every == 0 or done == count:
            click.echo(f"{name}: {done}/{count} finished", err=True)
        return handle, problem, latency

    return list(await asyncio.gather(*(timed(index) for index in range(count))))


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        meminfo = Path("/proc/meminfo").read_text().split()
        memory_gib = round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 1024**2, 1)
    except (OSError, ValueError):
        memory_gib = 0.0
    return {
        "cpu": model,
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": memory_gib,
        "python": platform.python_version(),
    }


def report_table(report: dict[str, Any]) -> str:
    rows = [
        ("workflows/s", "refunds_per_s"),
        ("p50 start->result ms", "p50_ms"),
        ("p99 start->result ms", "p99_ms"),
        ("history events", "events_per_refund"),
        ("billable actions", "actions_per_refund"),
        ("worker CPU s each", "cpu_s_per_refund"),
        ("worker peak RSS MB", "peak_rss_mb"),
    ]
    lines = [f"{'':<22}{'refunds':>12}{'ceiling':>12}"]
    for label, key in rows:
        lines.append(f"{label:<22}{report[key]:>12}{report['ceiling'][key]:>12}")
    lines.append(f"ratio (refunds/s over ceiling/s): {report['ratio']}   ({TARGETS})")
    box = report["machine"]
    lines.append(
        f"{report['count']} of each, {report['concurrency']} in flight; {box['cpu']}, "
        f"{box['cores']} cores, {box['memory_gib']} GiB, Python {box['python']}"
    )
    return "\n".join(lines)
