"""``refunds reviews``, ``approve``, ``reject``, ``cancel``: the reviewer's command line.

Decisions go as validated updates, so a refused decision is told at once, in plain words, and
changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import click
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from starters.cli_support import emit, load_settings, run_async
from starters.client import final_status, refund_handle, workflow_id
from starters.review_queue import QueueEntry, review_queue
from workers.client import connect
from workflows.models import CancelRequest, RefundView
from workflows.refund import RefundWorkflow
from workflows.review_models import ApproveDecision, RejectDecision


async def _decide(
    request_id: str, send: Callable[[Client], Awaitable[RefundView]], action: str
) -> RefundView:
    client = await connect(load_settings())
    try:
        return await send(client)
    except WorkflowUpdateFailedError as refused:
        why = refused.cause.message if refused.cause else str(refused)  # type: ignore[attr-defined]
        raise click.ClickException(f"{action} refused: {why}") from refused
    except RPCError as exc:
        ended = await final_status(client, request_id)
        if ended:
            raise click.ClickException(f"{action} refused: the refund has ended ({ended})") from exc
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise click.ClickException(
                f"no refund {request_id} ({workflow_id(request_id)})"
            ) from exc
        raise


def _describe(view: RefundView) -> str:
    """What the decision did (the update answers before the workflow acts on it)."""
    review, name = view.review, workflow_id(view.request_id)
    if review.rejected_by:
        return f"{name}: rejected by {review.rejected_by}; ending as REJECTED"
    approvals = ", ".join(a.reviewer for a in review.approvals) or "none"
    if len(review.approvals) >= review.approvals_required > 0:
        return f"{name}: approved by {approvals}; the refund goes ahead"
    return f"{name}: approvals so far {approvals}, {review.approvals_required} needed"


@click.command()
@click.argument("request_id")
@click.option("--reviewer", required=True, help="Who approves (never the requester).")
@click.option("--amount", type=int, help="Approve a lower amount, in minor units.")
@click.option("--note", default="", help="Why, for the audit trail.")
@click.option("--json", "as_json", is_flag=True)
@run_async
async def approve(
    request_id: str, reviewer: str, amount: int | None, note: str, as_json: bool
) -> None:
    """Approve a refund awaiting review."""
    decision = ApproveDecision(reviewer=reviewer, note=note, amount=amount)
    view = await _decide(
        request_id,
        lambda c: refund_handle(c, request_id).execute_update(
            RefundWorkflow.approve_refund, decision
        ),
        "approval",
    )
    emit(view, as_json, _describe(view))


@click.command()
@click.argument("request_id")
@click.option("--reviewer", required=True)
@click.option("--reason", required=True, help="Why the refund is refused.")
@click.option("--json", "as_json", is_flag=True)
@run_async
async def reject(request_id: str, reviewer: str, reason: str, as_json: bool) -> None:
    """Reject a refund awaiting review; its reservation is released."""
    decision = RejectDecision(reviewer=reviewer, reason=reason)
    view = await _decide(
        request_id,
        lambda c: refund_handle(c, request_id).execute_update(
            RefundWorkflow.reject_refund, decision
        ),
        "rejection",
    )
    emit(view, as_json, _describe(view))


@click.command()
@click.argument("request_id")
@click.option("--requested-by", required=True, help="Who cancels.")
@click.option("--json", "as_json", is_flag=True)
@run_async
async def cancel(request_id: str, requested_by: str, as_json: bool) -> None:
    """Cancel a refund before the provider is asked (while received, validating or in review)."""
    order = CancelRequest(requested_by=requested_by)
    view = await _decide(
        request_id,
        lambda c: refund_handle(c, request_id).execute_update(RefundWorkflow.cancel_refund, order),
        "cancel",
    )
    emit(view, as_json, f"{workflow_id(request_id)}: cancel accepted, ending as CANCELED")


@click.command()
@click.option(
    "--sort",
    type=click.Choice(["deadline", "risk"]),
    default="deadline",
    show_default=True,
    help="Oldest deadline first, or riskiest first.",
)
@click.option("--json", "as_json", is_flag=True)
@run_async
async def reviews(sort: str, as_json: bool) -> None:
    """List refunds awaiting review (Temporal visibility), with their reasons."""
    client = await connect(load_settings())
    queue = await review_queue(client, sort)
    rows = [_row(entry) for entry in queue]
    emit(
        {"reviews": [entry.as_json() for entry in queue]},
        as_json,
        "\n".join(rows) if rows else "no refunds awaiting review",
    )


def _row(entry: QueueEntry) -> str:
    deadline = entry.deadline.strftime("%Y-%m-%d %H:%M UTC") if entry.deadline else "-"
    line = (
        f"{entry.request_id:<28} {entry.amount_text:>16}  risk {entry.risk_score:>3}  "
        f"due {deadline}  customer {entry.customer_id}"
    )
    return line + "".join(f"\n    - {reason}" for reason in entry.reasons)
