"""End to end: ``refunds demo`` brings up the embedded stack and every refund ends as it should."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from tests.starters.cli_run import refunds

PSPS = ("stripe", "paypal", "adyen")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stack_env(state_dir: Path) -> dict[str, str]:
    """A stack of its own: fresh state and free ports, so a developer's `refunds dev` is safe."""
    return {
        "REFUNDS_STATE_DIR": str(state_dir),
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "REFUNDS_TEMPORAL_UI_PORT": "0",
        "REFUNDS_STRIPE_SANDBOX_PORT": str(free_port()),
        "REFUNDS_PAYPAL_SANDBOX_PORT": str(free_port()),
        "REFUNDS_ADYEN_SANDBOX_PORT": str(free_port()),
        "REFUNDS_HTTP_ADDRESS": f"127.0.0.1:{free_port()}",
        "REFUNDS_CODEC_ADDRESS": f"127.0.0.1:{free_port()}",
        "REFUNDS_METRICS_ADDRESS": f"127.0.0.1:{free_port()}",
    }


def test_demo_of_every_scenario_ends_every_refund_and_the_books_verify(tmp_path: Path) -> None:
    env = stack_env(tmp_path / "state")
    answer = refunds("demo", "--json", env=env, timeout=240)
    assert answer.returncode == 0, answer.stderr[-3000:]
    summary = json.loads(answer.stdout)
    assert summary["ledger"] == {"verified": True, "problems": []}
    assert summary["unexpected"] == []
    # By default one refund per scenario: every path, reviewed ones included.
    assert summary["by_status"] == {"EXPIRED": 1, "REJECTED": 5, "SUCCEEDED": 16}
    by_psp = {psp: {r["status"] for r in summary["refunds"] if r["psp"] == psp} for psp in PSPS}
    assert by_psp == {
        "stripe": {"SUCCEEDED", "REJECTED", "EXPIRED"},
        "paypal": {"SUCCEEDED"},
        "adyen": {"SUCCEEDED", "REJECTED"},
    }
    paths = {row["scenario"]: row for row in summary["refunds"]}
    assert paths["dual approval"]["status"] == "SUCCEEDED"
    assert paths["approved for less"]["amount_refunded"] == 50_000
    assert paths["rejected in review"]["reason"] == (
        "rejected by ana@finance.example: item came back damaged"
    )
    assert paths["review expires"]["status"] == "EXPIRED"
    assert paths["high value, approved"]["path"] == "approve"
    # The sandbox answers "pending", settles 10 s later and says so by signed webhook.
    assert paths["settled by webhook"]["status"] == "SUCCEEDED"
    assert paths["PayPal pending refund"]["status"] == "SUCCEEDED"
    assert paths["Adyen cancel"]["amount_refunded"] == 3300  # by its CANCELLATION notification
    assert paths["PayPal partial refund"]["amount_refunded"] == 2500
    assert summary["seconds"] > 0
    assert not (tmp_path / "state" / "stack.json").exists(), "the stack cleaned up after itself"


def test_demo_through_a_faulty_provider_still_refunds_each_payment_once(tmp_path: Path) -> None:
    env = stack_env(tmp_path / "state")
    env["REFUNDS_SANDBOX_FAULTS"] = "error_rate=0.2,drop_rate=0.1,latency=20ms,seed=11"
    answer = refunds("demo", "--count", "8", "--json", env=env, timeout=240)
    assert answer.returncode == 0, answer.stderr[-3000:]
    summary = json.loads(answer.stdout)
    assert summary["unexpected"] == []
    assert summary["by_status"] == {"SUCCEEDED": 8}  # Stripe, PayPal and Adyen, faults and all
    assert summary["ledger"]["verified"]
    refunded = {row["scenario"]: row["amount_refunded"] for row in summary["refunds"]}
    assert refunded["full refund"] == 4999, "a dropped answer was not turned into a second refund"
    assert refunded["PayPal full refund"] == 4200
    assert refunded["Adyen full refund"] == 5100
    assert refunded["partial refund"] == 3500
