"""The shop's ``order.created`` and ``order.updated`` events: the order store kept up to date.

The event's ``data`` is an ``Order``; its ``created`` (unix seconds) orders the events of one
order, so an older event delivered after a newer one changes nothing (answered 200, "stale").
The answer is 2xx only once the order is stored; an order the store refuses to change because
refunds hold its units is 409 with the reason, a malformed one 400 naming the field.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from activities.errors import DatabaseUnavailable, OrderConflict
from activities.orders import InvalidOrder, OrderBook
from starters.cli_support import describe_validation_error
from starters.http_errors import ApiError
from workflows.orders import Order

ORDER_EVENTS = frozenset({"order.created", "order.updated"})


async def store_order_event(orders: OrderBook | None, event: dict[str, Any]) -> str:
    """Store the event's order; what was done, for the answer."""
    kind = event["type"]
    if orders is None:
        raise ApiError(
            503,
            f"{kind}: this receiver has no order store (REFUNDS_DATABASE_URL is not set); "
            "nothing was stored, send the event again later",
        )
    version = _event_time(kind, event.get("created"))
    if not isinstance(event["data"], dict):
        raise ApiError(400, f"{kind}: data: must be an order (a JSON object)")
    try:
        order = Order.model_validate(event["data"])
    except ValidationError as exc:
        raise ApiError(400, f"{kind}: data.{describe_validation_error(exc)}") from exc
    try:
        outcome = await orders.save(order, "shop", version)
    except OrderConflict as exc:
        raise ApiError(409, f"{kind} {event['id']}: {exc.message}", "order_conflict") from exc
    except InvalidOrder as exc:
        raise ApiError(400, f"{kind}: data.{str(exc).partition(': ')[2]}") from exc
    except DatabaseUnavailable as exc:
        raise ApiError(503, f"{kind}: {exc.message}") from exc
    return f"order {order.order_id} {outcome}"


def _event_time(kind: str, created: object) -> datetime:
    if isinstance(created, int | float) and not isinstance(created, bool) and created >= 0:
        try:
            return datetime.fromtimestamp(created, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    raise ApiError(400, f"{kind}: created: must be the event's time in unix seconds")
