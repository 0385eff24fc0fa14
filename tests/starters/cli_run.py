"""Run the installed ``refunds`` command as a user would, in its own process.

Every test runs with encrypted payloads, as production does: the fixtures' clients and
workers use ``TEST_ENCRYPTION_KEYS``, and so does every ``refunds`` process unless the test
sets ``REFUNDS_ENCRYPTION_KEYS`` (or ``REFUNDS_ALLOW_UNENCRYPTED``) itself.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys

# Settings the developer running the tests may have exported: each test sets its own.
PROVIDER_AND_SERVICE_PREFIXES = ("REFUNDS_", "STRIPE_", "PAYPAL_", "ADYEN_")

# A fixed AES-256 key (32 bytes of 0x42): tests only, never a real deployment's.
TEST_KEY_ID = "test-key-1"
TEST_KEY = bytes([0x42]) * 32
TEST_ENCRYPTION_KEYS = f"{TEST_KEY_ID}:{base64.b64encode(TEST_KEY).decode()}"


def encryption_env(env: dict[str, str] | None) -> dict[str, str]:
    """The test key, unless the test chose its own keys or to run unencrypted."""
    chosen = env or {}
    if "REFUNDS_ENCRYPTION_KEYS" in chosen or "REFUNDS_ALLOW_UNENCRYPTED" in chosen:
        return {}
    return {"REFUNDS_ENCRYPTION_KEYS": TEST_ENCRYPTION_KEYS}


def refunds(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(PROVIDER_AND_SERVICE_PREFIXES)
    }
    environment.update(encryption_env(env))
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "starters.cli", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        input=stdin,
    )
