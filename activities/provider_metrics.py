"""Timing, error counts and a trace span around each call to a payment provider.

A slow or failing refund is usually a slow or failing provider: the span ``{psp}.{operation}``
shows it inside the refund's trace, and the metrics show it across refunds. Spans carry the
refund id and provider only; never an amount's owner, a key, or a provider's message (which
can quote the request).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import Enum

from opentelemetry import trace
from temporalio import activity
from temporalio.common import MetricMeter
from temporalio.runtime import Runtime

PROVIDER_CALL_DURATION = "refunds_provider_call_duration_seconds"
PROVIDER_ERRORS = "refunds_provider_errors_total"

PROVIDER_CALL_BUCKETS: dict[str, list[float]] = {
    PROVIDER_CALL_DURATION: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
}
REFUND_WORKFLOW_PREFIX = "refund-"

_tracer = trace.get_tracer(__name__)


def _meter() -> MetricMeter:
    # Inside an activity the SDK's meter adds activity_type, namespace and task_queue.
    return activity.metric_meter() if activity.in_activity() else Runtime.default().metric_meter


def _refund_id() -> str | None:
    if not activity.in_activity():
        return None
    workflow_id = activity.info().workflow_id or ""
    if workflow_id.startswith(REFUND_WORKFLOW_PREFIX):
        return workflow_id.removeprefix(REFUND_WORKFLOW_PREFIX)
    return None


class ProviderCall:
    """What the caller learns inside the call: the provider's answer, for the span."""

    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def answered(self, status: str) -> str:
        """Put the refund's status at the provider (``succeeded``, ``pending``, ...) on the
        span; returns it, so a caller can write ``call.answered(outcome.status)``."""
        self._span.set_attribute("refund.status", status)
        return status


@asynccontextmanager
async def provider_call(
    psp: str | Enum, operation: str, refund_id: str | None = None
) -> AsyncIterator[ProviderCall]:
    """Time one provider call, count its error by class name, and trace it.

    ``refund_id`` defaults to the id in the activity's ``refund-{id}`` workflow id.
    """
    name = psp.value if isinstance(psp, Enum) else psp
    labels = {"psp": str(name), "operation": operation}
    attributes = {"refund.psp": str(name), "refund.operation": operation}
    refund = refund_id or _refund_id()
    if refund:
        attributes["refund.id"] = refund
    meter = _meter()
    started = time.monotonic()
    with _tracer.start_as_current_span(
        f"{name}.{operation}",
        kind=trace.SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,  # its message may quote the request
        set_status_on_exception=False,
    ) as span:
        try:
            yield ProviderCall(span)
        except Exception as error:
            kind = type(error).__name__
            span.set_status(trace.StatusCode.ERROR, kind)
            span.set_attribute("error.type", kind)
            meter.create_counter(
                PROVIDER_ERRORS, "Provider calls that failed, by error class", "{error}"
            ).add(1, {"psp": str(name), "operation": operation, "type": kind})
            raise
        finally:
            meter.create_histogram_float(
                PROVIDER_CALL_DURATION, "Time a payment provider took to answer", "s"
            ).record(time.monotonic() - started, labels)
