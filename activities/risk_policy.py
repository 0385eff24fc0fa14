"""The risk and review policy: from which score or amount a refund waits for a reviewer.

Read from the environment once at process start (``RiskPolicy.from_env``) and handed to the
risk activities; what it decides for a refund travels to the workflow inside the
``RiskAssessment``, so the workflow never reads configuration.

    REFUNDS_REVIEW_SCORE            score 0-100 from which a refund is reviewed (default 40)
    REFUNDS_BLOCK_SCORE             score 0-100 from which it is rejected outright (unset: never)
    REFUNDS_REVIEW_ABOVE            minor units above which every refund is reviewed (50000)
    REFUNDS_DUAL_APPROVAL_ABOVE     minor units above which two reviewers approve (200000)
    REFUNDS_REVIEW_ESCALATE_AFTER   duration until a waiting review is escalated (4h)
    REFUNDS_REVIEW_EXPIRE_AFTER     duration until it expires (72h)

Thresholds on amounts are strict ("above 50000" means more than 50000); thresholds on scores
are reached ("from 40" means 40 or more).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from activities.durations import parse_duration


class RiskPolicyError(ValueError):
    """A policy setting is invalid; the message names the variable.

    A ``ValueError`` rather than the workers' ``SettingsError``: activities do not import
    workers, so the settings code wraps this one.
    """


@dataclass(frozen=True)
class RiskPolicy:
    review_score: int = 40
    block_score: int | None = None
    review_above: int = 50_000
    dual_approval_above: int = 200_000
    escalate_after_s: int = 4 * 3600
    expire_after_s: int = 72 * 3600

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RiskPolicy:
        env = os.environ if env is None else env

        def text(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def score(name: str) -> int | None:
            value = text(name)
            if value is None:
                return None
            number = _integer(name, value, "a score from 0 to 100")
            if not 0 <= number <= 100:
                raise RiskPolicyError(f"{name} must be a score from 0 to 100, got {value!r}")
            return number

        def amount(name: str, default: int) -> int:
            value = text(name)
            if value is None:
                return default
            number = _integer(name, value, "an amount in minor units")
            if number < 0:
                raise RiskPolicyError(f"{name} must not be negative, got {value!r}")
            return number

        def duration(name: str, default: int) -> int:
            value = text(name)
            if value is None:
                return default
            try:
                seconds = parse_duration(value)
            except ValueError as exc:
                raise RiskPolicyError(f"{name}: {exc}") from exc
            if seconds <= 0:
                raise RiskPolicyError(f"{name} must be longer than zero, got {value!r}")
            return seconds

        review_score = score("REFUNDS_REVIEW_SCORE")
        policy = cls(
            review_score=cls.review_score if review_score is None else review_score,
            block_score=score("REFUNDS_BLOCK_SCORE"),
            review_above=amount("REFUNDS_REVIEW_ABOVE", cls.review_above),
            dual_approval_above=amount("REFUNDS_DUAL_APPROVAL_ABOVE", cls.dual_approval_above),
            escalate_after_s=duration("REFUNDS_REVIEW_ESCALATE_AFTER", cls.escalate_after_s),
            expire_after_s=duration("REFUNDS_REVIEW_EXPIRE_AFTER", cls.expire_after_s),
        )
        policy.check()
        return policy

    def check(self) -> None:
        """Settings that are each valid but make no sense together."""
        if self.block_score is not None and self.block_score < self.review_score:
            raise RiskPolicyError(
                f"REFUNDS_BLOCK_SCORE ({self.block_score}) must not be below "
                f"REFUNDS_REVIEW_SCORE ({self.review_score})"
            )
        if self.escalate_after_s >= self.expire_after_s:
            raise RiskPolicyError(
                f"REFUNDS_REVIEW_ESCALATE_AFTER ({self.escalate_after_s}s) must be shorter than "
                f"REFUNDS_REVIEW_EXPIRE_AFTER ({self.expire_after_s}s)"
            )


def _integer(name: str, value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise RiskPolicyError(f"{name} must be {what} (an integer), got {value!r}") from None
