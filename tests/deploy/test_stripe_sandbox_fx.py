"""The Stripe sandbox converts like Stripe: balance transactions in the settlement currency with
the exchange rate applied, read through the real SDK and by the refund service's adapter."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import stripe

from activities.stripe_provider import StripeProvider
from deploy.sandboxes.stripe_sandbox import StripeSandbox
from deploy.sandboxes.stripe_shop import capture_payment, create_payment, shop_client
from workflows.models import ProviderRate, RefundPlan, RefundReason

KEY = "sk_test_fx"


async def tell_rate(raw: httpx.AsyncClient, currency: str, rate: str) -> None:
    answer = await raw.post("/_sandbox/exchange_rates", json={"currency": currency, "rate": rate})
    assert answer.status_code == 200, answer.text
    assert answer.json()["told"][currency] == rate


async def charge_of(shop: stripe.StripeClient, intent_id: str) -> stripe.Charge:
    intent = await shop.v1.payment_intents.retrieve_async(
        intent_id, {"expand": ["latest_charge.balance_transaction"]}
    )
    assert isinstance(intent.latest_charge, stripe.Charge)
    return intent.latest_charge


async def test_a_foreign_charge_has_a_balance_transaction_in_the_settlement_currency(
    shop: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    await tell_rate(raw, "eur", "1.0842")
    payment = await create_payment(shop, amount=10_000, currency="eur", customer="cus_fx")
    charge = await charge_of(shop, payment)
    txn = charge.balance_transaction
    assert isinstance(txn, stripe.BalanceTransaction)
    assert (txn.amount, txn.currency, txn.fee, txn.net, txn.type) == (
        10_842,
        "usd",
        0,
        10_842,
        "charge",
    )
    assert txn.exchange_rate == 1.0842 and Decimal(str(txn.exchange_rate)) == Decimal("1.0842")
    assert txn.source == charge.id

    fetched = await shop.v1.balance_transactions.retrieve_async(txn.id)
    assert fetched.to_dict() == txn.to_dict()
    by_charge = await shop.v1.charges.retrieve_async(charge.id, {"expand": ["balance_transaction"]})
    assert isinstance(by_charge.balance_transaction, stripe.BalanceTransaction)

    same = await charge_of(
        shop, await create_payment(shop, amount=500, currency="usd", customer="c")
    )
    assert isinstance(same.balance_transaction, stripe.BalanceTransaction)
    assert (same.balance_transaction.amount, same.balance_transaction.exchange_rate) == (500, None)


async def test_zero_and_three_decimal_currencies_convert_to_the_cent(
    shop: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    await tell_rate(raw, "jpy", "0.0067")
    await tell_rate(raw, "kwd", "3.2512")
    for currency, amount, usd in (("jpy", 12_345, 8_271), ("kwd", 1_234, 401)):
        payment = await create_payment(shop, amount=amount, currency=currency, customer="c")
        txn = (await charge_of(shop, payment)).balance_transaction
        assert isinstance(txn, stripe.BalanceTransaction)
        assert (txn.amount, txn.currency) == (usd, "usd")


async def test_rates_default_refuse_nonsense_and_a_currency_without_one_is_not_converted(
    shop: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    shown = (await raw.get("/_sandbox/exchange_rates")).json()
    assert shown["settlement_currency"] == "usd" and shown["rates"]["eur"] == "1.08"
    for body in (
        {"currency": "eur", "rate": "-1"},
        {"currency": "eur", "rate": "abc"},
        {"currency": "eur", "rate": True},
        {"currency": "xyz", "rate": "1"},
        {"currency": "usd", "rate": "1"},
    ):
        answer = await raw.post("/_sandbox/exchange_rates", json=body)
        assert answer.status_code == 400, body
        assert "error" in answer.json()
    payment = await create_payment(shop, amount=1_000, currency="pen", customer="c")
    assert (await charge_of(shop, payment)).balance_transaction is None


async def test_manual_capture_converts_at_the_rate_of_the_capture(
    shop: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    await tell_rate(raw, "gbp", "1.25")
    payment = await create_payment(shop, amount=2_000, currency="gbp", customer="c", capture=False)
    assert (await charge_of(shop, payment)).balance_transaction is None  # nothing taken yet
    await tell_rate(raw, "gbp", "1.30")
    await capture_payment(shop, payment, amount=1_500)
    txn = (await charge_of(shop, payment)).balance_transaction
    assert isinstance(txn, stripe.BalanceTransaction)
    assert (txn.amount, txn.exchange_rate) == (1_950, 1.3)


async def test_the_adapter_tells_the_rate_at_capture_and_the_rate_at_refund(
    sandbox: StripeSandbox, shop: stripe.StripeClient, raw: httpx.AsyncClient
) -> None:
    await tell_rate(raw, "eur", "1.10")
    payment = await create_payment(shop, amount=20_000, currency="eur", customer="cus_fx")
    await tell_rate(raw, "eur", "1.05")
    provider = StripeProvider(KEY, sandbox.base_url)

    snapshot = await provider.fetch_payment(payment)
    assert snapshot.settlement_rate == ProviderRate(settlement_currency="USD", rate=Decimal("1.10"))
    assert snapshot.captured_at is not None and snapshot.created is not None
    charge = await charge_of(shop, payment)
    assert (await provider.fetch_payment(charge.id)).settlement_rate == snapshot.settlement_rate

    plan = RefundPlan(operation="refund", amount=10_000, currency="EUR")
    refund = await provider.refund(snapshot, plan, RefundReason.OTHER, "fx-key-1", "rma-fx")
    at_refund = ProviderRate(settlement_currency="USD", rate=Decimal("1.05"))
    assert refund.settlement_rate == at_refund
    assert (await provider.fetch_refund(refund.psp_refund_id)).settlement_rate == at_refund
    found = await provider.find_refund(snapshot, "rma-fx")
    assert found is not None and found.settlement_rate == at_refund
    txn = await shop.v1.refunds.retrieve_async(
        refund.psp_refund_id, {"expand": ["balance_transaction"]}
    )
    assert isinstance(txn.balance_transaction, stripe.BalanceTransaction)
    assert (txn.balance_transaction.amount, txn.balance_transaction.type) == (-10_500, "refund")

    again = await provider.refund(snapshot, plan, RefundReason.OTHER, "fx-key-1", "rma-fx")
    assert (again.psp_refund_id, again.settlement_rate) == (refund.psp_refund_id, at_refund)

    usd_payment = await create_payment(shop, amount=700, currency="usd", customer="c")
    assert (await provider.fetch_payment(usd_payment)).settlement_rate is None


async def test_rates_and_balance_transactions_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "stripe.json"
    first = StripeSandbox(state_file=state, settlement_currency="eur")
    base = await first.start("127.0.0.1", 0)
    async with httpx.AsyncClient(base_url=base) as raw:
        answer = await raw.post("/_sandbox/exchange_rates", json={"currency": "usd", "rate": 0.92})
        assert answer.json()["settlement_currency"] == "eur"
    http = stripe.HTTPXClient()
    try:
        shop = shop_client(base, KEY, http_client=http)
        payment = await create_payment(shop, amount=1_000, currency="usd", customer="c")
        await first.stop()

        second = StripeSandbox(state_file=state, settlement_currency="eur")
        base = await second.start("127.0.0.1", 0)
        try:
            shop = shop_client(base, KEY, http_client=http)
            txn = (await charge_of(shop, payment)).balance_transaction
            assert isinstance(txn, stripe.BalanceTransaction)
            assert (txn.amount, txn.currency, txn.exchange_rate) == (920, "eur", 0.92)
            assert second.state.exchange_rates == {"usd": "0.92"}
        finally:
            await second.stop()
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]
