"""What a workflow's history says it cost: events, and Temporal Cloud billable actions.

The estimate follows Temporal Cloud's published action list as far as a history shows it:
the start, each activity scheduled (and each retry of it), each timer, each signal, each
search-attribute upsert, each completed update, and the local activities of one workflow task
together as one action (all markers a workflow task recorded count once, however many). Queries
are billed too but leave no trace in a history; ``refunds bench`` sends none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHandle

LOCAL_ACTIVITY_MARKER = "core_local_activity"

# Event types that are one action each.
ONE_ACTION_EACH = frozenset(
    {
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
        EventType.EVENT_TYPE_TIMER_STARTED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
        EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
    }
)


def billable_actions(events: Iterable[HistoryEvent]) -> int:
    """Temporal Cloud actions one workflow's history records (see the module docstring)."""
    actions = 0
    tasks_with_local_activities: set[int] = set()
    for event in events:
        if event.event_type in ONE_ACTION_EACH:
            actions += 1
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            # The started event carries the attempt that ran; earlier attempts were retries.
            actions += max(event.activity_task_started_event_attributes.attempt - 1, 0)
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == LOCAL_ACTIVITY_MARKER:
                tasks_with_local_activities.add(marker.workflow_task_completed_event_id)
    return actions + len(tasks_with_local_activities)


@dataclass(frozen=True)
class HistoryFigures:
    """Mean events and actions per workflow over a sample of histories."""

    sampled: int
    events: float
    actions: float
    events_range: tuple[int, int]
    actions_range: tuple[int, int]


def summarise(histories: Sequence[Sequence[HistoryEvent]]) -> HistoryFigures:
    if not histories:
        raise ValueError("no histories to summarise")
    events = [len(history) for history in histories]
    actions = [billable_actions(history) for history in histories]
    return HistoryFigures(
        sampled=len(histories),
        events=round(sum(events) / len(events), 2),
        actions=round(sum(actions) / len(actions), 2),
        events_range=(min(events), max(events)),
        actions_range=(min(actions), max(actions)),
    )


async def sample_histories(
    handles: Sequence[WorkflowHandle[Any, Any]], size: int = 20
) -> HistoryFigures:
    """Fetch up to ``size`` histories spread evenly over ``handles`` and summarise them."""
    step = max(len(handles) // size, 1)
    chosen = list(handles[::step])[:size]
    fetched = await asyncio.gather(*(handle.fetch_history() for handle in chosen))
    return summarise([list(history.events) for history in fetched])
