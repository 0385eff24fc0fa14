"""The sandbox account's balance: its settlement currency, exchange rates, balance transactions.

At Stripe a charge in another currency than the account's settlement currency is converted
when it is captured, and a refund when it is made; each has a balance transaction (`txn_...`)
with the converted `amount` and `currency` and the `exchange_rate` applied (an amount in the
payment's currency times `exchange_rate` is the amount in the settlement currency; null when
nothing was converted). The sandbox does the same, with no fees. Its rates are those a test
told it (`POST /_sandbox/exchange_rates` `{"currency": "eur", "rate": "1.0842"}`, kept in the
state file) and otherwise fixed defaults for common currencies (approximate, not market data);
a charge or refund in a currency it has no rate for gets no balance transaction.
`GET /_sandbox/exchange_rates` shows the settlement currency and every rate in use.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

from aiohttp import web

from deploy.sandboxes.stripe_errors import StripeApiError, invalid
from deploy.sandboxes.stripe_objects import (
    CURRENCIES,
    THREE_DECIMAL,
    ZERO_DECIMAL,
    BalanceTransaction,
    Charge,
    JsonObject,
    SandboxState,
    new_id,
    now,
)

# US dollars one unit of each currency is worth: fixed defaults, so demos convert.
_USD_VALUE = {
    "usd": "1", "eur": "1.08", "gbp": "1.27", "chf": "1.13", "cad": "0.73", "aud": "0.66",
    "nzd": "0.61", "jpy": "0.0067", "krw": "0.00075", "cny": "0.138", "hkd": "0.128",
    "sgd": "0.74", "inr": "0.012", "sek": "0.095", "nok": "0.094", "dkk": "0.145",
    "pln": "0.25", "czk": "0.043", "huf": "0.0027", "mxn": "0.058", "brl": "0.2",
    "zar": "0.054", "kwd": "3.25", "bhd": "2.65", "jod": "1.41", "omr": "2.6", "tnd": "0.32",
}  # fmt: skip


def exchange_rate(state: SandboxState, currency: str) -> Decimal | None:
    """The rate from `currency` to the settlement currency now; None when none is known."""
    if currency in state.exchange_rates:
        return Decimal(state.exchange_rates[currency])
    settlement = state.settlement_currency
    if currency not in _USD_VALUE or settlement not in _USD_VALUE:
        return None
    with localcontext(prec=6):  # six significant digits, as Stripe's rates have
        return Decimal(_USD_VALUE[currency]) / Decimal(_USD_VALUE[settlement])


def _digits(currency: str) -> int:
    return 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2


def record(state: SandboxState, source: str, kind: str, amount: int, currency: str) -> str | None:
    """The balance transaction of a charge (`amount` > 0) or refund (`amount` < 0); its id,
    or None when the sandbox has no rate for `currency`."""
    settlement = state.settlement_currency
    rate: Decimal | None = None
    converted = amount
    if currency != settlement:
        rate = exchange_rate(state, currency)
        if rate is None:
            return None
        with localcontext(prec=60):
            value = Decimal(amount).scaleb(_digits(settlement) - _digits(currency)) * rate
            converted = int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    txn = BalanceTransaction(
        id=new_id("txn"),
        amount=converted,
        currency=settlement,
        exchange_rate=None if rate is None else str(rate),
        created=now(),
        source=source,
        type=kind,
    )
    state.balance_transactions[txn.id] = txn
    return txn.id


def capture_charge(state: SandboxState, charge: Charge, amount: int) -> None:
    """Capture `amount` of the charge: the money enters the balance, converted."""
    charge.captured, charge.amount_captured = True, amount
    charge.balance_transaction = record(state, charge.id, "charge", amount, charge.currency)


def balance_transaction(state: SandboxState, txn_id: str) -> BalanceTransaction:
    txn = state.balance_transactions.get(txn_id)
    if txn is None:
        raise StripeApiError(
            404,
            f"No such balance transaction: '{txn_id}'",
            code="resource_missing",
            param="id",
        )
    return txn


def rates_view(state: SandboxState) -> JsonObject:
    rates = {c: exchange_rate(state, c) for c in sorted(CURRENCIES - {state.settlement_currency})}
    return {
        "settlement_currency": state.settlement_currency,
        "rates": {c: str(rate) for c, rate in rates.items() if rate is not None},
        "told": dict(state.exchange_rates),
    }


def add_rate_routes(
    app: web.Application, state: SandboxState, on_change: Callable[[], None]
) -> None:
    """`GET /_sandbox/exchange_rates`; `POST` `{"currency": "eur", "rate": "1.0842"}` sets the
    rate charges and refunds in that currency are converted at from then on."""

    async def show(_: web.Request) -> web.Response:
        return web.json_response(rates_view(state))

    async def tell(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise invalid("expected a JSON object with currency and rate")
            currency = str(body.get("currency", "")).lower()
            if currency not in CURRENCIES:
                raise invalid(f"Invalid currency: {currency or None}", "currency")
            if currency == state.settlement_currency:
                raise invalid(f"{currency} is the settlement currency: nothing to convert")
            rate = _rate(body.get("rate"))
        except ValueError:
            return web.json_response(invalid("expected a JSON object").body(), status=400)
        except StripeApiError as error:
            return web.json_response(error.body(), status=error.status)
        state.exchange_rates[currency] = str(rate)
        on_change()
        return web.json_response(rates_view(state))

    handler: Callable[[web.Request], Awaitable[web.Response]]
    for method, handler in (("GET", show), ("POST", tell)):
        app.router.add_route(method, "/_sandbox/exchange_rates", handler)


def _rate(value: object) -> Decimal:
    try:
        number = isinstance(value, (str, int, float)) and not isinstance(value, bool)
        rate = Decimal(str(value)) if number else None
    except InvalidOperation:
        rate = None
    if rate is None or not rate.is_finite() or rate <= 0:
        raise invalid(f'rate must be a number above 0, like "1.0842"; got {value!r}', "rate")
    return rate
