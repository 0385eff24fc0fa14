"""Notices the refund workflow sends about itself; the outbound signed events build on this."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from temporalio import activity

from workflows.currencies import format_amount
from workflows.review_models import EscalateReview

log = logging.getLogger("refunds.notifications")


class ReviewNotifications:
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

    def all(self) -> list[Callable[..., Any]]:
        return [self.escalate_review]
