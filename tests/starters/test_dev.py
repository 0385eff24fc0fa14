"""``refunds dev``: comes up, survives a crash of its own process, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.starters.cli_run import PROVIDER_AND_SERVICE_PREFIXES
from tests.starters.test_demo import stack_env


def start_dev(env: dict[str, str]) -> subprocess.Popen[str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(PROVIDER_AND_SERVICE_PREFIXES)
    }
    environment.update(env)
    return subprocess.Popen(
        [sys.executable, "-m", "starters.cli", "dev"],
        env=environment,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_for_stack(state_dir: Path, dev: subprocess.Popen[str]) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stack_file = state_dir / "stack.json"
        if stack_file.exists():
            stack: dict[str, object] = json.loads(stack_file.read_text())
            if stack["pid"] == dev.pid:
                return stack
        assert dev.poll() is None, dev.stdout.read() if dev.stdout else ""
        time.sleep(0.2)
    raise AssertionError("refunds dev did not come up within 60 s")


def temporal_servers_for(state_dir: Path) -> list[str]:
    listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [
        line
        for line in listing.splitlines()
        if "start-dev" in line and str(state_dir / "temporal.db") in line
    ]


def postgres_servers_for(state_dir: Path) -> list[str]:
    listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [
        line
        for line in listing.splitlines()
        if "bin/postgres" in line and str(state_dir / "postgres") in line
    ]


def test_dev_restarts_after_a_crash_and_stops_cleanly(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    env = stack_env(state_dir)
    crashed = start_dev(env)
    dev: subprocess.Popen[str] | None = None
    try:
        wait_for_stack(state_dir, crashed)
        crashed.kill()  # as a crash would: no cleanup at all
        crashed.wait(10)
        deadline = time.monotonic() + 10
        while temporal_servers_for(state_dir) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert temporal_servers_for(state_dir) == [], "the Temporal server outlived its parent"

        dev = start_dev(env)
        stack = wait_for_stack(state_dir, dev)
        assert stack["temporal_address"] == env["TEMPORAL_ADDRESS"]
        # All three providers' sandboxes, on the ports asked for.
        assert stack["paypal_api_base"] == f"http://127.0.0.1:{env['REFUNDS_PAYPAL_SANDBOX_PORT']}"
        adyen_port = env["REFUNDS_ADYEN_SANDBOX_PORT"]
        assert stack["adyen_checkout_base"] == f"http://127.0.0.1:{adyen_port}/v72"
        dev.send_signal(signal.SIGINT)
        output, _ = dev.communicate(timeout=60)
        assert dev.returncode == 0, output
        assert f"export PAYPAL_API_BASE={stack['paypal_api_base']}" in output
        assert f"export ADYEN_CHECKOUT_BASE={stack['adyen_checkout_base']}" in output
        assert "stopped" in output
        assert not (state_dir / "stack.json").exists()
        assert temporal_servers_for(state_dir) == []
        assert postgres_servers_for(state_dir) == [], "PostgreSQL outlived the clean stop"
    finally:
        for process in (crashed, dev):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)


def test_a_port_taken_stops_dev_at_once_naming_its_setting(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    env = stack_env(state_dir)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env["REFUNDS_CODEC_ADDRESS"] = f"127.0.0.1:{taken.getsockname()[1]}"
        started = time.monotonic()
        dev = start_dev(env)
        output, _ = dev.communicate(timeout=90)
    assert dev.returncode == 1, output
    assert "(REFUNDS_CODEC_ADDRESS)" in output and "address already in use" in output
    assert time.monotonic() - started < 60, "it waited for a timeout instead of failing"
    assert temporal_servers_for(state_dir) == [], "the stack was not taken down"
