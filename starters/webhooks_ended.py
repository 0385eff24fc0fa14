"""Provider updates for refunds whose workflow has ended: late failures and late settlements.

A signed update is first matched against the refund's own result (its provider refund id and
currency): an event naming our request id but another refund books nothing. A failure after
success books a compensating transfer (``RefundLateFailureWorkflow``); an outcome for a refund
that ended FAILED with its reservation kept posts or releases it
(``RefundLateSettlementWorkflow``); each once per refund, by workflow ID.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from temporalio.client import Client, WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.webhook_actions import RefundUpdateAction
from starters.client import workflow_id
from workflows.late_failure import RefundLateFailureWorkflow, late_failure_workflow_id
from workflows.late_settlement import RefundLateSettlementWorkflow, late_settlement_workflow_id
from workflows.models import (
    CompensateRefund,
    LateSettlement,
    PspRefundStatus,
    RefundResult,
    RefundStatus,
)

log = logging.getLogger("refunds.webhooks")


async def after_the_refund_ended(
    client: Client, task_queue: str, action: RefundUpdateAction
) -> str:
    """A provider update for a refund no longer running: a failure after it succeeded books a
    compensating transfer, an outcome for a refund that gave up settles its kept reservation
    (each once, by workflow ID); anything else has nothing left to change."""
    name, update = workflow_id(action.request_id), action.update
    try:  # the result says both how the refund ended and which provider refund it made
        ended = await client.get_workflow_handle(name, result_type=RefundResult).result()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise  # Temporal did not answer: 5xx, so the provider delivers it again
        log.warning("event %s: no refund %s (%s)", update.event_id, name, exc.message)
        return f"no refund {name}"
    except WorkflowFailureError as exc:
        return _ignored(update.event_id, name, f"{name} has no result to compare with ({exc})")
    mismatch = _not_this_refunds(ended, action)
    if mismatch:
        return _ignored(update.event_id, name, mismatch)
    told = CompensateRefund(
        request_id=action.request_id,
        event_id=update.event_id,
        psp_refund_id=update.psp_refund_id,
        amount=update.amount,
        currency=update.currency,
        failure_reason=update.failure_reason,
    )
    if ended.status is RefundStatus.FAILED:
        # It may have kept its reservation (not settled within 7 days): post or release it.
        settled = LateSettlement(status=update.status, **told.model_dump())
        await _start_once(
            client,
            RefundLateSettlementWorkflow.run,
            settled,
            late_settlement_workflow_id(action.request_id),
            task_queue,
        )
        return f"late settlement of {name} recorded"
    if update.status is not PspRefundStatus.FAILED or ended.status is not RefundStatus.SUCCEEDED:
        return f"{name} has ended: nothing to change"
    await _start_once(
        client,
        RefundLateFailureWorkflow.run,
        told,
        late_failure_workflow_id(action.request_id),
        task_queue,
    )
    return f"late failure of {name} recorded"


def _ignored(event_id: str, name: str, why: str) -> str:
    log.warning("event %s for %s ignored: %s", event_id, name, why)
    return f"ignored {event_id}: {why}"


def _not_this_refunds(ended: RefundResult, action: RefundUpdateAction) -> str | None:
    """Why the update is not about the refund the workflow made at the provider, if it is
    not: a signed event naming our request id but another refund, or another currency, must
    not book anything against it."""
    update = action.update
    if ended.psp_refund_id != update.psp_refund_id:
        return f"it is about {update.psp_refund_id}, the refund is {ended.psp_refund_id}"
    if ended.currency.upper() != update.currency.upper():
        return f"it is in {update.currency}, the refund in {ended.currency}"
    return None


async def _start_once(
    client: Client, run: Any, arg: object, workflow_id_: str, task_queue: str
) -> None:
    """Start the workflow unless it exists: a provider delivering the same event again joins
    the one already recorded."""
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(
            run,
            arg,
            id=workflow_id_,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
