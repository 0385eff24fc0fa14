"""The command line answers bad input with one clear line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from tests.starters.cli_run import refunds

COMMANDS = [
    "start",
    "status",
    "worker",
    "dev",
    "demo",
    "bench",
    "ledger",
    "ledger verify",
    "ledger balances",
    "codec-server",
    "serve",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_itself(command: str) -> None:
    answer = refunds(*command.split(), "--help")
    assert answer.returncode == 0, answer.stderr
    assert "Usage: " in answer.stdout


def test_malformed_json_is_refused_before_anything_starts(tmp_path: Path) -> None:
    request = tmp_path / "refund.json"
    request.write_text('{"request_id": "rma-1", "psp": "stripe",')
    answer = refunds("start", "--file", str(request), env={"TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert answer.returncode == 1
    assert "is not valid JSON" in answer.stderr
    assert "Traceback" not in answer.stderr


def test_incomplete_request_names_each_missing_field() -> None:
    answer = refunds("start", "--file", "-", stdin='{"request_id": "rma-2", "psp": "stripe"}')
    assert answer.returncode == 1
    for field in ("payment_id", "currency", "customer_id", "requested_by"):
        assert f"{field}: Field required" in answer.stderr
    assert "Traceback" not in answer.stderr


def test_unreachable_temporal_is_one_line_naming_the_setting() -> None:
    answer = refunds("status", "rma-3", env={"TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert answer.returncode == 1
    assert "TEMPORAL_ADDRESS" in answer.stderr
    assert "Traceback" not in answer.stderr


def test_worker_without_a_database_names_the_variable() -> None:
    answer = refunds("worker")
    assert answer.returncode == 1
    assert "REFUNDS_DATABASE_URL is not set" in answer.stderr


def test_invalid_setting_stops_the_command_naming_it() -> None:
    answer = refunds("status", "x", env={"STRIPE_API_BASE": "localhost:12111"})
    assert answer.returncode == 1
    assert "STRIPE_API_BASE" in answer.stderr


async def test_ledger_verify_fails_on_a_planted_imbalance(
    ledger_db: asyncpg.Pool, database_url: str
) -> None:
    env = {"REFUNDS_DATABASE_URL": database_url}
    clean = refunds("ledger", "verify", env=env)
    assert clean.returncode == 0, clean.stderr
    assert "ledger verifies" in clean.stdout

    async with ledger_db.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(
            "INSERT INTO ledger_transfers (id, kind, debit_account, credit_account, amount,"
            " currency) VALUES ('planted-1', 'single', 'merchant:refunds',"
            " 'psp:stripe:clearing', 100, 'USD')"
        )
        await conn.execute(
            "INSERT INTO ledger_entries (transfer_id, account, currency, amount)"
            " VALUES ('planted-1', 'merchant:refunds', 'USD', 100)"
        )
    broken = refunds("ledger", "verify", "--json", env=env)
    assert broken.returncode == 1
    assert "Traceback" not in broken.stderr
    assert '"verified": false' in broken.stdout
    assert "planted-1" in broken.stdout


def test_worker_without_a_payment_provider_says_which_key_to_set() -> None:
    answer = refunds("worker", env={"REFUNDS_DATABASE_URL": "postgresql://localhost/x"})
    assert answer.returncode == 1
    assert "STRIPE_API_KEY" in answer.stderr
    assert "Traceback" not in answer.stderr


def test_ledger_verify_refuses_a_database_without_a_ledger_and_changes_nothing(
    database_url: str,
) -> None:
    answer = refunds("ledger", "verify", env={"REFUNDS_DATABASE_URL": database_url})
    assert answer.returncode == 1
    assert "no ledger in it" in answer.stderr
    assert "Traceback" not in answer.stderr


def test_a_bad_port_setting_is_one_line_naming_it(tmp_path: Path) -> None:
    answer = refunds(
        "demo",
        "--count",
        "1",
        env={"REFUNDS_STATE_DIR": str(tmp_path), "REFUNDS_STRIPE_SANDBOX_PORT": "abc"},
    )
    assert answer.returncode == 1
    assert "REFUNDS_STRIPE_SANDBOX_PORT must be a port number" in answer.stderr
    assert "Traceback" not in answer.stderr


def test_worker_refuses_an_unknown_queue_naming_the_choices() -> None:
    env = {"REFUNDS_DATABASE_URL": "postgresql://localhost/x", "STRIPE_API_KEY": "sk_test_x"}
    answer = refunds("worker", "--queues", "refunds,klarna", env=env)
    assert answer.returncode != 0
    assert "--queues: unknown queue 'klarna'" in answer.stderr
    assert "refunds, stripe, paypal, adyen" in answer.stderr
    assert "Traceback" not in answer.stderr


def test_worker_refuses_a_provider_queue_it_has_no_credentials_for() -> None:
    env = {"REFUNDS_DATABASE_URL": "postgresql://localhost/x", "STRIPE_API_KEY": "sk_test_x"}
    answer = refunds("worker", "--queues", "paypal", env=env)
    assert answer.returncode != 0
    assert "--queues paypal: this worker has no paypal credentials" in answer.stderr
    assert "PAYPAL_CLIENT_ID" in answer.stderr
    empty = refunds("worker", "--queues", " , ", env=env)
    assert empty.returncode != 0 and "name at least one queue" in empty.stderr


def test_a_worker_without_encryption_keys_refuses_to_store_plaintext() -> None:
    env = {
        "REFUNDS_DATABASE_URL": "postgresql://localhost/x",
        "STRIPE_API_KEY": "sk_test_x",
        "REFUNDS_ENCRYPTION_KEYS": "",
    }
    answer = refunds("worker", env=env)
    assert answer.returncode == 1
    assert "REFUNDS_ENCRYPTION_KEYS is not set" in answer.stderr
    assert "REFUNDS_ALLOW_UNENCRYPTED" in answer.stderr
    assert "Traceback" not in answer.stderr
