"""Secrets and API tokens the local stack makes for itself when none are configured.

Kept in ``<state dir>/secrets.json`` (mode 0600) so the receiver and the sandbox agree across
restarts; a configured ``STRIPE_WEBHOOK_SECRET`` / ``REFUNDS_SHOP_WEBHOOK_SECRET`` /
``REFUNDS_API_TOKENS`` always wins.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class LocalSecrets:
    stripe_webhook_secret: str
    shop_webhook_secret: str
    api_tokens: str  # token:role:identity, comma-separated

    @classmethod
    def load_or_create(cls, state_dir: Path) -> LocalSecrets:
        path = state_dir / "secrets.json"
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            pass
        made = cls(
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
        state_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(made), indent=2))
        os.chmod(path, 0o600)
        return made
