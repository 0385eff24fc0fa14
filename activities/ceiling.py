"""The empty activity ``CeilingWorkflow`` runs: what an activity costs when it does nothing."""

from __future__ import annotations

from temporalio import activity


@activity.defn(name="ceiling_activity")
async def ceiling_activity() -> None:
    """Do nothing; the refund activities are async too, so both take the same road."""
