"""The demo's summary: each refund as it ended, totals per currency and in the settlement
currency (with the FX gains and losses the ledger booked), the ledger's check, and the check
that each return of order lines refunded exactly its quote. ``--json`` prints the same object.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from activities.ledger import Ledger
from starters.demo_fx import fx_movements
from starters.demo_orders import lines_text, quote_problems
from workers.settings import Settings
from workers.worker import ledger_pool
from workflows.currencies import format_amount

if TYPE_CHECKING:
    from starters.demo import DemoRefund


async def demo_summary(
    settings: Settings, refunds: list[DemoRefund], seconds: float
) -> dict[str, Any]:
    async with ledger_pool(settings.require_database_url()) as pool:
        problems = await Ledger(pool).verify()
        booked = await fx_movements(pool, [r.request.request_id for r in refunds])
    settlement = settings.money.settlement_currency
    rows = [_row(r, booked.get(r.request.request_id), settlement) for r in refunds]
    statuses = Counter(row["status"] or "NOT_FINAL" for row in rows)
    whole_orders = {
        r.order.order_id: r.order.total for r in refunds if r.after is not None and r.order
    }
    mismatches = quote_problems(rows, whole_orders)
    return {
        "by_status": dict(sorted(statuses.items())),
        "ledger": {"verified": not problems, "problems": problems},
        "quotes": {
            "verified": not mismatches,
            "problems": mismatches,
            "line_refunds": sum(1 for row in rows if row["lines"] is not None),
        },
        "totals": _totals(rows, settlement),
        "seconds": round(seconds, 2),
        "unexpected": [
            {
                "request_id": r.request.request_id,
                "scenario": r.scenario.name,
                "expected": r.expected_status.value,
                "got": r.result.status.value if r.result else None,
            }
            for r in refunds
            if not r.as_expected
        ],
        "refunds": rows,
    }


def _row(r: DemoRefund, booked: dict[str, Any] | None, settlement: str | None) -> dict[str, Any]:
    result, currency = r.result, r.request.currency.upper()
    refunded = result.amount_refunded if result else 0
    value, fx = None, None
    if booked is not None:
        value, fx = booked["value_at_refund"], -booked["fx_difference"]
    elif settlement == currency:
        value, fx = refunded, 0
    return {
        "request_id": r.request.request_id,
        "scenario": r.scenario.name,
        "psp": r.request.psp.value,
        "status": result.status.value if result else None,
        "amount_refunded": refunded,
        "currency": r.request.currency,
        "risk_score": result.risk.score if result else None,
        "path": r.scenario.review or "auto",
        "reason": result.reason if result else (r.error or "did not finish in time"),
        "order_id": r.order.order_id if r.order else None,
        "lines": lines_text(r.quote) if r.quote else _asked_lines(r),
        "quote_total": r.quote.total if r.quote else None,
        "amount_asked": r.request.amount if r.scenario.returns_lines else None,
        "settlement_currency": settlement,
        "settlement_value": value,  # what the refund is worth in it, at the refund's rate
        "fx_gain_loss": fx,  # the ledger's FX booking: > 0 a gain, < 0 a loss
        "rates": None
        if booked is None
        else {
            "capture": str(booked["capture_rate"]),
            "refund": str(booked["refund_rate"]),
            "refund_source": booked["refund_rate_source"],
        },
    }


def _asked_lines(r: DemoRefund) -> str | None:
    if not r.scenario.returns_lines:
        return None
    return " ".join(f"{line}x{units}" for line, units in r.scenario.lines)


def _totals(rows: list[dict[str, Any]], settlement: str | None) -> dict[str, Any]:
    by_currency: Counter[str] = Counter()
    for row in rows:
        if row["amount_refunded"]:
            by_currency[row["currency"].upper()] += row["amount_refunded"]
    valued = [row for row in rows if row["amount_refunded"] and row["settlement_value"] is not None]
    fx = [row["fx_gain_loss"] for row in valued]
    return {
        "by_currency": dict(sorted(by_currency.items())),
        "settlement": None
        if settlement is None
        else {
            "currency": settlement,
            "value": sum(row["settlement_value"] for row in valued),
            "fx_gains": sum(v for v in fx if v > 0),
            "fx_losses": sum(v for v in fx if v < 0),
            # Foreign refunds the ledger did not value (a void converts nothing).
            "not_valued": sum(1 for row in rows if row["amount_refunded"]) - len(valued),
        },
    }


def demo_passed(summary: dict[str, Any]) -> bool:
    """Every refund final, the books verify, every return refunded exactly its quote."""
    return (
        "NOT_FINAL" not in summary["by_status"]
        and summary["ledger"]["verified"]
        and summary["quotes"]["verified"]
    )


def summary_table(summary: dict[str, Any]) -> str:
    settlement = (summary["totals"]["settlement"] or {}).get("currency")
    head = f"in {settlement}" if settlement else "settled"
    lines = [
        f"{'scenario':<22} {'path':<8} {'risk':>4} {'status':<10} {'refunded':>14}  "
        f"{'lines':<15} {'quote':>14} {head:>12} {'FX':>7}  reason"
    ]
    for row in summary["refunds"]:
        risk = "-" if row["risk_score"] is None else row["risk_score"]
        refunded = format_amount(row["amount_refunded"], row["currency"])
        quote = _money(row["quote_total"], row["currency"])
        foreign = settlement is not None and row["currency"].upper() != settlement
        value = _figure(row["settlement_value"], settlement) if foreign else ""
        fx = _figure(row["fx_gain_loss"], settlement, signed=True) if foreign else ""
        lines.append(
            f"{row['scenario']:<22} {row['path']:<8} {risk:>4} {row['status'] or '-':<10} "
            f"{refunded:>14}  {row['lines'] or '':<15} {quote:>14} {value:>12} {fx:>7}  "
            f"{row['reason'] or ''}"
        )
    lines.append("")
    lines.append("by status: " + ", ".join(f"{k} {v}" for k, v in summary["by_status"].items()))
    lines.extend(_total_lines(summary["totals"]))
    ledger, quotes = summary["ledger"], summary["quotes"]
    lines.append("ledger: " + ("verifies" if ledger["verified"] else "; ".join(ledger["problems"])))
    lines.append(
        "quotes: "
        + (
            f"each of {quotes['line_refunds']} line-item refunds agrees with its quote "
            "to the minor unit"
            if quotes["verified"]
            else "; ".join(quotes["problems"])
        )
    )
    lines.append(f"{len(summary['refunds'])} refunds in {summary['seconds']}s")
    return "\n".join(lines)


def _total_lines(totals: dict[str, Any]) -> list[str]:
    refunded = ", ".join(format_amount(v, c) for c, v in totals["by_currency"].items())
    lines = [f"refunded: {refunded or 'nothing'}"]
    settled = totals["settlement"]
    if settled is not None:
        money = settled["currency"]
        text = (
            f"in {money}: {format_amount(settled['value'], money)} "
            f"(FX gains {format_amount(settled['fx_gains'], money)}, "
            f"losses {format_amount(-settled['fx_losses'], money)})"
        )
        if settled["not_valued"]:
            text += f"; {settled['not_valued']} not converted (voids)"
        lines.append(text)
    return lines


def _money(amount: int | None, currency: str) -> str:
    return "" if amount is None else format_amount(amount, currency)


def _figure(amount: int | None, currency: str | None, signed: bool = False) -> str:
    """The amount without its currency code (the column names it); ``+`` on a gain."""
    if amount is None or currency is None:
        return ""
    return ("+" if signed and amount > 0 else "") + format_amount(amount, currency).rsplit(" ")[0]
