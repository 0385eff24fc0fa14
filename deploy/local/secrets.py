"""Secrets and API tokens the local stack makes for itself when none are configured.

Kept in ``<state dir>/secrets.json`` (mode 0600) so the receiver and the sandboxes agree
across restarts; a configured ``STRIPE_WEBHOOK_SECRET`` / ``PAYPAL_WEBHOOK_ID`` /
``ADYEN_HMAC_KEY`` / ``REFUNDS_SHOP_WEBHOOK_SECRET`` / ``REFUNDS_API_TOKENS`` /
``REFUNDS_ENCRYPTION_KEYS`` always wins.

The payload encryption key is made once and kept: histories encrypted under it must stay
readable across restarts of ``refunds dev``.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class LocalSecrets:
    stripe_webhook_secret: str
    shop_webhook_secret: str
    api_tokens: str  # token:role:identity, comma-separated
    paypal_webhook_id: str = ""
    adyen_hmac_key: str = ""  # hex, as Adyen's Customer Area shows it
    encryption_key: str = field(default="", repr=False)  # id:base64key (REFUNDS_ENCRYPTION_KEYS)

    @classmethod
    def load_or_create(cls, state_dir: Path) -> LocalSecrets:
        path = state_dir / "secrets.json"
        try:
            kept = cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            kept = None
        if (
            kept is not None
            and kept.paypal_webhook_id
            and kept.adyen_hmac_key
            and kept.encryption_key
        ):
            return kept
        made = kept or cls(
            stripe_webhook_secret=f"whsec_{secrets.token_hex(16)}",
            shop_webhook_secret=f"shop_{secrets.token_hex(16)}",
            api_tokens=",".join(
                f"{secrets.token_urlsafe(18)}:{role}:{identity}"
                for role, identity in (
                    ("requester", "requester@local"),
                    ("reviewer", "reviewer@local"),
                    ("reviewer", "second-reviewer@local"),
                    ("admin", "admin@local"),
                )
            ),
        )
        # A state folder from before PayPal, Adyen or encryption keeps its other secrets.
        made = replace(
            made,
            paypal_webhook_id=made.paypal_webhook_id or f"WH-LOCAL-{secrets.token_hex(8).upper()}",
            adyen_hmac_key=made.adyen_hmac_key or secrets.token_hex(32).upper(),
            encryption_key=made.encryption_key or new_encryption_key(),
        )
        state_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(made), indent=2))
        os.chmod(path, 0o600)
        return made


def new_encryption_key() -> str:
    """A fresh AES-256 ``id:base64key`` entry, its id dated so a rotation shows its age."""
    key_id = f"local-{datetime.now(UTC):%Y%m%d}"
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(32)).decode()}"
