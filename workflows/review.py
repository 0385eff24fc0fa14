"""The review rules: who may decide, what a decision may change, and what is refused.

Deterministic state kept by the workflow. A decision that breaks a rule changes nothing: a
signal's is recorded in ``refused`` (the ``status`` query shows it), an update's is refused
at once by its validator and never reaches the history.
"""

from __future__ import annotations

from workflows.currencies import format_amount
from workflows.models import Approval, RefundStatus, RefusedDecision, ReviewView, same_person
from workflows.review_models import ApproveDecision, RejectDecision


class ReviewBook:
    def __init__(self, requested_by: str) -> None:
        self.requested_by = requested_by
        self.open = False
        self.planned_amount = 0
        self.currency = ""
        self.void = False
        self.quoted = False  # a return of order lines: its amount is the quote's
        self.approvals_required = 0
        self.approvals: list[Approval] = []
        self.rejection: RejectDecision | None = None
        self.refused: list[RefusedDecision] = []

    def begin(
        self,
        amount: int,
        currency: str,
        approvals_required: int,
        void: bool,
        quoted: bool = False,
    ) -> None:
        self.open, self.planned_amount, self.currency = True, amount, currency
        self.approvals_required, self.void, self.quoted = approvals_required, void, quoted

    @property
    def approved(self) -> bool:
        return self.approvals_required > 0 and len(self.approvals) >= self.approvals_required

    @property
    def decided(self) -> bool:
        return self.approved or self.rejection is not None

    @property
    def approved_amount(self) -> int:
        """The lowest amount any approver allowed: each of them agreed to at most that."""
        lowered = [a.amount for a in self.approvals if a.amount is not None]
        return min([self.planned_amount, *lowered])

    def approve_problem(self, decision: ApproveDecision, status: RefundStatus) -> str | None:
        if not self.open:
            return f"the refund is {status.value}, not awaiting review"
        if self.decided:
            return "the review is already decided"
        if same_person(decision.reviewer, self.requested_by):
            return f"{decision.reviewer} requested this refund, so cannot approve it"
        if any(same_person(a.reviewer, decision.reviewer) for a in self.approvals):
            return f"{decision.reviewer} has already approved this refund"
        if decision.amount is not None:
            return self._amount_problem(decision.amount)
        return None

    def _amount_problem(self, amount: int) -> str | None:
        if amount <= 0:
            return f"an approved amount must be positive, got {amount}"
        if self.void and amount != self.planned_amount:
            return "an authorisation is voided whole; approve it without an amount"
        if self.quoted and amount != self.planned_amount:
            return (
                "a return of order lines refunds its quote of "
                f"{format_amount(self.planned_amount, self.currency)} for the units it holds: "
                "approve it without an amount, or reject it and ask for fewer lines"
            )
        if amount > self.planned_amount:
            return (
                f"cannot approve {format_amount(amount, self.currency)}: more than the "
                f"{format_amount(self.planned_amount, self.currency)} requested"
            )
        return None

    def reject_problem(self, decision: RejectDecision, status: RefundStatus) -> str | None:
        if not self.open:
            return f"the refund is {status.value}, not awaiting review"
        if self.decided:
            return "the review is already decided"
        return None

    def record_approval(self, decision: ApproveDecision) -> None:
        self.approvals.append(
            Approval(reviewer=decision.reviewer, note=decision.note, amount=decision.amount)
        )

    def record_rejection(self, decision: RejectDecision) -> None:
        self.rejection = decision

    def refuse(self, reviewer: str, action: str, why: str) -> None:
        self.refused.append(RefusedDecision(reviewer=reviewer, action=action, why=why))

    def view(self) -> ReviewView:
        return ReviewView(
            approvals=list(self.approvals),
            approvals_required=self.approvals_required,
            refused_decisions=list(self.refused),
            rejected_by=self.rejection.reviewer if self.rejection else None,
        )


def format_duration(seconds: int) -> str:
    """``259200`` -> ``"72h"``, ``600`` -> ``"10m"``: durations as the settings write them."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
