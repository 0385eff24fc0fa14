"""Orders, authorizations and captures: how a shop gets paid at PayPal, without a buyer.

An order with a card `payment_source` is APPROVED at once (no buyer redirect), then captured
(`intent: CAPTURE`) or authorized (`intent: AUTHORIZE`) and later captured or voided, with
PayPal's refusals for each wrong step. Every change is announced through `emit` (PayPal's
webhook events) when one is set.
"""

from __future__ import annotations

import re
from typing import Protocol

from deploy.sandboxes.paypal_errors import PayPalApiError, invalid, not_found, refused
from deploy.sandboxes.paypal_objects import (
    CARD_BEHAVIOURS,
    CURRENCIES,
    REFUND_TIME_LIMIT_DAYS,
    Authorization,
    Capture,
    JsonObject,
    Order,
    SandboxState,
    iso,
    money,
    new_id,
    now,
    parse_value,
)
from deploy.sandboxes.paypal_render import capture_api, order_api, refunded

_CARD_NUMBER = re.compile(r"^[0-9]{12,19}$")
# PayPal's patterns: custom_id is restricted to these characters, invoice_id is free text.
_REFERENCES = {
    "custom_id": re.compile(r"^[A-Za-z0-9-_.,]{1,127}$"),
    "invoice_id": re.compile(r"^.{1,127}$", re.DOTALL),
}


class Emit(Protocol):
    """Announce a change: PayPal's event type, the resource's type and JSON, a summary."""

    def __call__(
        self, event_type: str, resource_type: str, resource: JsonObject, summary: str
    ) -> None: ...


