"""What a reservation checks before it holds money: the refund policy, and the order units a
return claims and the payment's value at capture (a foreign currency), in the same transaction
as the ledger's pending transfer.

Every check runs inside the reservation's transaction, after the ledger looked for the
reservation itself (a retry of one that committed is returned as it is, never judged again),
with the payment's ledger row locked, so two refunds of one payment can neither both be the
last one allowed nor both take the same unit. A refusal leaves nothing reserved, claimed or valued.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from activities.errors import PolicyRefused
from activities.fx import FxBook
from activities.ledger import Connection, Ledger, Within
from workflows.models import ReserveRefund
from workflows.orders import TakenUnits
from workflows.refund_policy import (
    RefundPolicy,
    count_refusal,
    reason_refusal,
    window_refusal,
)

Clock = Callable[[], datetime]  # the refund window is measured on it


class UnitClaims(Protocol):
    """The order store's side of a return: which refund holds which units of which line."""

    async def claim(
        self, conn: Connection, *, order_id: str, refund_id: str, units: TakenUnits
    ) -> None: ...

    async def release(self, refund_id: str) -> None: ...


class ReservationRules:
    def __init__(
        self,
        ledger: Ledger,
        policy: RefundPolicy,
        claims: UnitClaims | None,
        now: Clock | None = None,
        fx: FxBook | None = None,
    ) -> None:
        self._fx = fx
        self._ledger = ledger
        self._policy = policy
        self._claims = claims
        self._now = now or (lambda: datetime.now(UTC))

    def refusal(self, order: ReserveRefund) -> None:
        """Refuse what the policy never allows: a reason it does not accept, a payment
        captured before the refund window."""
        payment = order.payment
        why = reason_refusal(self._policy, order.reason)
        if why is None and order.plan.operation == "refund":
            captured = payment.captured_at or payment.created
            why = window_refusal(self._policy, captured, self._now(), payment.payment_id)
        if why:
            raise PolicyRefused(why)

    def within(self, order: ReserveRefund) -> Within:
        """The checks and claims that run inside the reservation's transaction."""

        async def check(conn: Connection) -> None:
            if order.plan.operation == "refund":
                earlier = await self._ledger.live_refunds(
                    conn, order.payment.payment_key, besides=order.request_id
                )
                why = count_refusal(self._policy, earlier, order.payment.payment_id)
                if why:
                    raise PolicyRefused(why)
            if order.units:
                if self._claims is None or order.order_id is None:
                    raise PolicyRefused(
                        f"refund {order.request_id} returns order lines, but this worker has "
                        "no order store to claim them in"
                    )
                await self._claims.claim(
                    conn, order_id=order.order_id, refund_id=order.request_id, units=order.units
                )
            if self._fx is not None:
                await self._fx.value_on(conn, order.request_id, order.payment)

        return check

    async def release(self, refund_id: str) -> None:
        """Give back the units a refund that moved no money had claimed."""
        if self._claims is not None:
            await self._claims.release(refund_id)
