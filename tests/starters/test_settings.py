"""Settings are read once from the environment; a bad value names its variable."""

from __future__ import annotations

import pytest

from workers.settings import Settings, SettingsError
from workflows.models import Psp


def test_defaults_match_the_documented_ports_and_queue() -> None:
    settings = Settings.from_env({})
    assert settings.temporal_address == "127.0.0.1:7233"
    assert settings.task_queue == "refunds"
    assert settings.database_url is None


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"TEMPORAL_ADDRESS": "nohostport"}, "TEMPORAL_ADDRESS"),
        ({"REFUNDS_DATABASE_URL": "mysql://x"}, "REFUNDS_DATABASE_URL"),
        ({"STRIPE_API_BASE": "localhost:12111"}, "STRIPE_API_BASE"),
        ({"STRIPE_API_KEY": "pk_test_public"}, "STRIPE_API_KEY"),
        ({"REFUNDS_EVENT_SUBSCRIBERS": "ftp://x"}, "REFUNDS_EVENT_SUBSCRIBERS"),
        ({"REFUNDS_EVENT_SUBSCRIBERS": "https://erp.example/hooks"}, "REFUNDS_EVENTS_SECRET"),
        ({"REFUNDS_REVIEW_EXPIRE_AFTER": "soon"}, "REFUNDS_REVIEW_EXPIRE_AFTER"),
    ],
)
def test_invalid_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env(env)


def test_secrets_stay_out_of_the_printed_settings() -> None:
    settings = Settings.from_env(
        {"STRIPE_API_KEY": "sk_test_secret123", "REFUNDS_DATABASE_URL": "postgresql://u:pw@h/db"}
    )
    assert "secret123" not in repr(settings)
    assert "pw@" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"PAYPAL_CLIENT_ID": "abc"}, "PAYPAL_CLIENT_SECRET"),
        ({"PAYPAL_API_BASE": "127.0.0.1:12112"}, "PAYPAL_API_BASE"),
        ({"PAYPAL_WEBHOOK_VERIFY": "trust-me"}, "PAYPAL_WEBHOOK_VERIFY"),
        ({"PAYPAL_WEBHOOK_CERT_FILE": "/no/such/cert.pem"}, "PAYPAL_WEBHOOK_CERT_FILE"),
        ({"ADYEN_API_KEY": "AQE..."}, "ADYEN_MERCHANT_ACCOUNT"),
        ({"ADYEN_HMAC_KEY": "not-hex"}, "ADYEN_HMAC_KEY"),
        ({"ADYEN_WEBHOOK_USERNAME": "adyen"}, "ADYEN_WEBHOOK_PASSWORD"),
        ({"REFUNDS_ADYEN_SETTLEMENT_TIMEOUT": "6"}, "REFUNDS_ADYEN_SETTLEMENT_TIMEOUT"),
        ({"REFUNDS_PROVIDER_RATE_LIMITS": "klarna=5"}, "REFUNDS_PROVIDER_RATE_LIMITS"),
        ({"REFUNDS_PROVIDER_RATE_LIMITS": "paypal=0"}, "REFUNDS_PROVIDER_RATE_LIMITS"),
        ({"REFUNDS_WORKER_QUEUES": "refunds,klarna"}, "REFUNDS_WORKER_QUEUES"),
        ({"ADYEN_AUTO_CAPTURE": "sometimes"}, "ADYEN_AUTO_CAPTURE"),
    ],
)
def test_invalid_provider_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env(env)


def test_provider_settings_are_read_and_their_secrets_kept_out_of_reprs() -> None:
    settings = Settings.from_env(
        {
            "PAYPAL_CLIENT_ID": "client-1",
            "PAYPAL_CLIENT_SECRET": "paypal-secret-xyz",
            "ADYEN_API_KEY": "adyen-key-xyz",
            "ADYEN_MERCHANT_ACCOUNT": "ShopECOM",
            "ADYEN_HMAC_KEY": "ab12,CD34",
            "REFUNDS_ADYEN_SETTLEMENT_TIMEOUT": "2h",
            "REFUNDS_PROVIDER_RATE_LIMITS": "paypal=5, adyen=12.5",
            "REFUNDS_WORKER_QUEUES": "refunds,paypal",
        }
    )
    assert settings.paypal.configured and settings.adyen.configured
    assert settings.adyen.hmac_keys == ("ab12", "CD34")  # the current key first: rotation
    assert settings.adyen.settlement_timeout_s == 7200
    assert settings.provider_rate_limits[Psp.PAYPAL] == 5
    assert settings.provider_rate_limits[Psp.ADYEN] == 12.5
    assert settings.provider_rate_limits[Psp.STRIPE] == 50  # the default when not named
    assert settings.worker_queues == ("refunds", "paypal")
    printed = repr(settings)
    assert "paypal-secret-xyz" not in printed and "adyen-key-xyz" not in printed
    assert "ab12" not in printed
