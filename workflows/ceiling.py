"""CeilingWorkflow: one empty regular activity, then done.

``refunds bench`` runs it beside the refund workflow on the same stack and worker setup: the
fastest a workflow with one activity can go there is the ceiling a refund is compared with.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow


@workflow.defn(name="CeilingWorkflow")
class CeilingWorkflow:
    @workflow.run
    async def run(self) -> None:
        # By name: workflows/ never imports activities/.
        await workflow.execute_activity(
            "ceiling_activity", start_to_close_timeout=timedelta(seconds=30)
        )
