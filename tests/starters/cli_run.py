"""Run the installed ``refunds`` command as a user would, in its own process."""

from __future__ import annotations

import os
import subprocess
import sys

# Settings the developer running the tests may have exported: each test sets its own.
PROVIDER_AND_SERVICE_PREFIXES = ("REFUNDS_", "STRIPE_", "PAYPAL_", "ADYEN_")


def refunds(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(PROVIDER_AND_SERVICE_PREFIXES)
    }
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "starters.cli", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        input=stdin,
    )
