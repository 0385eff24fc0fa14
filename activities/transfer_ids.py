"""The ledger ids of a refund's transfers: derived from the refund, never random, so a retried
activity finds its own earlier transfer instead of making another."""

from __future__ import annotations


def reserve_id(request_id: str) -> str:
    return f"refund-{request_id}:reserve"


def post_id(request_id: str) -> str:
    return f"refund-{request_id}:post"


def void_id(request_id: str) -> str:
    return f"refund-{request_id}:void"


def value_id(request_id: str) -> str:
    """The posted refund's value in the settlement currency, at the capture's rate."""
    return f"refund-{request_id}:value"


def fx_id(request_id: str) -> str:
    """The difference between its value at refund and at capture: the FX gain or loss."""
    return f"refund-{request_id}:fx"


def back_id(transfer_id: str) -> str:
    """A transfer reversed after a late failure."""
    return f"{transfer_id}-back"
