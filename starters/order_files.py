"""Order files for ``refunds orders import``: JSON (``Order`` objects) or CSV (a row per line).

JSON: a list of orders, or ``{"orders": [...]}``, each the ``Order`` JSON of the contract.

CSV: a header row, then one row per order line; the order's own columns are repeated on each of
its rows (a blank cell on a later row means "as above"). Amounts are whole minor units
(``1999`` is 19.99 USD, ``1999`` is 1.999 KWD, ``1999`` is 1999 JPY). Rates are decimals
(``0.0725``) or percentages (``7.25%``). A tax with a rate but no amount is charged
``round_half_up(net x rate)`` once, here, and stored: the line's net is its price after its
discount; the shipping's is the shipping amount.

    order_id, psp, payment_id, currency                  required, the order's
    customer_id, placed_at (ISO 8601; no zone: UTC)      optional, the order's
    shipping_amount                                      optional, the order's (default 0)
    shipping_tax1_jurisdiction, shipping_tax1_rate, shipping_tax1_amount, shipping_tax2_...
    line_id, sku, quantity, unit_price                   required, the line's
    discount                                             optional, for the whole line
    tax1_jurisdiction, tax1_rate, tax1_amount, tax2_jurisdiction, tax2_rate, tax2_amount

Every problem of a file is reported, each naming the row (or the order) and the field, before
anything is stored.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from workflows.currencies import is_known_currency
from workflows.orders import Order
from workflows.quotes import tax_as_charged

MAX_PROBLEMS = 20
TAXES_PER_LINE = 2


def _tax_columns(prefix: str) -> tuple[str, ...]:
    return tuple(
        f"{prefix}tax{n}_{part}"
        for n in range(1, TAXES_PER_LINE + 1)
        for part in ("jurisdiction", "rate", "amount")
    )


ORDER_COLUMNS = (
    "order_id",
    "psp",
    "payment_id",
    "currency",
    "customer_id",
    "placed_at",
    "shipping_amount",
    *_tax_columns("shipping_"),
)
LINE_COLUMNS = ("line_id", "sku", "quantity", "unit_price", "discount", *_tax_columns(""))
REQUIRED = ("order_id", "psp", "payment_id", "currency", "line_id", "sku", "quantity", "unit_price")
_WHOLE = re.compile(r"^[+-]?\d+$")


class OrderFileError(Exception):
    """The file cannot be imported; ``problems`` names each row or order and field."""

    def __init__(self, name: str, problems: list[str]) -> None:
        shown = problems[:MAX_PROBLEMS]
        more = len(problems) - len(shown)
        text = "\n".join(f"  {problem}" for problem in shown)
        if more:
            text += f"\n  ... and {more} more"
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        super().__init__(f"{name}: nothing imported, {count}:\n{text}")
        self.problems = problems


def read_orders(name: str, text: str, kind: str = "auto") -> list[Order]:
    """The orders of a file's ``text``; ``kind`` json, csv or auto (by name, then content)."""
    if kind == "auto":
        lowered = name.lower()
        if lowered.endswith(".json"):
            kind = "json"
        elif lowered.endswith(".csv"):
            kind = "csv"
        else:
            kind = "json" if text.lstrip()[:1] in ("[", "{") else "csv"
    orders = orders_from_json(name, text) if kind == "json" else orders_from_csv(name, text)
    if not orders:
        raise OrderFileError(name, ["the file holds no orders"])
    return orders


def orders_from_json(name: str, text: str) -> list[Order]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OrderFileError(name, [f"not valid JSON: {exc}"]) from exc
    if isinstance(data, dict) and isinstance(data.get("orders"), list):
        data = data["orders"]
    if not isinstance(data, list):
        raise OrderFileError(name, ['expected a list of orders, or {"orders": [...]}'])
    orders: list[Order] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for number, item in enumerate(data, start=1):
        order_id = item.get("order_id") if isinstance(item, dict) else None
        where = f"order #{number}" + (f" ({order_id})" if isinstance(order_id, str) else "")
        try:
            order = Order.model_validate(item)
        except ValidationError as exc:
            problems += [f"{where}: {text}" for text in _field_errors(exc)]
            continue
        problems += _order_problems(order, where, seen, number)
        orders.append(order)
    if problems:
        raise OrderFileError(name, problems)
    return orders


def _order_problems(order: Order, where: str, seen: dict[str, int], number: int) -> list[str]:
    problems = []
    if not is_known_currency(order.currency):
        problems.append(f"{where}: currency: {order.currency!r} is not an ISO 4217 code")
    if order.order_id in seen:
        problems.append(
            f"{where}: order_id: {order.order_id} is also order #{seen[order.order_id]}"
        )
    seen.setdefault(order.order_id, number)
    return problems


def _field_errors(exc: ValidationError) -> list[str]:
    return [
        f"{'.'.join(str(part) for part in error['loc']) or 'order'}: {error['msg']}"
        for error in exc.errors()
    ]


@dataclass
class _CsvOrder:
    rows: list[int] = field(default_factory=list)
    columns: dict[str, tuple[str, int]] = field(default_factory=dict)  # value, row it came from
    lines: list[tuple[int, dict[str, str]]] = field(default_factory=list)


