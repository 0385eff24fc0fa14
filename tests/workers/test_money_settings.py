"""The refund policy, order source and settlement currency settings: the defaults, each variable
as parsed, and every bad value refused at start with a message naming its variable."""

from __future__ import annotations

import pytest

from workers.money_settings import MoneySettings, MoneySettingsError
from workers.settings import Settings, SettingsError
from workflows.models import RefundReason
from workflows.refund_policy import DEFAULT_SHIPPING, RefundPolicy, ShippingRule


def money(env: dict[str, str]) -> MoneySettings:
    """Read through the process's settings, as the worker does."""
    return Settings.from_env(env).money


def test_defaults() -> None:
    for settings in (MoneySettings.from_env({}), Settings.from_env({}).money, MoneySettings()):
        policy = settings.refund_policy
        assert policy.window_days == 180
        assert policy.max_refunds_per_payment == 10
        assert policy.allowed_reasons == list(RefundReason)
        assert policy.shipping == DEFAULT_SHIPPING
        assert policy.restocking_fee_bps == {}
        assert settings.order_source is None
        assert settings.settlement_currency is None
        assert policy == RefundPolicy()


def test_blank_values_are_the_defaults() -> None:
    names = [
        "REFUNDS_REFUND_WINDOW_DAYS",
        "REFUNDS_MAX_REFUNDS_PER_PAYMENT",
        "REFUNDS_ALLOWED_REASONS",
        "REFUNDS_SHIPPING_REFUND",
        "REFUNDS_RESTOCKING_FEE",
        "REFUNDS_ORDER_SOURCE",
        "REFUNDS_SETTLEMENT_CURRENCY",
    ]
    assert money(dict.fromkeys(names, "  ")) == MoneySettings()


@pytest.mark.parametrize(
    ("value", "days"),
    [("30", 30), (" 45 ", 45), ("1", 1), ("none", None), ("NONE", None), ("off", None)],
)
def test_refund_window_days(value: str, days: int | None) -> None:
    assert money({"REFUNDS_REFUND_WINDOW_DAYS": value}).refund_policy.window_days == days


@pytest.mark.parametrize(
    ("value", "limit"), [("3", 3), ("1", 1), ("none", None), ("unlimited", None)]
)
def test_max_refunds_per_payment(value: str, limit: int | None) -> None:
    policy = money({"REFUNDS_MAX_REFUNDS_PER_PAYMENT": value}).refund_policy
    assert policy.max_refunds_per_payment == limit


def test_allowed_reasons_are_a_comma_separated_list_in_any_case() -> None:
    policy = money({"REFUNDS_ALLOWED_REASONS": "duplicate, FRAUDULENT ,out_of_stock,"})
    assert policy.refund_policy.allowed_reasons == [
        RefundReason.DUPLICATE,
        RefundReason.FRAUDULENT,
        RefundReason.OUT_OF_STOCK,
    ]


def test_shipping_rules_override_the_defaults_for_the_reasons_named() -> None:
    env = {"REFUNDS_SHIPPING_REFUND": "requested_by_customer=refund, Other=NEVER"}
    shipping = money(env).refund_policy.shipping
    assert shipping == {
        **DEFAULT_SHIPPING,
        RefundReason.REQUESTED_BY_CUSTOMER: ShippingRule.REFUND,
        RefundReason.OTHER: ShippingRule.NEVER,
    }


@pytest.mark.parametrize(
    ("value", "fees"),
    [
        ("requested_by_customer=12.5%", {RefundReason.REQUESTED_BY_CUSTOMER: 1250}),
        ("other=10%", {RefundReason.OTHER: 1000}),
        ("other=0.01%", {RefundReason.OTHER: 1}),
        (
            "duplicate=0%, out_of_stock=100%",
            {RefundReason.DUPLICATE: 0, RefundReason.OUT_OF_STOCK: 10_000},
        ),
    ],
)
def test_restocking_fees_are_percentages_kept_as_basis_points(
    value: str, fees: dict[RefundReason, int]
) -> None:
    policy = money({"REFUNDS_RESTOCKING_FEE": value}).refund_policy
    assert policy.restocking_fee_bps == fees
    for reason, bps in fees.items():
        assert policy.restocking_bps(reason.value) == bps


