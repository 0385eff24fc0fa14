"""RecordDisputeWorkflow: keep a disputed payment from being refunded again.

Started by the webhook receiver for ``charge.dispute.created`` (ID
``payment-dispute-{dispute_id}``, so a repeated webhook joins it); the mark is written by an
activity, so the receiver itself never touches the database.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.models import RecordDispute
    from workflows.steps import local_step


@workflow.defn(name="RecordDisputeWorkflow")
class RecordDisputeWorkflow:
    @workflow.run
    async def run(self, dispute: RecordDispute) -> None:
        await local_step("record_dispute", dispute, type(None))
