"""RefundLateFailureWorkflow: the provider failed a refund after it had succeeded.

The refund's own workflow has ended SUCCEEDED; the money came back to the merchant. This
books a compensating ledger transfer (the posted refund's accounts, reversed) and records the
failure, once per refund (ID ``refund-{request_id}-late-failure``).
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.models import CompensateRefund, LateFailureResult
    from workflows.steps import local_step


@workflow.defn(name="RefundLateFailureWorkflow")
class RefundLateFailureWorkflow:
    @workflow.run
    async def run(self, failure: CompensateRefund) -> LateFailureResult:
        workflow.logger.warning(
            "refund %s failed at the provider after it succeeded: %s",
            failure.request_id,
            failure.failure_reason,
        )
        return await local_step("compensate_refund", failure, LateFailureResult)


def late_failure_workflow_id(request_id: str) -> str:
    return f"refund-{request_id}-late-failure"
