"""Typed client for the refund contract: start a refund, read its status, wait for its result.

Starts are de-duplicated by the workflow ID ``refund-{request_id}``: a repeated call joins the
running refund (USE_EXISTING), and a repeat after it closed is refused (REJECT_DUPLICATE)
rather than refunding twice.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from workflows import search_attributes as sa
from workflows.models import RefundRequest, RefundResult, RefundStatus, RefundView
from workflows.refund import RefundWorkflow
from workflows.rules import MAX_AMOUNT, is_opaque_id

RefundHandle = WorkflowHandle[RefundWorkflow, RefundResult]


def workflow_id(request_id: str) -> str:
    return f"refund-{request_id}"


def initial_search_attributes(request: RefundRequest) -> TypedSearchAttributes:
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(sa.REFUND_STATUS, RefundStatus.RECEIVED.value),
        SearchAttributePair(sa.PSP, request.psp.value),
        SearchAttributePair(sa.PAYMENT_ID, request.payment_id),
    ]
    if is_opaque_id(request.customer_id):  # an email address is refused, never indexed
        pairs.append(SearchAttributePair(sa.CUSTOMER_ID, request.customer_id))
    if request.amount is not None and 0 < request.amount <= MAX_AMOUNT:
        # Out of range, the workflow refuses it by name; Temporal would refuse the attribute.
        pairs.append(SearchAttributePair(sa.REFUND_AMOUNT, request.amount))
    return TypedSearchAttributes(pairs)


async def start_refund(client: Client, request: RefundRequest, task_queue: str) -> RefundHandle:
    """Start (or join) the refund for ``request.request_id``.

    A request id whose refund already finished gets that refund's handle back: the caller
    sees the earlier outcome, and no second refund is ever started.
    """
    try:
        return await client.start_workflow(
            RefundWorkflow.run,
            request,
            id=workflow_id(request.request_id),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=initial_search_attributes(request),
        )
    except WorkflowAlreadyStartedError:
        return client.get_workflow_handle_for(RefundWorkflow.run, workflow_id(request.request_id))


def refund_handle(client: Client, request_id: str) -> RefundHandle:
    return client.get_workflow_handle_for(RefundWorkflow.run, workflow_id(request_id))


async def refund_status(client: Client, request_id: str) -> RefundView:
    return await refund_handle(client, request_id).query(RefundWorkflow.status)


async def visible_status(
    handle: WorkflowHandle[Any, Any], rpc_timeout: timedelta | None = None
) -> str:
    """The refund's status from visibility (the RefundStatus search attribute), not a query:
    it answers even when no worker is running."""
    described = await handle.describe(rpc_timeout=rpc_timeout)
    return described.typed_search_attributes.get(sa.REFUND_STATUS) or RefundStatus.RECEIVED.value


async def final_status(
    client: Client, request_id: str, rpc_timeout: timedelta | None = None
) -> str | None:
    """The final status of a refund whose workflow has closed, else None (from visibility)."""
    try:
        described = await refund_handle(client, request_id).describe(rpc_timeout=rpc_timeout)
    except RPCError:
        return None
    if described.status in (None, WorkflowExecutionStatus.RUNNING):
        return None
    return described.typed_search_attributes.get(sa.REFUND_STATUS) or described.status.name
