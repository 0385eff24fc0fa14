"""Settings are read once from the environment; a bad value names its variable."""

from __future__ import annotations

import pytest

from workers.settings import Settings, SettingsError


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
