"""``POST /v1/refunds/quote``: what a refund of some of an order's lines would return.

The same calculation as ``refunds quote`` and the refund workflow, over the order store and the
units live refunds hold, under the service's refund policy. Nothing is claimed or moved.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from activities.errors import DatabaseUnavailable, OrderNotFound, QuoteRefused
from activities.orders import OrderBook
from starters.http_auth import Caller, allowed
from starters.http_errors import ApiError, ErrorBody
from workflows.orders import QuoteInput, RefundQuote
from workflows.refund_policy import RefundPolicy

QUOTE_ANSWERS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorBody, "description": "no such order in the order store (or its source)"},
    422: {
        "model": ErrorBody,
        "description": "the lines cannot be refunded (unknown line, more than is left, a "
        "reason the policy does not know), or the body is invalid",
    },
}


def quote_router(orders: OrderBook, policy: RefundPolicy) -> APIRouter:
    router = APIRouter(tags=["quotes"])

    @router.post(
        "/v1/refunds/quote",
        response_model=RefundQuote,
        responses=QUOTE_ANSWERS,
        summary="Quote a refund of order lines: each line's price and tax, shipping, "
        "restocking fee, the total",
    )
    async def quote_refund(
        body: QuoteInput, _: Annotated[Caller, Depends(allowed("create"))]
    ) -> RefundQuote:
        try:
            return await orders.quote(body, policy)
        except OrderNotFound as exc:
            raise ApiError(404, exc.message, "order_not_found") from exc
        except QuoteRefused as exc:
            raise ApiError(422, exc.message, "quote_refused") from exc
        except DatabaseUnavailable as exc:
            raise ApiError(503, exc.message) from exc

    return router
