"""Secrets and API tokens the local stack makes for itself when none are configured.

Kept in ``<state dir>/secrets.json`` (mode 0600, written atomically) so the receiver and the
sandboxes agree across restarts; a configured ``STRIPE_WEBHOOK_SECRET`` /
``PAYPAL_WEBHOOK_ID`` / ``ADYEN_HMAC_KEY`` / ``REFUNDS_SHOP_WEBHOOK_SECRET`` /
``REFUNDS_API_TOKENS`` / ``REFUNDS_ENCRYPTION_KEYS`` always wins.

The payload encryption key is made once and kept: histories encrypted under it must stay
readable across restarts of ``refunds dev``. So a file that exists but cannot be read as these
secrets is an error (``LocalSecretsError``), never a reason to make new ones; fields this
version does not know are ignored (and kept when the file is rewritten), and fields newer
than the file are added to it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FILE_NAME = "secrets.json"
FILE_MODE = 0o600


class LocalSecretsError(ValueError):
    """The state folder's secrets file exists but cannot be used; the message names it."""


@dataclass(frozen=True)
class LocalSecrets:
    # Every field is a secret (or identifies one): none of them appears in repr().
    stripe_webhook_secret: str = field(repr=False)
    shop_webhook_secret: str = field(repr=False)
    api_tokens: str = field(repr=False)  # token:role:identity, comma-separated
    paypal_webhook_id: str = field(default="", repr=False)
    adyen_hmac_key: str = field(default="", repr=False)  # hex, as Adyen's Customer Area shows it
    encryption_key: str = field(default="", repr=False)  # id:base64key (REFUNDS_ENCRYPTION_KEYS)

    @classmethod
    def load_or_create(cls, state_dir: Path) -> LocalSecrets:
        path = state_dir / FILE_NAME
        stored = _read(path)
        kept = None if stored is None else _from_fields(path, stored)
        if (
            kept is not None
            and kept.paypal_webhook_id
            and kept.adyen_hmac_key
            and kept.encryption_key
        ):
            if path.stat().st_mode & 0o077:  # a file from before it was made 0600
                os.chmod(path, FILE_MODE)
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
        # Fields a newer version wrote are kept for it.
        _write_atomically(path, {**(stored or {}), **asdict(made)})
        return made


def _unreadable(path: Path, why: str) -> LocalSecretsError:
    return LocalSecretsError(
        f"{path} is not readable as the local stack's secrets ({why}); fix it or move it away "
        "(the encryption key in it decrypts this stack's histories)"
    )


def _read(path: Path) -> dict[str, Any] | None:
    """The file's JSON object, or None when there is no file yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise _unreadable(path, why) from exc
    try:
        stored = json.loads(text)
    except ValueError as exc:
        raise _unreadable(path, f"not JSON: {exc}") from None
    if not isinstance(stored, dict):
        raise _unreadable(path, "not a JSON object")
    return stored


def _from_fields(path: Path, stored: dict[str, Any]) -> LocalSecrets:
    """The secrets in ``stored``; fields it lacks that came later default to empty (made
    afresh by the caller), fields this version does not know are ignored."""
    known = {}
    for spec in fields(LocalSecrets):
        if spec.name not in stored:
            if spec.default is not MISSING:  # a later field, with a default
                continue
            raise _unreadable(path, f"no {spec.name!r}")
        value = stored[spec.name]
        if not isinstance(value, str):
            raise _unreadable(path, f"{spec.name!r} is not a string")
        known[spec.name] = value
    return LocalSecrets(**known)


def _write_atomically(path: Path, content: dict[str, Any]) -> None:
    """Write ``content`` to ``path`` as JSON: to a 0600 file in the same folder, synced, then
    renamed over it, so the file is never half-written nor readable by others."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(json.dumps(content, indent=2))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a crash too
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def new_encryption_key() -> str:
    """A fresh AES-256 ``id:base64key`` entry, its id dated so a rotation shows its age."""
    key_id = f"local-{datetime.now(UTC):%Y%m%d}"
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(32)).decode()}"
