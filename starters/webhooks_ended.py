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

from temporalio.client import Client, WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.webhook_actions import RefundUpdateAction
from starters.client import workflow_id
from workflows.late_failure import RefundLateFailureWorkflow, late_failure_workflow_id
from workflows.late_settlement import RefundLateSettlementWorkflow, late_settlement_workflow_id
from workflows.models import CompensateRefund, LateSettlement, PspRefundStatus, RefundResult
from workflows.search_attributes import REFUND_STATUS

log = logging.getLogger("refunds.webhooks")


async def after_the_refund_ended(
    client: Client, task_queue: str, action: RefundUpdateAction
) -> str:
    """A provider update for a refund no longer running: a failure after it succeeded books a
    compensating transfer (once, by workflow ID); anything else has nothing left to change."""
    name = workflow_id(action.request_id)
    try:
        ended = await client.get_workflow_handle(name).describe()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise  # Temporal did not answer: 5xx, so the provider delivers it again
        log.warning("event %s: no refund %s (%s)", action.update.event_id, name, exc.message)
        return f"no refund {name}"
    status = ended.typed_search_attributes.get(REFUND_STATUS)
    mismatch = await _not_this_refunds(client, name, action)
    if mismatch:
        log.warning("event %s for %s ignored: %s", action.update.event_id, name, mismatch)
        return f"ignored {action.update.event_id}: {mismatch}"
    if status == "FAILED":
        return await _settled_after_the_refund_gave_up(client, task_queue, action)
    if action.update.status is not PspRefundStatus.FAILED or status != "SUCCEEDED":
        return f"{name} has ended: nothing to change"
    update = action.update
    failure = CompensateRefund(
        request_id=action.request_id,
        event_id=update.event_id,
        psp_refund_id=update.psp_refund_id,
        amount=update.amount,
        currency=update.currency,
        failure_reason=update.failure_reason,
    )
    # Recorded already when the ID exists: the provider is delivering the same failure again.
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(
            RefundLateFailureWorkflow.run,
            failure,
            id=late_failure_workflow_id(action.request_id),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    return f"late failure of {name} recorded"


async def _not_this_refunds(client: Client, name: str, action: RefundUpdateAction) -> str | None:
    """Why the update is not about the refund ``name`` made at the provider, if it is not: a
    signed event naming our request id but another refund, or another currency, must not book
    anything against it."""
    try:
        result = await client.get_workflow_handle(name, result_type=RefundResult).result()
    except (WorkflowFailureError, RPCError) as exc:
        return f"{name} has no result to compare with ({exc})"
    update = action.update
    if result.psp_refund_id != update.psp_refund_id:
        return f"it is about {update.psp_refund_id}, the refund is {result.psp_refund_id}"
    if result.currency.upper() != update.currency.upper():
        return f"it is in {update.currency}, the refund in {result.currency}"
    return None


async def _settled_after_the_refund_gave_up(
    client: Client, task_queue: str, action: RefundUpdateAction
) -> str:
    """A refund that ended FAILED may have kept its reservation (the provider had not settled
    within 7 days): the provider's word now posts or releases it, once per refund."""
    update = action.update
    settled = LateSettlement(
        request_id=action.request_id,
        event_id=update.event_id,
        psp_refund_id=update.psp_refund_id,
        status=update.status,
        amount=update.amount,
        currency=update.currency,
        failure_reason=update.failure_reason,
    )
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(
            RefundLateSettlementWorkflow.run,
            settled,
            id=late_settlement_workflow_id(action.request_id),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    return f"late settlement of {workflow_id(action.request_id)} recorded"
