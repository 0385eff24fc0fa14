"""The review queue, read from Temporal visibility by search attributes.

The same list in the Temporal UI: ``RefundStatus = "AWAITING_REVIEW"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client, WorkflowExecution
from temporalio.service import RPCError

from workflows import search_attributes as sa
from workflows.currencies import format_amount
from workflows.models import RefundView
from workflows.refund import RefundWorkflow

NEVER = datetime.max.replace(tzinfo=UTC)
QUEUE_QUERY = 'WorkflowType = "RefundWorkflow" AND RefundStatus = "AWAITING_REVIEW"'


@dataclass(frozen=True)
class QueueEntry:
    request_id: str
    amount: int
    currency: str
    risk_score: int
    deadline: datetime | None
    customer_id: str
    reasons: list[str]
    approvals: list[str]

    @property
    def amount_text(self) -> str:
        return format_amount(self.amount, self.currency) if self.currency else str(self.amount)

    def as_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "amount": self.amount,
            "currency": self.currency,
            "risk_score": self.risk_score,
            "customer_id": self.customer_id,
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "reasons": self.reasons,
            "approvals": self.approvals,
        }


async def review_queue(client: Client, sort: str = "deadline") -> list[QueueEntry]:
    """Refunds awaiting review, oldest deadline first (or riskiest first)."""
    entries = [
        await _entry(client, execution) async for execution in client.list_workflows(QUEUE_QUERY)
    ]
    if sort == "risk":
        entries.sort(key=lambda e: (-e.risk_score, e.deadline or NEVER))
    else:
        entries.sort(key=lambda e: (e.deadline is None, e.deadline or NEVER))
    return entries


async def _entry(client: Client, execution: WorkflowExecution) -> QueueEntry:
    found = execution.typed_search_attributes
    request_id = execution.id.removeprefix("refund-")
    handle = client.get_workflow_handle_for(RefundWorkflow.run, execution.id)
    try:  # reasons need a worker to answer; the rest of the row is visibility's
        view: RefundView | None = await handle.query(RefundWorkflow.status)
    except RPCError:
        view = None
    return QueueEntry(
        request_id=request_id,
        amount=found.get(sa.REFUND_AMOUNT) or (view.amount if view else None) or 0,
        currency=view.currency if view else "",
        risk_score=found.get(sa.RISK_SCORE) or 0,
        deadline=found.get(sa.REVIEW_DEADLINE),
        customer_id=found.get(sa.CUSTOMER_ID) or "",
        reasons=view.risk.reasons if view else ["(reasons unavailable: no worker answered)"],
        approvals=[a.reviewer for a in view.review.approvals] if view else [],
    )
