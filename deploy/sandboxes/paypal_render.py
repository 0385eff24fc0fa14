"""How the sandbox writes captures and orders, as PayPal's Payments and Orders v2 APIs do.

A capture's status follows its refunds (COMPLETED, PARTIALLY_REFUNDED, REFUNDED); an order lists
every authorization, capture and refund made for it under `purchase_units[0].payments`, which
is where a client finds the refunds of a capture (Payments v2 has no refund search).
"""

from __future__ import annotations

from deploy.sandboxes.paypal_objects import (
    Capture,
    JsonObject,
    Order,
    SandboxState,
    iso,
    link,
    money,
)


def refunded(state: SandboxState, capture: Capture) -> int:
    """Money gone back or on its way (COMPLETED and PENDING refunds)."""
    refunds = [state.refunds[r] for r in capture.refund_ids]
    return sum(r.amount for r in refunds if r.status in ("COMPLETED", "PENDING"))


def capture_api(state: SandboxState, base: str, capture: Capture) -> JsonObject:
    total = refunded(state, capture)
    status = (
        "REFUNDED" if total >= capture.amount else "PARTIALLY_REFUNDED" if total else "COMPLETED"
    )
    path = f"/v2/payments/captures/{capture.id}"
    links = [link(base, path, "self")]
    if status != "REFUNDED":
        links.append(link(base, path + "/refund", "refund", "POST"))
    if capture.authorization_id:
        auth = f"/v2/payments/authorizations/{capture.authorization_id}"
        links.append(link(base, auth, "up"))
    else:
        links.append(link(base, f"/v2/checkout/orders/{capture.order_id}", "up"))
    api: JsonObject = {
        "id": capture.id,
        "status": status,
        "amount": money(capture.amount, capture.currency),
        "final_capture": True,
        "seller_protection": {"status": "NOT_ELIGIBLE"},
        "seller_receivable_breakdown": {
            "gross_amount": money(capture.amount, capture.currency),
            "paypal_fee": money(0, capture.currency),
            "net_amount": money(capture.amount, capture.currency),
        },
        "supplementary_data": {"related_ids": {"order_id": capture.order_id}},
        "create_time": iso(capture.created),
        "update_time": iso(capture.updated),
        "links": links,
    }
    if capture.authorization_id:
        api["supplementary_data"]["related_ids"]["authorization_id"] = capture.authorization_id
    for key in ("custom_id", "invoice_id"):
        if getattr(capture, key):
            api[key] = getattr(capture, key)
    return api


def order_api(state: SandboxState, base: str, order: Order) -> JsonObject:
    captures = [state.captures[c] for c in order.capture_ids]
    payments: JsonObject = {}
    if order.authorization_id:
        auth = state.authorizations[order.authorization_id]
        payments["authorizations"] = [auth.to_api(base)]
        captures = [state.captures[c] for c in auth.capture_ids]
    if captures:
        payments["captures"] = [capture_api(state, base, c) for c in captures]
        refunds = [state.refunds[r] for c in captures for r in c.refund_ids]
        if refunds:
            payments["refunds"] = [
                r.to_api(base, refunded(state, state.captures[r.capture_id])) for r in refunds
            ]
    unit: JsonObject = {
        "reference_id": "default",
        "amount": money(order.amount, order.currency),
    }
    for key in ("custom_id", "invoice_id"):
        if getattr(order, key):
            unit[key] = getattr(order, key)
    if payments:
        unit["payments"] = payments
    path = f"/v2/checkout/orders/{order.id}"
    links = [link(base, path, "self")]
    if order.status == "APPROVED":
        action = "capture" if order.intent == "CAPTURE" else "authorize"
        links.append(link(base, f"{path}/{action}", action, "POST"))
    api: JsonObject = {"id": order.id, "intent": order.intent, "status": order.status}
    if order.card:
        card = {"last_digits": order.card[-4:], "brand": "VISA", "type": "CREDIT"}
        api["payment_source"] = {"card": card}
    api.update(purchase_units=[unit], create_time=iso(order.created), links=links)
    return api