def parse_amount(raw: object, currency: str | None, where: str) -> tuple[int, str]:
    """`{"currency_code", "value"}` as (integer in PayPal precision, currency)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("currency_code"), str):
        raise invalid("MISSING_REQUIRED_PARAMETER", "A required field is missing.", where)
    code = raw["currency_code"]
    if code not in CURRENCIES:
        raise refused("CURRENCY_NOT_SUPPORTED", "Currency code is not currently supported.")
    if currency is not None and code != currency:
        raise refused(
            "REFUND_CAPTURE_CURRENCY_MISMATCH" if "refund" in where else "CURRENCY_MISMATCH",
            "Currency of the request must match the currency of the payment.",
        )
    try:
        amount = parse_value(raw.get("value"), code)
    except ValueError as problem:
        issue = str(problem)
        if issue == "INVALID_PARAMETER_SYNTAX":
            raise invalid(
                issue,
                "The value of a field does not conform to the expected format.",
                f"{where}/value",
            ) from None
        raise refused(issue, f"The value of {where}/value has too many decimals.") from None
    if amount <= 0:
        raise refused("CANNOT_BE_ZERO_OR_NEGATIVE", "Must be greater than zero.")
    return amount, code


def reference(body: JsonObject, key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not _REFERENCES[key].match(value):
        raise invalid("INVALID_PARAMETER_SYNTAX", f"{key} is not a valid reference.", f"/{key}")
    return value


class Payments:
    """The Orders v2 and Payments v2 (authorization, capture) endpoints over the state."""

    def __init__(self, state: SandboxState, emit: Emit | None = None) -> None:
        self.state, self.emit, self.base = state, emit, ""

    def _announce(self, event_type: str, kind: str, resource: JsonObject, summary: str) -> None:
        if self.emit is not None:
            self.emit(event_type, kind, resource, summary)

    def order(self, order_id: str) -> Order:
        found = self.state.orders.get(order_id)
        if found is None:
            raise not_found("checkout/orders")
        return found

    def authorization(self, authorization_id: str) -> Authorization:
        found = self.state.authorizations.get(authorization_id)
        if found is None:
            raise not_found()
        return found

    def capture(self, capture_id: str) -> Capture:
        found = self.state.captures.get(capture_id)
        if found is None:
            raise not_found()
        return found

    def refunded(self, capture: Capture) -> int:
        return refunded(self.state, capture)

    def capture_api(self, capture: Capture) -> JsonObject:
        return capture_api(self.state, self.base, capture)

    def order_api(self, order: Order) -> JsonObject:
        return order_api(self.state, self.base, order)

    def create_order(self, body: JsonObject) -> Order:
        intent = body.get("intent")
        if intent not in ("CAPTURE", "AUTHORIZE"):
            raise invalid("INVALID_PARAMETER_VALUE", "intent is CAPTURE or AUTHORIZE.", "/intent")
        units = body.get("purchase_units")
        if not isinstance(units, list) or len(units) != 1 or not isinstance(units[0], dict):
            raise invalid(
                "MISSING_REQUIRED_PARAMETER", "One purchase unit is required.", "/purchase_units"
            )
        unit = units[0]
        amount, currency = parse_amount(
            unit.get("amount"), None, "/purchase_units/@reference_id=='default'/amount"
        )
        card = None
        source = body.get("payment_source")
        if source is not None:
            raw_card = source.get("card") if isinstance(source, dict) else None
            number = raw_card.get("number") if isinstance(raw_card, dict) else None
            if not isinstance(number, str) or not _CARD_NUMBER.match(number):
                raise refused(
                    "CARD_NUMBER_INVALID", "The card number is invalid.", "checkout/orders"
                )
            card = number
        order = Order(
            id=new_id(),
            intent=str(intent),
            status="APPROVED" if card else "CREATED",
            currency=currency,
            amount=amount,
            created=now(),
            card=card,
            custom_id=reference(unit, "custom_id"),
            invoice_id=reference(unit, "invoice_id"),
        )
        self.state.orders[order.id] = order
        return order

    def _approved(self, order_id: str, intent: str) -> Order:
        order = self.order(order_id)
        if order.status == "COMPLETED":
            issue = "ORDER_ALREADY_CAPTURED" if intent == "CAPTURE" else "ORDER_ALREADY_AUTHORIZED"
            raise refused(issue, f"Order already {intent.lower()}d.", "checkout/orders")
        if order.status != "APPROVED":
            raise refused(
                "ORDER_NOT_APPROVED",
                "Payer has not yet approved the Order for payment.",
                "checkout/orders",
            )
        if order.intent != intent:
            raise refused(
                "ACTION_DOES_NOT_MATCH_INTENT",
                f"Order was created with an intent to '{order.intent}'.",
                "checkout/orders",
            )
        return order

    def _behaviour(self, order: Order) -> str:
        return CARD_BEHAVIOURS.get(order.card or "", "ok")

    def capture_order(self, order_id: str) -> Order:
        order = self._approved(order_id, "CAPTURE")
        self._new_capture(order, order.amount, None)
        order.status = "COMPLETED"
        return order

    def authorize_order(self, order_id: str) -> Order:
        order = self._approved(order_id, "AUTHORIZE")
        moment = now()
        auth = Authorization(
            id=new_id(),
            order_id=order.id,
            status="CREATED",
            currency=order.currency,
            amount=order.amount,
            created=moment,
            updated=moment,
            behaviour=self._behaviour(order),
            custom_id=order.custom_id,
            invoice_id=order.invoice_id,
        )
        self.state.authorizations[auth.id] = auth
        order.authorization_id, order.status = auth.id, "COMPLETED"
        self._announce(
            "PAYMENT.AUTHORIZATION.CREATED",
            "authorization",
            auth.to_api(self.base),
            f"Payment authorized for {auth.amount} {auth.currency}",
        )
        return order

    def _new_capture(self, order: Order, amount: int, auth: Authorization | None) -> Capture:
        moment = now()
        behaviour = auth.behaviour if auth else self._behaviour(order)
        created = (
            moment - (REFUND_TIME_LIMIT_DAYS + 1) * 86400 if behaviour == "expired" else moment
        )
        capture = Capture(
            id=new_id(),
            order_id=order.id,
            currency=order.currency,
            amount=amount,
            created=created,
            updated=created,
            behaviour=behaviour,
            authorization_id=auth.id if auth else None,
            custom_id=order.custom_id,
            invoice_id=order.invoice_id,
        )
        self.state.captures[capture.id] = capture
        (auth.capture_ids if auth else order.capture_ids).append(capture.id)
        self._announce(
            "PAYMENT.CAPTURE.COMPLETED",
            "capture",
            self.capture_api(capture),
            f"Payment completed for {capture.amount} {capture.currency}",
        )
        return capture

    def capture_authorization(self, authorization_id: str, body: JsonObject) -> Capture:
        auth = self.authorization(authorization_id)
        if auth.status == "VOIDED":
            raise refused(
                "AUTHORIZATION_VOIDED", "A voided authorization cannot be captured or reauthorized."
            )
        if auth.status != "CREATED":
            raise refused(
                "AUTHORIZATION_ALREADY_CAPTURED",
                "Authorization has been previously captured and hence cannot be captured again.",
            )
        amount = auth.amount
        if body.get("amount") is not None:
            amount, _ = parse_amount(body["amount"], auth.currency, "/amount")
        if amount > auth.amount:
            raise refused("MAX_CAPTURE_AMOUNT_EXCEEDED", "Capture amount exceeds allowable limit.")
        capture = self._new_capture(self.order(auth.order_id), amount, auth)
        auth.status, auth.updated = "CAPTURED", now()
        return capture

    def void_authorization(self, authorization_id: str) -> Authorization:
        auth = self.authorization(authorization_id)
        if auth.status == "VOIDED":
            raise refused(
                "PREVIOUSLY_VOIDED",
                "Authorization has been previously voided and hence cannot be voided again.",
            )
        if auth.status != "CREATED":
            raise refused(
                "PREVIOUSLY_CAPTURED",
                "Authorization has been previously captured and hence cannot be voided.",
            )
        auth.status, auth.updated = "VOIDED", now()
        self._announce(
            "PAYMENT.AUTHORIZATION.VOIDED",
            "authorization",
            auth.to_api(self.base),
            f"A payment authorization was voided for {auth.amount} {auth.currency}",
        )
        return auth

    def dispute(self, capture_id: str, reason: str) -> JsonObject:
        """The buyer disputes a capture (`CUSTOMER.DISPUTE.CREATED`); answers the dispute."""
        capture = self.capture(capture_id)
        capture.disputed = True
        moment = now()
        dispute: JsonObject = {
            "dispute_id": "PP-D-" + new_id()[:10],
            "create_time": iso(moment),
            "update_time": iso(moment),
            "disputed_transactions": [
                {"seller_transaction_id": capture.id, "seller_protection_eligible": False}
            ],
            "reason": reason,
            "status": "OPEN",
            "dispute_amount": money(capture.amount, capture.currency),
            "dispute_life_cycle_stage": "INQUIRY",
            "dispute_channel": "INTERNAL",
            "links": [],
        }
        self._announce(
            "CUSTOMER.DISPUTE.CREATED",
            "dispute",
            dispute,
            f"A new dispute opened with Case # {dispute['dispute_id']}",
        )
        return dispute


__all__ = ["Emit", "PayPalApiError", "Payments", "parse_amount", "reference"]
