"""How the refund workflow runs its activities, and how their failures become outcomes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.models import Psp

T = TypeVar("T")

# Error types (ApplicationError.type) that mean "the request was wrong": REJECTED, not FAILED.
REFUSAL_TYPES = frozenset(
    {
        "RefundRefused",
        "PaymentNotFound",
        "PaymentNotYetNotified",
        "PaymentNotRefundable",
        "CurrencyMismatch",
        "OverRefund",
        "ProviderNotSupported",
        "OrderNotFound",
        "PolicyRefused",
        "QuoteRefused",
        "ExchangeRateMissing",
    }
)

LOCAL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
)
# The provider call retries until it gets an answer: giving up could leave money moved at the
# provider with the reservation voided. The idempotency key makes every retry the same request.
PROVIDER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5)
)


class StepFailed(Exception):
    """An activity ended for good; ``refused`` when it was the request's fault."""

    def __init__(self, message: str, refused: bool, error_type: str | None = None) -> None:
        super().__init__(message)
        self.refused = refused
        self.error_type = error_type


def step_failure(error: ActivityError | ApplicationError) -> StepFailed:
    # A regular activity's failure arrives as ActivityError wrapping the ApplicationError;
    # a local activity's non-retryable failure arrives as the ApplicationError itself.
    cause = error.cause if isinstance(error, ActivityError) else error
    if isinstance(cause, ApplicationError):
        return StepFailed(cause.message, refused=cause.type in REFUSAL_TYPES, error_type=cause.type)
    return StepFailed(str(cause or error), refused=False)


async def local_step(
    name: str, arg: Any, result_type: type[T], give_up_after: timedelta = timedelta(minutes=10)
) -> T:
    """A step against our own database or a provider read: local, so it costs no action."""
    try:
        result: T = await workflow.execute_local_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=timedelta(seconds=30),
            schedule_to_close_timeout=give_up_after,
            retry_policy=LOCAL_RETRY,
        )
    except (ActivityError, ApplicationError) as error:
        raise step_failure(error) from error
    return result


def provider_queue(task_queue: str, psp: Psp) -> str:
    """Each provider's calls have a task queue of their own, rate-limited by the server, so a
    slow or throttled provider holds up only its own refunds: ``refunds`` -> ``refunds-paypal``.
    """
    return f"{task_queue}-{psp.value}"


async def provider_step(name: str, arg: Any, result_type: type[T], psp: Psp) -> T:
    """A provider call that moves money: a regular activity on the provider's own task queue,
    retried by the server."""
    try:
        result: T = await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            task_queue=provider_queue(workflow.info().task_queue, psp),
            # Above the SDKs' own request timeouts (Stripe 80 s), so an attempt never
            # overlaps the next.
            start_to_close_timeout=timedelta(seconds=120),
            retry_policy=PROVIDER_RETRY,
        )
    except ActivityError as error:
        raise step_failure(error) from error
    return result


async def side_step(
    name: str, arg: Any, failing_means: str, give_up_after: timedelta = timedelta(minutes=10)
) -> None:
    """A step the refund's outcome never depends on (a notice, a record for later scoring):
    retried like any local step, then given up and logged."""
    try:
        await local_step(name, arg, type(None), give_up_after=give_up_after)
    except StepFailed as failed:
        workflow.logger.warning("%s: %s", failing_means, failed)
