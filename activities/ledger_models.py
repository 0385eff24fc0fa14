"""What the ledger answers: transfers, a payment's refund limit, account balances."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TransferKind = Literal["pending", "post", "void", "single"]


@dataclass(frozen=True)
class Transfer:
    id: str
    kind: TransferKind
    debit_account: str
    credit_account: str
    amount: int
    currency: str
    payment_key: str | None = None
    pending_id: str | None = None
    refund_id: str | None = None

    def __post_init__(self) -> None:
        if self.amount <= 0:
            raise ValueError(f"an amount is a positive integer in minor units, got {self.amount}")
        if self.debit_account == self.credit_account:
            raise ValueError(f"transfer {self.id} debits and credits the same account")


@dataclass(frozen=True)
class PaymentPosition:
    payment_key: str
    currency: str
    captured: int
    reserved: int
    refunded: int

    @property
    def available(self) -> int:
        """What may still be reserved for a refund."""
        return self.captured - self.reserved - self.refunded


@dataclass(frozen=True)
class AccountBalance:
    account: str
    currency: str
    balance: int  # debits minus credits, in minor units
