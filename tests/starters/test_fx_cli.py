"""``refunds fx import`` / ``fx rates`` and ``refunds ledger balances`` in both currencies, run
as a user runs them, against real PostgreSQL."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from activities.fx import FxBook
from activities.ledger import Ledger
from tests.starters.cli_run import refunds
from workflows.models import PaymentSnapshot, PaymentState, ProviderRate, Psp

RATES = """date,currency,settlement_currency,rate
2026-01-01,EUR,USD,1.0842
2026-02-01T12:00:00+01:00,EUR,USD,1.10
2026-01-01,jpy,usd,0.0067
"""


@pytest.mark.parametrize("command", ["fx", "fx import", "fx rates"])
def test_the_fx_commands_explain_themselves(command: str) -> None:
    answer = refunds(*command.split(), "--help")
    assert answer.returncode == 0, answer.stderr
    assert "Usage: " in answer.stdout


def test_rates_import_once_list_and_import_again_harmlessly(
    tmp_path: Path, database_url: str
) -> None:
    env = {"REFUNDS_DATABASE_URL": database_url, "REFUNDS_SETTLEMENT_CURRENCY": "usd"}
    rates_file = tmp_path / "rates.csv"
    rates_file.write_text(RATES)
    first = refunds("fx", "import", str(rates_file), env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"3 rates imported from {rates_file}"

    again = refunds("fx", "import", str(rates_file), "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {"file": str(rates_file), "imported": 0, "unchanged": 3}

    listed = json.loads(refunds("fx", "rates", "--json", env=env).stdout)
    assert listed["settlement_currency"] == "USD"
    assert listed["rates"][1] == {
        "currency": "EUR",
        "settlement_currency": "USD",
        "valid_from": "2026-02-01T11:00:00+00:00",
        "rate": "1.10",
        "source": "file rates.csv",
    }
    assert [r["currency"] for r in listed["rates"]] == ["EUR", "EUR", "JPY"]
    text = refunds("fx", "rates", env=env).stdout
    assert "JPY->USD  from 2026-01-01T00:00:00+00:00  0.0067  (file rates.csv)" in text


@pytest.mark.parametrize(
    ("row", "complaint"),
    [
        ("2026-01-05,GBP,USD,abc", "row 3: rate 'abc' is not a number above 0"),
        ("2026-01-05,GBP,USD,0", "row 3: rate '0' is not a number above 0"),
        ("2026-13-05,GBP,USD,1.2", "row 3: date '2026-13-05' is not an ISO date"),
        ("2026-01-05,GBX,USD,1.2", "row 3: currency 'GBX' is not an ISO 4217 code"),
        ("2026-01-05,GBP,GBP,1", "row 3: currency and settlement_currency are both GBP"),
        ("2026-01-05,GBP,USD", "row 3: expected 4 values"),
        ("2026-01-01,EUR,USD,1.2", "row 3: EUR/USD from 2026-01-01T00:00:00+00:00 is already"),
    ],
)
def test_a_bad_row_is_named_and_nothing_is_imported(
    tmp_path: Path, database_url: str, row: str, complaint: str
) -> None:
    env = {"REFUNDS_DATABASE_URL": database_url}
    held = tmp_path / "held.csv"
    held.write_text("2026-01-01,EUR,USD,1.0842\n")
    assert refunds("fx", "import", str(held), env=env).returncode == 0
    bad = tmp_path / "bad.csv"
    bad.write_text(f"date,currency,settlement_currency,rate\n2026-01-04,CHF,USD,1.13\n{row}\n")
    answer = refunds("fx", "import", str(bad), env=env)
    assert answer.returncode == 1
    assert complaint in answer.stderr and "nothing was imported" in answer.stderr
    assert "Traceback" not in answer.stderr
    listed = json.loads(refunds("fx", "rates", "--json", env=env).stdout)["rates"]
    assert [r["currency"] for r in listed] == ["EUR"]  # not even the good CHF row


def test_rates_of_a_database_without_a_ledger_is_one_line(database_url: str) -> None:
    answer = refunds("fx", "rates", env={"REFUNDS_DATABASE_URL": database_url})
    assert answer.returncode == 1
    assert "no ledger in it" in answer.stderr and "Traceback" not in answer.stderr


async def _foreign_refund(pool: asyncpg.Pool, refund_id: str, captured: str, refunded: str) -> None:
    payment = PaymentSnapshot(
        psp=Psp.STRIPE,
        payment_id=f"pi_{refund_id}",
        state=PaymentState.CAPTURED,
        currency="EUR",
        amount_authorized=0,
        amount_captured=10_000,
        amount_refunded=0,
        settlement_rate=ProviderRate(settlement_currency="USD", rate=Decimal(captured)),
    )
    ledger, book = Ledger(pool), FxBook(pool, "USD")
    await book.value_at_capture(refund_id, payment)
    await ledger.reserve(
        transfer_id=f"refund-{refund_id}:reserve",
        refund_id=refund_id,
        payment_key=payment.payment_key,
        captured=10_000,
        currency="EUR",
        amount=10_000,
        debit_account="merchant:refunds",
        credit_account="psp:stripe:clearing",
    )
    await ledger.post(
        transfer_id=f"refund-{refund_id}:post", pending_id=f"refund-{refund_id}:reserve"
    )
    rate = ProviderRate(settlement_currency="USD", rate=Decimal(refunded))
    await book.book_refund(refund_id, "stripe", 10_000, rate)


async def test_balances_show_both_currencies_and_the_books_verify(
    ledger_db: asyncpg.Pool, database_url: str
) -> None:
    await _foreign_refund(ledger_db, "rma-eur", "1.10", "1.15")  # 110.00 USD, a 5.00 loss
    await Ledger(ledger_db).transfer(
        transfer_id="refund-rma-usd:post",
        debit_account="merchant:refunds",
        credit_account="psp:stripe:clearing",
        amount=2_500,
        currency="USD",
    )
    await Ledger(ledger_db).transfer(
        transfer_id="old-gbp-refund",
        debit_account="merchant:refunds",
        credit_account="psp:stripe:clearing",
        amount=700,
        currency="GBP",
    )
    env = {"REFUNDS_DATABASE_URL": database_url, "REFUNDS_SETTLEMENT_CURRENCY": "USD"}
    answer = refunds("ledger", "balances", "--json", env=env)
    assert answer.returncode == 0, answer.stderr
    shown = json.loads(answer.stdout)
    raw = {(b["account"], b["currency"]): b["balance"] for b in shown["balances"]}
    assert raw[("merchant:refunds", "USD")] == 2_500 + 11_000  # the ledger's own rows
    accounts = {a["account"]: a for a in shown["accounts"]}
    refunds_account = accounts["merchant:refunds"]
    assert refunds_account["currencies"] == [
        {"currency": "EUR", "balance": 10_000, "settlement_value": 11_000, "unvalued": 0},
        {"currency": "GBP", "balance": 700, "settlement_value": 0, "unvalued": 700},
        {"currency": "USD", "balance": 2_500, "settlement_value": 2_500, "unvalued": 0},
    ]
    assert refunds_account["settlement_total"] == 13_500
    assert not refunds_account["fully_valued"]
    assert accounts["merchant:fx_gain_loss"]["settlement_total"] == 500
    assert accounts["psp:stripe:clearing"]["settlement_total"] == -14_000
    assert shown["settlement_currency"] == "USD"

    text = refunds("ledger", "balances", env=env).stdout
    assert f"{'merchant:refunds':<40} EUR {10_000:>14} = USD {11_000:>14}" in text
    assert f"{'merchant:refunds':<40} all {'':>14} = USD {13_500:>14}" in text
    assert "700 GBP never valued" in text

    plain = refunds("ledger", "balances", env={"REFUNDS_DATABASE_URL": database_url})
    assert f"{'merchant:refunds':<40} USD {13_500:>14}" in plain.stdout  # as before
    verified = refunds("ledger", "verify", "--json", env=env)
    assert verified.returncode == 0, verified.stdout
    assert json.loads(verified.stdout) == {"verified": True, "problems": []}
