"""The refund workflow's activities: every read and write it does to the world.

Ledger transfer ids derive from the refund (``refund-{request_id}:reserve`` / ``:post`` /
``:void``), so a retried activity finds its own earlier transfer instead of making another.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.disputes import DisputeRegistry
from activities.errors import (
    PaymentNotRefundable,
    ProviderNotSupported,
    RefundError,
    as_application_errors,
    to_application_error,
)
from activities.fx import FxBook
from activities.ledger import Connection, Ledger
from activities.provider_metrics import provider_call
from activities.providers import PaymentProvider
from activities.reservations import Clock, ReservationRules, UnitClaims
from activities.transfer_ids import post_id, reserve_id, void_id
from workflows.models import (
    CompensateRefund,
    FetchPayment,
    FetchRefund,
    LateFailureResult,
    LateSettlement,
    LateSettlementResult,
    PaymentSnapshot,
    ProviderRate,
    Psp,
    PspRefund,
    PspRefundStatus,
    RefundPlan,
    ReserveRefund,
    ReverseAtProvider,
    SettleRefund,
)
from workflows.refund_policy import RefundPolicy


def ledger_accounts(psp: Psp, plan: RefundPlan) -> tuple[str, str]:
    """(debit, credit): a refund pays out of the provider balance; a void releases a hold."""
    if plan.operation == "void":
        return "merchant:voided_authorizations", f"psp:{psp.value}:authorizations"
    return "merchant:refunds", f"psp:{psp.value}:clearing"


class RefundActivities:
    def __init__(
        self,
        providers: Mapping[Psp, PaymentProvider],
        ledger: Ledger,
        disputes: DisputeRegistry | None = None,
        policy: RefundPolicy | None = None,
        claims: UnitClaims | None = None,
        now: Clock | None = None,
        fx: FxBook | None = None,
    ) -> None:
        self._providers = providers
        self._ledger = ledger
        self._disputes = disputes
        self._fx = fx
        self._rules = ReservationRules(ledger, policy or RefundPolicy(), claims, now, fx)

    def _provider(self, psp: Psp) -> PaymentProvider:
        provider = self._providers.get(psp)
        if provider is None:
            raise to_application_error(
                ProviderNotSupported(
                    f"{psp.value} refunds are not available: this worker has no {psp.value} "
                    "adapter configured"
                )
            )
        return provider

    @activity.defn(name="fetch_payment")
    async def fetch_payment(self, order: FetchPayment) -> PaymentSnapshot:
        with as_application_errors():
            async with provider_call(order.psp, "fetch_payment"):
                return await self._provider(order.psp).fetch_payment(order.payment_id)

    @activity.defn(name="reserve_refund")
    async def reserve_refund(self, order: ReserveRefund) -> None:
        payment, plan = order.payment, order.plan
        debit, credit = ledger_accounts(payment.psp, plan)
        limit = payment.amount_authorized if plan.operation == "void" else payment.amount_captured
        checked = self._rules.within(order)

        async def judged(conn: Connection) -> None:
            # Inside the reservation, after it looked for itself: a retry of a reservation
            # that committed is returned as it is and never judged again.
            dispute = (
                await self._disputes.dispute_of(payment.payment_key, conn)
                if self._disputes
                else None
            )
            if dispute:
                raise PaymentNotRefundable(
                    f"payment {payment.payment_id} is disputed ({dispute}): the dispute "
                    "decides its money, a refund would pay the customer twice"
                )
            self._rules.refusal(order)
            await checked(conn)

        with as_application_errors():
            await self._ledger.reserve(
                transfer_id=reserve_id(order.request_id),
                refund_id=order.request_id,
                payment_key=payment.payment_key,
                captured=limit,
                currency=plan.currency,
                amount=plan.amount,
                debit_account=debit,
                credit_account=credit,
                within=judged,
            )

    @activity.defn(name="reverse_at_provider")
    async def reverse_at_provider(self, order: ReverseAtProvider) -> PspRefund:
        """Void or refund at the provider; when the money has moved, post the reservation.

        Posting in the same activity means a crash between the two is healed by the retry:
        the provider replays its first answer for our key, and the post is idempotent.
        """
        provider = self._provider(order.payment.psp)
        with as_application_errors():
            outcome = await self._reverse(provider, order)
        if outcome.status is PspRefundStatus.SUCCEEDED:
            try:
                await self._post(order.request_id, outcome.amount, outcome.settlement_rate)
            except RefundError as error:
                # The money has moved: this must never end as a refusal that voids the
                # reservation. Retry (the provider replays its answer) until the books agree.
                raise ApplicationError(
                    f"refunded at the provider but not yet posted: {error.message}",
                    type="LedgerPostPending",
                ) from error
        return outcome

    async def _reverse(self, provider: PaymentProvider, order: ReverseAtProvider) -> PspRefund:
        psp = order.payment.psp
        if order.plan.operation == "void":
            async with provider_call(psp, "void") as call:
                voided = await provider.void(order.payment, order.idempotency_key, order.request_id)
                call.answered(voided.status.value)
                return voided
        if activity.info().attempt > 1:
            # A retry may come after the provider forgot our key: look before refunding again.
            async with provider_call(psp, "find_refund"):
                made = await provider.find_refund(order.payment, order.request_id)
            if made is not None:
                return made
        async with provider_call(psp, "refund") as call:
            refunded = await provider.refund(
                order.payment, order.plan, order.reason, order.idempotency_key, order.request_id
            )
            call.answered(refunded.status.value)
            return refunded

    @activity.defn(name="fetch_refund")
    async def fetch_refund(self, order: FetchRefund) -> PspRefund:
        with as_application_errors():
            async with provider_call(order.psp, "fetch_refund") as call:
                told = await self._provider(order.psp).fetch_refund(order.psp_refund_id)
                call.answered(told.status.value)
                return told

    @activity.defn(name="post_refund")
    async def post_refund(self, settle: SettleRefund) -> None:
        with as_application_errors():
            await self._post(settle.request_id, settle.amount, settle.settlement_rate)

    @activity.defn(name="void_reservation")
    async def void_reservation(self, settle: SettleRefund) -> None:
        """Release the reservation; nothing to do when none was made (a reserve that failed)."""
        with as_application_errors():
            made = await self._ledger.transfers_for_refund(settle.request_id)
            if not any(t.id == reserve_id(settle.request_id) for t in made):
                return
            await self._ledger.void(
                transfer_id=void_id(settle.request_id), pending_id=reserve_id(settle.request_id)
            )
            await self._rules.release(settle.request_id)

    @activity.defn(name="settle_kept_reservation")
    async def settle_kept_reservation(self, late: LateSettlement) -> LateSettlementResult:
        """Post (succeeded) or release (failed) a reservation a refund kept when it ended
        without the provider's outcome; nothing when none is kept (posted or voided already).
        """
        request_id = late.request_id
        with as_application_errors():
            made = {t.id for t in await self._ledger.transfers_for_refund(request_id)}
            kept = reserve_id(request_id) in made and not (
                {post_id(request_id), void_id(request_id)} & made
            )
            if not kept:
                return LateSettlementResult(request_id=request_id, action="nothing kept")
            if late.status is PspRefundStatus.SUCCEEDED:
                await self._post(request_id, late.amount, late.settlement_rate)
                return LateSettlementResult(
                    request_id=request_id, action="posted", transfer_id=post_id(request_id)
                )
            await self._ledger.void(
                transfer_id=void_id(request_id), pending_id=reserve_id(request_id)
            )
            await self._rules.release(request_id)
        return LateSettlementResult(
            request_id=request_id, action="released", transfer_id=void_id(request_id)
        )

    @activity.defn(name="compensate_refund")
    async def compensate_refund(self, failure: CompensateRefund) -> LateFailureResult:
        """Book back a posted refund the provider failed later: its accounts, reversed."""
        with as_application_errors():
            made = await self._ledger.transfers_for_refund(failure.request_id)
            posted = next((t for t in made if t.id == post_id(failure.request_id)), None)
            if posted is None:  # never posted: nothing left in the books to undo
                return LateFailureResult(
                    request_id=failure.request_id,
                    compensation_transfer_id=None,
                    amount=failure.amount,
                    currency=failure.currency,
                )
            if self._fx is not None:
                await self._fx.book_back(failure.request_id)
            transfer = await self._ledger.transfer(
                transfer_id=f"refund-{failure.request_id}:late-failure",
                debit_account=posted.credit_account,
                credit_account=posted.debit_account,
                amount=min(failure.amount, posted.amount),
                currency=posted.currency,
                payment_key=posted.payment_key,
                refund_id=failure.request_id,
            )
        return LateFailureResult(
            request_id=failure.request_id,
            compensation_transfer_id=transfer.id,
            amount=transfer.amount,
            currency=transfer.currency,
        )

    async def _post(self, request_id: str, amount: int | None, rate: ProviderRate | None) -> None:
        """Post the reservation; a foreign-currency refund also gets its settlement value and
        FX difference booked (idempotent, so a retry after a crash between the two heals)."""
        posted = await self._ledger.post(
            transfer_id=post_id(request_id), pending_id=reserve_id(request_id), amount=amount
        )
        if self._fx is not None and posted.payment_key:
            psp = posted.payment_key.split(":", 1)[0]
            try:
                await self._fx.book_refund(request_id, psp, posted.amount, rate)
            except Exception as error:
                if isinstance(error, RefundError) and error.retryable:
                    raise  # the database is away: the retry books it
                # The money moved and the refund is posted: a valuation that cannot be booked
                # must never hold the refund up. `refunds ledger verify` names it.
                activity.logger.error(
                    "refund %s is posted but its FX value was not booked: %s", request_id, error
                )

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.fetch_payment,
            self.reserve_refund,
            self.reverse_at_provider,
            self.fetch_refund,
            self.post_refund,
            self.void_reservation,
            self.compensate_refund,
            self.settle_kept_reservation,
        ]
