"""Notices the refund workflow sends about itself: log lines and signed events."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from temporalio import activity

from activities.errors import RefundError, to_application_error
from activities.events import EventPublisher
from workflows.currencies import format_amount
from workflows.models import RefundOutcomeEvent, SettlementOverdue
from workflows.review_models import EscalateReview

log = logging.getLogger("refunds.notifications")


class ReviewNotifications:
    def __init__(self, publisher: EventPublisher | None = None) -> None:
        self._publisher = publisher or EventPublisher((), None)

    @activity.defn(name="escalate_review")
    async def escalate_review(self, notice: EscalateReview) -> None:
        """A refund has waited past its escalation time: say so where someone will see it."""
        log.warning(
            "review overdue: refund %s (%s, risk %d, customer %s) has waited %.1fh for review",
            notice.request_id,
            format_amount(notice.amount, notice.currency),
            notice.score,
            notice.customer_id,
            notice.waiting_s / 3600,
        )
        data = notice.model_dump(mode="json") | {"escalated": True}
        try:
            await self._publisher.publish(
                f"evt_{notice.request_id}_review_escalated", "review.required", data
            )
        except RefundError as error:
            raise to_application_error(error) from error

    @activity.defn(name="escalate_settlement")
    async def escalate_settlement(self, notice: SettlementOverdue) -> None:
        """The provider took the refund but has not said how it ended: someone must look at
        it in the provider's dashboard (money may or may not have moved)."""
        log.warning(
            "settlement overdue: refund %s (%s at %s, %s) has had no outcome for %.1fh",
            notice.request_id,
            format_amount(notice.amount, notice.currency),
            notice.psp.value,
            notice.psp_refund_id,
            notice.waiting_s / 3600,
        )
        try:
            await self._publisher.publish(
                f"evt_{notice.request_id}_settlement_overdue",
                "refund.settlement_overdue",
                notice.model_dump(mode="json"),
            )
        except RefundError as error:
            raise to_application_error(error) from error

    @activity.defn(name="publish_outcome")
    async def publish_outcome(self, outcome: RefundOutcomeEvent) -> None:
        """Tell subscribers how a refund ended; a stable event id lets them drop repeats."""
        try:
            await self._publisher.publish(
                f"evt_{outcome.request_id}_{outcome.status.value.lower()}",
                outcome.event_type,
                outcome.model_dump(mode="json"),
            )
        except RefundError as error:
            raise to_application_error(error) from error

    def all(self) -> list[Callable[..., Any]]:
        return [self.escalate_review, self.escalate_settlement, self.publish_outcome]
