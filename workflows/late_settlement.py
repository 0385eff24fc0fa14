"""RefundLateSettlementWorkflow: the provider settled a refund after its workflow gave up.

A refund still pending at the provider after 7 days ends FAILED with its ledger reservation
kept for finance, since the money may still move. When the provider's word comes after all
(Adyen notifies for weeks), this posts the kept reservation (succeeded) or releases it
(failed), once per refund (ID ``refund-{request_id}-late-settlement``).
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.models import LateSettlement, LateSettlementResult
    from workflows.steps import local_step


@workflow.defn(name="RefundLateSettlementWorkflow")
class RefundLateSettlementWorkflow:
    @workflow.run
    async def run(self, settled: LateSettlement) -> LateSettlementResult:
        result = await local_step("settle_kept_reservation", settled, LateSettlementResult)
        if result.action != "nothing kept":
            workflow.logger.warning(
                "refund %s was settled %s by the provider after its workflow ended: %s",
                settled.request_id,
                settled.status.value,
                result.action,
            )
        return result


def late_settlement_workflow_id(request_id: str) -> str:
    return f"refund-{request_id}-late-settlement"
