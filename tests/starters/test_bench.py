"""``refunds bench``: the action count on real histories, and the real command end to end."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path

import asyncpg
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.ceiling import ceiling_activity
from deploy.sandboxes.stripe_shop import create_payment, shop_client
from starters.bench_history import LOCAL_ACTIVITY_MARKER, billable_actions, summarise
from starters.client import start_refund
from tests.starters.cli_run import refunds
from tests.support.stack import SANDBOX_KEY, running_worker
from workflows.ceiling import CeilingWorkflow
from workflows.models import Psp, RefundRequest, RefundStatus


def kinds(history: list[HistoryEvent]) -> list[str]:
    return [EventType.Name(event.event_type).removeprefix("EVENT_TYPE_") for event in history]


async def refund_history(
    env: WorkflowEnvironment, pool: asyncpg.Pool, stripe_base: str
) -> list[HistoryEvent]:
    shop = shop_client(stripe_base, SANDBOX_KEY)
    payment = await create_payment(shop, amount=4200, currency="eur", customer="cus_bench")
    request = RefundRequest(
        request_id=f"bench-test-{uuid.uuid4().hex[:8]}",
        psp=Psp.STRIPE,
        payment_id=payment,
        amount=1200,
        currency="EUR",
        customer_id="cus_bench",
        requested_by="bench@shop.example",
    )
    async with running_worker(env.client, pool, stripe_base) as queue:
        handle = await start_refund(env.client, request, queue)
        assert (await handle.result()).status is RefundStatus.SUCCEEDED
        return list((await handle.fetch_history()).events)


async def test_an_auto_approved_refund_costs_four_actions_in_fifteen_events(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    history = await refund_history(time_skipping_env, ledger_db, stripe_base)

    # start + the three local activities (fetch, reserve, score: one workflow task, one
    # action) + the provider activity + the final search-attribute upsert.
    assert billable_actions(history) == 4
    assert kinds(history).count("MARKER_RECORDED") == 3
    assert len(history) == 15, kinds(history)


async def test_the_rules_of_counting_on_a_recorded_history(
    time_skipping_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> None:
    history = await refund_history(time_skipping_env, ledger_db, stripe_base)
    markers = [e for e in history if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]
    assert {m.marker_recorded_event_attributes.marker_name for m in markers} == {
        LOCAL_ACTIVITY_MARKER
    }

    # A local activity recorded by a later workflow task is another action.
    later = HistoryEvent()
    later.CopyFrom(markers[0])
    later.marker_recorded_event_attributes.workflow_task_completed_event_id += 100
    assert billable_actions([*history, later]) == 5
    # A marker that is not a local activity's (a patch, say) costs nothing here.
    patch = HistoryEvent()
    patch.CopyFrom(later)
    patch.marker_recorded_event_attributes.marker_name = "core_patch"
    assert billable_actions([*history, patch]) == 4
    # Each retry of a regular activity is billed: the third attempt means two more actions.
    retried = [HistoryEvent() for _ in history]
    for copy, event in zip(retried, history, strict=True):
        copy.CopyFrom(event)
        if copy.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            copy.activity_task_started_event_attributes.attempt = 3
    assert billable_actions(retried) == 6
    # A signal and a timer are one action each.
    signal, timer = HistoryEvent(), HistoryEvent()
    signal.event_type = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    timer.event_type = EventType.EVENT_TYPE_TIMER_STARTED
    assert billable_actions([*history, signal, timer]) == 6

    figures = summarise([history, [*history, later]])
    assert (figures.events, figures.actions) == (15.5, 4.5)
    assert (figures.events_range, figures.actions_range) == ((15, 16), (4, 5))


async def test_the_ceiling_workflow_is_one_activity_and_two_actions(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    client = time_skipping_env.client
    queue = f"ceiling-test-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client, task_queue=queue, workflows=[CeilingWorkflow], activities=[ceiling_activity]
    ):
        handle = await client.start_workflow(
            CeilingWorkflow.run, id=f"ceiling-{uuid.uuid4().hex[:8]}", task_queue=queue
        )
        await handle.result()
        history = list((await handle.fetch_history()).events)

    assert kinds(history).count("ACTIVITY_TASK_SCHEDULED") == 1
    assert billable_actions(history) == 2
    assert len(history) == 11, kinds(history)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


FIGURES = {
    "refunds_per_s",
    "p50_ms",
    "p99_ms",
    "events_per_refund",
    "actions_per_refund",
    "cpu_s_per_refund",
    "peak_rss_mb",
}


def test_bench_measures_refunds_against_the_ceiling_on_the_embedded_stack(
    tmp_path: Path,
) -> None:
    env = {
        "REFUNDS_STATE_DIR": str(tmp_path / "state"),
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "REFUNDS_TEMPORAL_UI_PORT": "0",
        "REFUNDS_STRIPE_SANDBOX_PORT": str(free_port()),
    }
    answer = refunds("bench", "--count", "10", "--concurrency", "4", "--json", env=env, timeout=120)
    assert answer.returncode == 0, answer.stderr[-3000:]
    report = json.loads(answer.stdout)  # one JSON object, progress went to stderr

    assert set(report) >= FIGURES | {"ceiling", "ratio", "count", "concurrency", "machine"}
    assert set(report["ceiling"]) >= FIGURES
    assert (report["count"], report["concurrency"]) == (10, 4)
    for figures in (report, report["ceiling"]):
        assert figures["refunds_per_s"] > 0
        assert 0 < figures["p50_ms"] <= figures["p99_ms"]
        assert figures["cpu_s_per_refund"] > 0
        assert figures["peak_rss_mb"] > 10
    assert report["actions_per_refund"] == 4
    assert report["events_per_refund"] == 15
    ceiling = report["ceiling"]
    assert (ceiling["actions_per_refund"], ceiling["events_per_refund"]) == (2, 11)
    assert report["ratio"] > 0
    assert report["machine"]["cores"] >= 1
    assert report["not_succeeded"] == []
    assert "ceiling: 10/10 finished" in answer.stderr
    assert not (tmp_path / "state" / "stack.json").exists(), "the stack cleaned up after itself"


def test_bench_refuses_a_count_below_one() -> None:
    answer = refunds("bench", "--count", "0")
    assert answer.returncode == 2
    assert "--count" in answer.stderr
    assert "Traceback" not in answer.stderr
