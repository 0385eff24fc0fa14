"""A small commerce platform's order source, loaded by REFUNDS_ORDER_SOURCE in the tests."""

from __future__ import annotations

from workflows.orders import Order, OrderLine

ASKED: list[str] = []


class PlatformOrders:
    """Knows every order whose id starts with ``plat-``: one line of two mugs."""

    async def fetch_order(self, order_id: str) -> Order | None:
        ASKED.append(order_id)
        if not order_id.startswith("plat-"):
            return None
        return Order(
            order_id=order_id,
            psp="adyen",
            payment_id=f"PSP-{order_id}",
            currency="eur",
            lines=[OrderLine(line_id="1", sku="MUG", quantity=2, unit_price=1250)],
        )


def platform() -> PlatformOrders:
    return PlatformOrders()


def needs_a_key(api_key: str) -> PlatformOrders:
    return PlatformOrders()


class Blocking:
    def fetch_order(self, order_id: str) -> Order | None:  # not async
        return None


def blocking() -> Blocking:
    return Blocking()


def broken() -> PlatformOrders:
    raise RuntimeError("PLATFORM_TOKEN is not set")


NOT_A_FACTORY = 42