def orders_from_csv(name: str, text: str) -> list[Order]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [column.strip() for column in reader.fieldnames or []]
    known = set(ORDER_COLUMNS) | set(LINE_COLUMNS)
    problems = [f"header: unknown column {c!r}" for c in header if c not in known]
    problems += [f"header: column {c!r} is missing" for c in REQUIRED if c not in header]
    if problems:
        raise OrderFileError(name, problems)
    grouped: dict[str, _CsvOrder] = {}
    for raw in reader:
        row_no = reader.line_num
        if None in raw:
            problems.append(f"row {row_no}: more cells than the header has columns")
            continue
        row = {key.strip(): (value or "").strip() for key, value in raw.items() if key}
        if not any(row.values()):
            continue
        order_id = row.get("order_id", "")
        if not order_id:
            problems.append(f"row {row_no}: order_id: required")
            continue
        entry = grouped.setdefault(order_id, _CsvOrder())
        entry.rows.append(row_no)
        for column in ORDER_COLUMNS:
            value = row.get(column, "")
            earlier = entry.columns.get(column)
            if value and earlier and earlier[0] != value:
                problems.append(
                    f"row {row_no} (order {order_id}): {column}: {value!r} here but "
                    f"{earlier[0]!r} on row {earlier[1]}; an order's columns agree on its rows"
                )
            elif value and not earlier:
                entry.columns[column] = (value, row_no)
        entry.lines.append((row_no, {c: row.get(c, "") for c in LINE_COLUMNS}))
    orders = []
    for order_id, entry in grouped.items():
        order = _csv_order(order_id, entry, problems)
        if order is not None:
            orders.append(order)
    if problems:
        raise OrderFileError(name, sorted(problems, key=_row_number))
    return orders


def _row_number(problem: str) -> int:
    number = problem.removeprefix("row ").partition(" ")[0]
    return int(number) if number.isdigit() else 0


def _csv_order(order_id: str, entry: _CsvOrder, problems: list[str]) -> Order | None:
    """The order of ``entry``'s rows, or None with what is wrong added to ``problems``."""
    columns = {column: value for column, (value, _) in entry.columns.items()}
    first = entry.rows[0]
    found: list[str] = []

    def where(row: int, line_id: str | None = None) -> str:
        return f"row {row} (order {order_id}" + (f", line {line_id})" if line_id else ")")

    lines, cells_of = [], []
    for row_no, cells in entry.lines:
        cell = _Cells(cells, where(row_no, cells["line_id"] or None), found)
        quantity, price = cell.whole("quantity"), cell.whole("unit_price")
        discount = cell.whole("discount", 0)
        net = (quantity or 0) * (price or 0) - (discount or 0)
        taxes = cell.taxes("", net)
        lines.append(
            {
                "line_id": cells["line_id"],
                "sku": cells["sku"],
                "quantity": quantity,
                "unit_price": price,
                "discount": discount,
                "taxes": taxes,
            }
        )
        cells_of.append(cell)
    order_cell = _Cells(columns, where(first), found)
    shipping = order_cell.whole("shipping_amount", 0) or 0
    currency = columns.get("currency", "")
    if currency and not is_known_currency(currency):
        found.append(f"{where(first)}: currency: {currency!r} is not an ISO 4217 code")
    data: dict[str, Any] = {
        "order_id": order_id,
        "psp": columns.get("psp", ""),
        "payment_id": columns.get("payment_id", ""),
        "currency": currency,
        "customer_id": columns.get("customer_id") or None,
        "placed_at": columns.get("placed_at") or None,
        "lines": lines,
        "shipping": {"amount": shipping, "taxes": order_cell.taxes("shipping_", shipping)},
    }
    try:
        order = Order.model_validate(data)
    except ValidationError as exc:
        order = None
        for error in exc.errors():
            loc = [str(part) for part in error["loc"]]
            if loc[:1] == ["lines"] and len(loc) > 1 and loc[1].isdigit():
                cell = cells_of[int(loc[1])]
                if not cell.bad:  # a cell already reported makes the rest of its row noise
                    found.append(f"{cell.where}: {'.'.join(loc[2:]) or 'line'}: {error['msg']}")
            elif not (loc[:1] == ["shipping"] and order_cell.bad):
                found.append(f"{where(first)}: {'.'.join(loc) or 'order'}: {error['msg']}")
    problems += found
    return None if found else order


@dataclass
class _Cells:
    cells: dict[str, str]
    where: str
    problems: list[str]
    bad: bool = False

    def whole(self, column: str, default: int | None = None) -> int | None:
        value = self.cells.get(column, "")
        if not value:
            if default is None:
                self._problem(f"{column}: required")
            return default
        if not _WHOLE.match(value):
            self._problem(
                f"{column}: {value!r} is not a whole number of minor units (1999, not 19.99)"
            )
            return default
        return int(value)

    def taxes(self, prefix: str, net: int) -> list[dict[str, Any]]:
        taxes = []
        for n in range(1, TAXES_PER_LINE + 1):
            names = [f"{prefix}tax{n}_{part}" for part in ("jurisdiction", "rate", "amount")]
            jurisdiction, rate_text, amount_text = (self.cells.get(c, "") for c in names)
            if not (jurisdiction or rate_text or amount_text):
                continue
            if not jurisdiction or not rate_text:
                missing = names[0] if not jurisdiction else names[1]
                self._problem(f"{missing}: required for a tax")
                continue
            rate = self._rate(names[1], rate_text)
            if rate is None:
                continue
            amount = self.whole(names[2], tax_as_charged(max(net, 0), rate))
            taxes.append({"jurisdiction": jurisdiction, "rate": rate, "amount": amount})
        return taxes

    def _rate(self, column: str, text: str) -> Decimal | None:
        try:
            rate = Decimal(text.removesuffix("%"))
        except InvalidOperation:
            rate = None
        if rate is not None and text.endswith("%"):
            rate /= 100
        if rate is None or not rate.is_finite() or not 0 <= rate <= 1:
            self._problem(f"{column}: {text!r} is not a rate (0.0725 or 7.25%)")
            return None
        return rate

    def _problem(self, text: str) -> None:
        self.bad = True
        self.problems.append(f"{self.where}: {text}")
