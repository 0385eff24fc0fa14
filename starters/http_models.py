"""What the HTTP API reads and answers, besides the contract's own models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from starters.review_queue import QueueEntry
from workflows.models import RefundRequest


class NewRefund(RefundRequest):
    """A `RefundRequest`; `request_id` may come from the `Idempotency-Key` header instead."""

    request_id: str | None = Field(  # type: ignore[assignment]
        default=None, min_length=1, max_length=200, description="or the Idempotency-Key header"
    )
    requested_by: str | None = Field(  # type: ignore[assignment]
        default=None, description="always replaced by the API token's identity"
    )


class CreatedRefund(BaseModel):
    id: str = Field(description="the request id")
    workflow_id: str
    status: str = Field(description="RefundStatus when the answer was sent")


class ApproveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = ""
    amount: int | None = Field(
        default=None, strict=True, description="approve a lower amount (minor units)"
    )


class RejectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1)


class CancelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReviewList(BaseModel):
    reviews: list[QueueEntry]