@pytest.mark.parametrize(("value", "code"), [("eur", "EUR"), (" gbp ", "GBP"), ("KWD", "KWD")])
def test_settlement_currency_in_any_case(value: str, code: str) -> None:
    assert money({"REFUNDS_SETTLEMENT_CURRENCY": value}).settlement_currency == code


def test_order_source() -> None:
    env = {"REFUNDS_ORDER_SOURCE": " shop.orders:make_source "}
    assert money(env).order_source == "shop.orders:make_source"


# Each bad value, and the part of it that the message quotes back.
BAD = [
    ("REFUNDS_REFUND_WINDOW_DAYS", "0", "'0'"),
    ("REFUNDS_REFUND_WINDOW_DAYS", "-1", "'-1'"),
    ("REFUNDS_REFUND_WINDOW_DAYS", "1.5", "'1.5'"),
    ("REFUNDS_REFUND_WINDOW_DAYS", "30d", "'30d'"),
    ("REFUNDS_REFUND_WINDOW_DAYS", "forever", "'forever'"),
    ("REFUNDS_MAX_REFUNDS_PER_PAYMENT", "0", "'0'"),
    ("REFUNDS_MAX_REFUNDS_PER_PAYMENT", "ten", "'ten'"),
    ("REFUNDS_ALLOWED_REASONS", "klarna", "'klarna'"),
    ("REFUNDS_ALLOWED_REASONS", "duplicate,whim", "'whim'"),
    ("REFUNDS_SHIPPING_REFUND", "other=sometimes", "'sometimes'"),
    ("REFUNDS_SHIPPING_REFUND", "other", "'other'"),
    ("REFUNDS_SHIPPING_REFUND", "other=", "'other='"),
    ("REFUNDS_SHIPPING_REFUND", "whim=refund", "'whim'"),
    ("REFUNDS_RESTOCKING_FEE", "other=101%", "'101%'"),
    ("REFUNDS_RESTOCKING_FEE", "other=-1%", "'-1%'"),
    ("REFUNDS_RESTOCKING_FEE", "other=12.345%", "'12.345%'"),
    ("REFUNDS_RESTOCKING_FEE", "other=ten%", "'ten%'"),
    ("REFUNDS_RESTOCKING_FEE", "other=10%%", "'10%%'"),
    ("REFUNDS_RESTOCKING_FEE", "other=inf%", "'inf%'"),
    ("REFUNDS_RESTOCKING_FEE", "other", "'other'"),
    ("REFUNDS_RESTOCKING_FEE", "other=0.1", "needs its % sign"),
    ("REFUNDS_RESTOCKING_FEE", "whim=10%", "'whim'"),
    ("REFUNDS_SETTLEMENT_CURRENCY", "XYZ", "'XYZ'"),
    ("REFUNDS_SETTLEMENT_CURRENCY", "euro", "'EURO'"),
    ("REFUNDS_ORDER_SOURCE", "shop.orders", "'shop.orders'"),
]


@pytest.mark.parametrize(("variable", "value", "quoted"), BAD)
def test_a_bad_value_is_refused_naming_its_variable(variable: str, value: str, quoted: str) -> None:
    with pytest.raises(MoneySettingsError, match=variable):
        MoneySettings.from_env({variable: value})
    with pytest.raises(SettingsError, match=variable) as refused:
        Settings.from_env({variable: value})
    assert quoted in str(refused.value)


# Odd numbers: Decimal accepts "nan" and "snan", which it then cannot compare; str.isdigit()
# accepts "²", which int() does not. Each is refused naming its variable, not a traceback.
@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REFUNDS_RESTOCKING_FEE", "other=nan%"),
        ("REFUNDS_RESTOCKING_FEE", "other=snan"),
        ("REFUNDS_REFUND_WINDOW_DAYS", "²"),
        ("REFUNDS_MAX_REFUNDS_PER_PAYMENT", "²"),
        ("REFUNDS_REFUND_WINDOW_DAYS", "10000000000"),
        ("REFUNDS_ALLOWED_REASONS", ","),
    ],
)
def test_odd_numbers_are_refused_naming_the_variable_too(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: value})
