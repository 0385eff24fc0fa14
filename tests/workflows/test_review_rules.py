"""The review rules on their own: each refusal, in the words a reviewer reads."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from workflows.models import CancelRequest, RefundStatus
from workflows.review import ReviewBook, format_duration
from workflows.review_models import ApproveDecision, RejectDecision

IN_REVIEW = RefundStatus.AWAITING_REVIEW


def book(amount: int = 10_000, approvals: int = 1, void: bool = False) -> ReviewBook:
    review = ReviewBook(requested_by="sam")
    review.begin(amount, "EUR", approvals, void=void)
    return review


def test_no_decision_before_review_opens_or_after_it_closes() -> None:
    review = ReviewBook(requested_by="sam")
    decision = ApproveDecision(reviewer="rita")
    assert review.approve_problem(decision, RefundStatus.VALIDATING) == (
        "the refund is VALIDATING, not awaiting review"
    )
    review = book()
    review.open = False
    assert review.reject_problem(
        RejectDecision(reviewer="rita", reason="x"), RefundStatus.REFUNDING
    ) == ("the refund is REFUNDING, not awaiting review")


def test_the_requester_never_approves_their_own_refund() -> None:
    assert book().approve_problem(ApproveDecision(reviewer="sam"), IN_REVIEW) == (
        "sam requested this refund, so cannot approve it"
    )


def test_a_repeated_approval_changes_nothing() -> None:
    review = book(approvals=2)
    review.record_approval(ApproveDecision(reviewer="rita"))
    assert review.approve_problem(ApproveDecision(reviewer="rita"), IN_REVIEW) == (
        "rita has already approved this refund"
    )
    assert not review.approved
    review.record_approval(ApproveDecision(reviewer="tom"))
    assert review.approved


def test_lower_amounts_only_and_the_lowest_approved_wins() -> None:
    review = book(approvals=2)
    assert review.approve_problem(ApproveDecision(reviewer="a", amount=10_001), IN_REVIEW) == (
        "cannot approve 100.01 EUR: more than the 100.00 EUR requested"
    )
    assert "must be positive" in (
        review.approve_problem(ApproveDecision(reviewer="a", amount=0), IN_REVIEW) or ""
    )
    review.record_approval(ApproveDecision(reviewer="a", amount=8_000))
    review.record_approval(ApproveDecision(reviewer="b", amount=9_000))
    assert review.approved_amount == 8_000


def test_a_void_is_approved_whole() -> None:
    assert (
        book(void=True).approve_problem(ApproveDecision(reviewer="a", amount=5_000), IN_REVIEW)
        == "an authorisation is voided whole; approve it without an amount"
    )


def test_refused_decisions_are_kept_for_the_query() -> None:
    review = book()
    review.refuse("sam", "approve", "sam requested this refund, so cannot approve it")
    assert [(d.reviewer, d.action) for d in review.view().refused_decisions] == [("sam", "approve")]


def test_durations_read_as_the_settings_write_them() -> None:
    assert [format_duration(s) for s in (259_200, 14_400, 600, 45)] == ["72h", "4h", "10m", "45s"]


def test_case_and_spacing_do_not_make_another_person() -> None:
    review = book(approvals=2)
    assert review.approve_problem(ApproveDecision(reviewer="  SAM "), IN_REVIEW) == (
        "SAM requested this refund, so cannot approve it"
    )
    review.record_approval(ApproveDecision(reviewer="rita"))
    assert review.approve_problem(ApproveDecision(reviewer=" RITA"), IN_REVIEW) == (
        "RITA has already approved this refund"
    )


def test_blank_identities_are_not_identities() -> None:
    for blank in ("", "   "):
        with pytest.raises(ValidationError):
            ApproveDecision(reviewer=blank)
        with pytest.raises(ValidationError):
            CancelRequest(requested_by=blank)
    with pytest.raises(ValidationError):
        ApproveDecision(reviewer="rita", amount=True)  # type: ignore[arg-type]


def test_nothing_more_is_taken_once_the_review_is_decided() -> None:
    review = book()
    review.record_approval(ApproveDecision(reviewer="rita"))
    assert review.approve_problem(ApproveDecision(reviewer="tom", amount=1), IN_REVIEW) == (
        "the review is already decided"
    )
    assert review.reject_problem(RejectDecision(reviewer="tom", reason="x"), IN_REVIEW) == (
        "the review is already decided"
    )
