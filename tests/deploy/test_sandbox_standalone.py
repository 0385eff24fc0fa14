"""Each sandbox runs on its own (`python -m deploy.sandboxes.<provider>_sandbox`) until Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest


@pytest.mark.parametrize("provider", ["stripe", "paypal", "adyen"])
def test_a_sandbox_runs_alone_and_stops_on_ctrl_c(provider: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFUNDS_SANDBOX")}
    sandbox = subprocess.Popen(
        [sys.executable, "-m", f"deploy.sandboxes.{provider}_sandbox", "--port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert sandbox.stdout is not None
        first = sandbox.stdout.readline().strip()  # "<Provider> sandbox on http://..."
        assert " sandbox on http://127.0.0.1:" in first, (
            sandbox.stderr.read() if sandbox.stderr else ""
        )
        base = first.rsplit(" ", 1)[1]
        root = base.removesuffix("/v72")
        answer = httpx.get(f"{root}/_sandbox/faults", timeout=10)
        assert answer.status_code == 200 and "rules" in answer.json()
        sandbox.send_signal(signal.SIGINT)
        assert sandbox.wait(timeout=20) == 0
    finally:
        if sandbox.poll() is None:
            sandbox.kill()
            sandbox.wait(10)
