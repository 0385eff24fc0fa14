"""``refunds orders import|show`` and ``refunds quote``, run as a user runs them, on a real
PostgreSQL: a good file is stored whole, a bad one names each row and field and stores nothing."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest

from activities.orders import OrderBook
from tests.starters.cli_run import refunds

HEADER = (
    "order_id,psp,payment_id,currency,customer_id,placed_at,shipping_amount,"
    "shipping_tax1_jurisdiction,shipping_tax1_rate,shipping_tax1_amount,"
    "line_id,sku,quantity,unit_price,discount,"
    "tax1_jurisdiction,tax1_rate,tax1_amount,tax2_jurisdiction,tax2_rate,tax2_amount"
)
GOOD_CSV = f"""{HEADER}
A-1001,stripe,pi_3Pq,usd,cus_42,2025-02-28T09:30:00Z,1200,US-MA,6.25%,,L1,MUG-BLUE,3,1999,500,US-MA,0.0625,,US-MA-BOSTON,1%,55
A-1001,,,,,,,,,,L2,TEAPOT,1,5500,,US-MA,0.0625,344,,,
K-7,adyen,PSP123,KWD,,,,,,,1,OUD,2,12345,,KW,5%,,,,
"""
JPY_ORDER = {
    "order_id": "J-1",
    "psp": "paypal",
    "payment_id": "CAP-1",
    "currency": "jpy",
    "lines": [
        {
            "line_id": "1",
            "sku": "TEA",
            "quantity": 5,
            "unit_price": 980,
            "discount": 90,
            "taxes": [{"jurisdiction": "JP", "rate": "0.1", "amount": 481}],
        }
    ],
}


def env(database_url: str, **more: str) -> dict[str, str]:
    return {"REFUNDS_DATABASE_URL": database_url, **more}


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


async def count_orders(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM orders")
    return count


async def test_a_csv_file_is_imported_with_its_taxes_computed_once(
    ledger_db: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    path = write(tmp_path, "orders.csv", GOOD_CSV)
    first = refunds("orders", "import", path, env=env(database_url))
    again = refunds("orders", "import", path, "--json", env=env(database_url))

    assert first.returncode == 0, first.stderr
    assert "imported 2 orders" in first.stdout and "2 created" in first.stdout
    assert json.loads(again.stdout)["unchanged"] == 2
    order = await OrderBook(ledger_db).fetch("A-1001")
    assert order is not None and order.currency == "USD"
    # 54.97 x 6.25 % = 3.4356 -> 344; the city's amount as given; shipping 12.00 x 6.25 % -> 75
    assert [(t.jurisdiction, t.amount) for t in order.lines[0].taxes] == [
        ("US-MA", 344),
        ("US-MA-BOSTON", 55),
    ]
    assert (order.shipping.amount, order.shipping.taxes[0].amount) == (1200, 75)
    kwd = await OrderBook(ledger_db).fetch("K-7")
    assert kwd is not None and kwd.lines[0].taxes[0].amount == 1235  # 24.690 KWD x 5 %


async def test_a_json_file_in_either_shape_and_the_order_shown(
    ledger_db: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    listed = write(tmp_path, "list.json", json.dumps([JPY_ORDER]))
    wrapped = write(tmp_path, "wrapped", json.dumps({"orders": [JPY_ORDER]}))
    assert refunds("orders", "import", listed, env=env(database_url)).returncode == 0
    answer = refunds("orders", "import", wrapped, env=env(database_url))
    assert answer.returncode == 0, answer.stderr
    assert "0 created, 0 updated, 1 unchanged" in answer.stdout

    async with ledger_db.acquire() as conn, conn.transaction():
        await OrderBook(ledger_db).claim(conn, order_id="J-1", refund_id="rma-1", units={"1": [1]})
    shown = refunds("orders", "show", "J-1", env=env(database_url))
    as_json = json.loads(refunds("orders", "show", "J-1", "--json", env=env(database_url)).stdout)

    assert shown.returncode == 0, shown.stderr
    assert "5 x 980 JPY - 90 JPY discount  = 4810 JPY" in shown.stdout
    assert "tax JP 10%  481 JPY" in shown.stdout
    assert "refundable 4 of 5, 4233 JPY (units 1 held)" in shown.stdout
    assert as_json["refundable"]["lines"] == [
        {
            "line_id": "1",
            "paid": 5291,
            "held_units": [1],
            "refundable_quantity": 4,
            "refundable_amount": 4233,  # 5291 less unit 1's 962 + 96
        }
    ]
    assert as_json["order"]["currency"] == "JPY"
    missing = refunds("orders", "show", "nope", env=env(database_url))
    assert missing.returncode == 1
    assert "order nope is not in the order store" in missing.stderr


async def test_a_bad_csv_names_each_row_and_field_and_stores_nothing(
    ledger_db: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    bad = GOOD_CSV + (
        "B-1,stripe,pi_2,usd,,,,,,,L1,MUG,0,19.99,,US,abc,,,,\n"
        "B-1,stripe,pi_2,eur,,,,,,,L2,MUG,1,100,500,,,,,,\n"
    )
    answer = refunds("orders", "import", write(tmp_path, "bad.csv", bad), env=env(database_url))
    assert answer.returncode == 1
    assert "Traceback" not in answer.stderr
    for problem in (
        "bad.csv: nothing imported, 4 problems",
        "row 5 (order B-1, line L1): unit_price: '19.99' is not a whole number",
        "row 5 (order B-1, line L1): tax1_rate: 'abc' is not a rate",
        "row 6 (order B-1): currency: 'eur' here but 'usd' on row 5",
        "row 6 (order B-1, line L2): line: Value error, line L2: discount 500 is more",
    ):
        assert problem in answer.stderr, answer.stderr
    assert await count_orders(ledger_db) == 0  # not even the good orders before the bad rows

    header = write(tmp_path, "typo.csv", HEADER.replace("unit_price", "unit_prce") + "\n")
    answer = refunds("orders", "import", header, env=env(database_url))
    assert "unknown column 'unit_prce'" in answer.stderr
    assert "column 'unit_price' is missing" in answer.stderr


async def test_a_bad_json_file_or_a_conflict_stores_nothing_of_the_file(
    ledger_db: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    broken = [JPY_ORDER, JPY_ORDER | {"order_id": "J-2", "psp": "venmo", "currency": "XXY"}]
    answer = refunds(
        "orders", "import", write(tmp_path, "o.json", json.dumps(broken)), env=env(database_url)
    )
    assert answer.returncode == 1
    assert "order #2 (J-2): psp: Input should be 'stripe', 'paypal' or 'adyen'" in answer.stderr
    for text in ("{not json", '{"order": []}'):
        answer = refunds(
            "orders", "import", "-", "--format", "json", stdin=text, env=env(database_url)
        )
        assert answer.returncode == 1 and "stdin: nothing imported" in answer.stderr
    assert await count_orders(ledger_db) == 0
    misspelt = JPY_ORDER | {"lines": [JPY_ORDER["lines"][0] | {"discont": 90}]}
    answer = refunds(
        "orders", "import", write(tmp_path, "m.json", json.dumps([misspelt])), env=env(database_url)
    )
    assert answer.returncode == 1
    assert "discont: Extra inputs are not permitted" in answer.stderr  # not silently dropped
    assert await count_orders(ledger_db) == 0

    imported = refunds(
        "orders",
        "import",
        write(tmp_path, "j.json", json.dumps([JPY_ORDER])),
        env=env(database_url),
    )
    assert imported.returncode == 0
    async with ledger_db.acquire() as conn, conn.transaction():
        await OrderBook(ledger_db).claim(conn, order_id="J-1", refund_id="rma-9", units={"1": [5]})
    lowered = JPY_ORDER | {"lines": [JPY_ORDER["lines"][0] | {"quantity": 4, "discount": 0}]}
    file = write(tmp_path, "both.json", json.dumps([JPY_ORDER | {"order_id": "J-3"}, lowered]))
    answer = refunds("orders", "import", file, env=env(database_url))
    assert answer.returncode == 1
    assert (
        "order J-1 not updated: line 1 cannot go down to 4 unit(s): refund rma-9" in answer.stderr
    )
    assert await OrderBook(ledger_db).fetch("J-3") is None


def test_a_missing_file_or_database_is_one_clear_line(tmp_path: Path, database_url: str) -> None:
    missing = refunds("orders", "import", str(tmp_path / "none.csv"), env=env(database_url))
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    nodb = refunds("orders", "show", "A-1")
    assert nodb.returncode == 1 and "REFUNDS_DATABASE_URL" in nodb.stderr
    bare = refunds("quote", "--order", "A-1", "--line", "L1=2", env=env(database_url))
    assert bare.returncode == 1 and "no ledger in it" in bare.stderr
    gone = env(database_url)
    gone["REFUNDS_DATABASE_URL"] = "postgresql://nobody@127.0.0.1:9/refunds"  # nothing listens
    down = refunds("orders", "show", "A-1", env=gone)
    assert down.returncode == 1 and "cannot reach PostgreSQL at REFUNDS_DATABASE_URL" in down.stderr
    assert "Traceback" not in missing.stderr + nodb.stderr + bare.stderr + down.stderr


async def test_a_quote_prints_each_part_and_what_is_left(
    ledger_db: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    refunds("orders", "import", write(tmp_path, "o.csv", GOOD_CSV), env=env(database_url))
    fee = env(database_url, REFUNDS_RESTOCKING_FEE="out_of_stock=10%")
    args = ("quote", "--order", "A-1001", "--line", "L1=2", "--line", "L2=1")
    text = refunds(*args, "--reason", "out_of_stock", env=fee)
    data = json.loads(refunds(*args, "--reason", "out_of_stock", "--json", env=fee).stdout)

    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == "quote for order A-1001 (out_of_stock), USD"
    # 2/3 of 54.97 = 36.65 (a(2) = 36.647 -> 36.65); taxes 3.44 -> 2.29, 0.55 -> 0.37
    assert "L1 MUG-BLUE x2 (units 1, 2)" in lines[1] and lines[1].endswith("36.65 USD")
    assert "tax US-MA 6.25%" in lines[2] and lines[2].endswith("2.29 USD")
    assert "tax US-MA-BOSTON 1%" in lines[3] and lines[3].endswith("0.37 USD")
    assert any(line.strip().startswith("restocking fee (10%)") for line in lines)
    assert data["restocking_fee"] == 917  # 10 % of 36.65 + 55.00, half up
    assert data["total"] == 3665 + 229 + 37 + 5500 + 344 + 1200 + 75 - 917
    assert f"{data['total'] // 100}.{data['total'] % 100:02d} USD" in text.stdout
    assert "L1: 1 unit(s) still refundable (3 before), 19.65 USD" in text.stdout
    assert data["lines"][0]["units"] == [1, 2]

    kept = refunds(*args, "--reason", "out_of_stock", "--no-shipping", "--json", env=fee)
    assert json.loads(kept.stdout)["shipping"] == 0


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--order", "nope", "--line", "L1=1"), 1, "order nope is not in the order store"),
        (("--order", "A-1001", "--line", "L9=1"), 1, "has no line 'L9' (its lines: L1, L2)"),
        (("--order", "A-1001", "--line", "L1=4"), 1, "4 asked for, but only 3"),
        (
            ("--order", "A-1001", "--line", "L1=1", "--shipping"),
            1,
            "shipping is not refunded for reason 'requested_by_customer'",
        ),
        (("--order", "A-1001", "--line", "L1"), 2, "expected LINE=QUANTITY"),
        (("--order", "A-1001", "--reason", "bored"), 2, "'bored' is not one of"),
    ],
)
async def test_a_quote_refused_says_why(
    ledger_db: asyncpg.Pool,
    database_url: str,
    tmp_path: Path,
    args: tuple[str, ...],
    code: int,
    message: str,
) -> None:
    refunds("orders", "import", write(tmp_path, "o.csv", GOOD_CSV), env=env(database_url))
    answer = refunds("quote", *args, env=env(database_url))
    assert answer.returncode == code, answer.stderr
    assert message in answer.stderr
    assert "Traceback" not in answer.stderr


@pytest.mark.parametrize("command", ["orders", "orders import", "orders show", "quote"])
def test_the_order_commands_explain_themselves(command: str) -> None:
    answer = refunds(*command.split(), "--help")
    assert answer.returncode == 0 and "Usage: " in answer.stdout
