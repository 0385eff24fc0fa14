"""Secrets and API tokens the local stack makes for itself when none are configured.

Kept in ``<state dir>/secrets.json`` (mode 0600) so the receiver and the sandboxes agree
across restarts; a configured ``STRIPE_WEBHOOK_SECRET`` / ``PAYPAL_WEBHOOK_ID`` /
``ADYEN_HMAC_KEY`` / ``REFUNDS_SHOP_WEBHOOK_SECRET`` / ``REFUNDS_API_TOKENS`` always wins.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class LocalSecrets:
    stripe_webhook_secret: str
    shop_webhook_secret: str
    api_tokens: str  # token:role:identity, comma-separated
    paypal_webhook_id: str = ""
    adyen_hmac_key: str = ""  # hex, as Adyen's Customer Area shows it

    @classmethod
    def load_or_create(cls, state_dir: Path) -> LocalSecrets:
        path = state_dir / "secrets.json"
        try:
            kept = cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            kept = None
        if kept is not None and kept.paypal_webhook_id and kept.adyen_hmac_key:
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
        # A state folder from before PayPal and Adyen keeps its other secrets.
        made = replace(
            made,
            paypal_webhook_id=made.paypal_webhook_id or f"WH-LOCAL-{secrets.token_hex(8).upper()}",
            adyen_hmac_key=made.adyen_hmac_key or secrets.token_hex(32).upper(),
        )
        state_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(made), indent=2))
        os.chmod(path, 0o600)
        return made
