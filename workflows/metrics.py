"""The refund workflow's own metrics, recorded on the SDK's replay-safe workflow meter.

``workflow.metric_meter()`` records nothing while a workflow replays its history, so a refund
is counted once however often a worker rebuilds it. The meter adds ``namespace``,
``task_queue`` and ``workflow_type``; labels here are statuses, providers and currencies only,
never a customer or a refund id (one series per refund would swamp Prometheus).

Names follow OpenTelemetry's conventions as Prometheus renders them: a unit suffix, and
``_total`` on counters (the SDK's exporter adds neither itself).
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.models import RefundRequest, RefundStatus

REFUNDS_FINISHED = "refunds_finished_total"
AMOUNT_REFUNDED = "refunds_amount_refunded_minor_units_total"
REVIEW_WAIT = "refunds_review_wait_seconds"

# From a quick decision to the longest review window (days).
REVIEW_WAIT_BUCKETS: dict[str, list[float]] = {
    REVIEW_WAIT: [60, 300, 900, 1800, 3600, 4 * 3600, 8 * 3600, 24 * 3600, 72 * 3600, 604800]
}


def refund_finished(
    request: RefundRequest,
    status: RefundStatus,
    amount_refunded: int,
    review_wait_s: float | None,
) -> None:
    """Count a refund that ended, the money it moved, and how long it waited for reviewers."""
    meter = workflow.metric_meter()
    psp = request.psp.value
    meter.create_counter(REFUNDS_FINISHED, "Refunds that reached a final status", "{refund}").add(
        1, {"status": status.value, "psp": psp}
    )
    if amount_refunded > 0:
        meter.create_counter(
            AMOUNT_REFUNDED,
            "Money refunded, in the currency's minor unit (cents); add per currency only",
            "{minor_unit}",
        ).add(amount_refunded, {"currency": request.currency, "psp": psp})
    if review_wait_s is not None:
        meter.create_histogram_float(
            REVIEW_WAIT, "Time a flagged refund waited for its review decision", "s"
        ).record(review_wait_s, {"status": status.value, "psp": psp})
