"""Operations settings: payload encryption keys, the codec server, metrics, traces and logs.

Read with the rest of ``Settings`` once at start; a bad value names its variable, and keys
and tokens stay out of reprs.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field

AES_KEY_SIZES = (16, 24, 32)  # AES-128, AES-192, AES-256


class OpsSettingsError(ValueError):
    """An operations setting is invalid; the message names the variable."""


def _text(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name, "").strip() or None


def _flag(env: Mapping[str, str], name: str) -> bool:
    text = (_text(env, name) or "false").lower()
    if text not in ("true", "false", "1", "0", "yes", "no"):
        raise OpsSettingsError(f"{name} must be true or false, got {text!r}")
    return text in ("true", "1", "yes")


def parse_encryption_keys(text: str | None) -> tuple[tuple[str, bytes], ...]:
    """``REFUNDS_ENCRYPTION_KEYS``: ``id:base64key`` entries, comma-separated, the first one
    encrypting and every one decrypting (so keys rotate without breaking refunds in flight).
    Errors name the entry's position and id, never the key."""
    keys: list[tuple[str, bytes]] = []
    entries = [entry.strip() for entry in (text or "").split(",") if entry.strip()]
    for number, entry in enumerate(entries, start=1):
        key_id, sep, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not sep or not key_id or not encoded.strip():
            raise OpsSettingsError(f"REFUNDS_ENCRYPTION_KEYS: entry {number} is not id:base64key")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise OpsSettingsError(
                f"REFUNDS_ENCRYPTION_KEYS: key {key_id!r} is not base64"
            ) from None
        if len(key) not in AES_KEY_SIZES:
            raise OpsSettingsError(
                f"REFUNDS_ENCRYPTION_KEYS: key {key_id!r} is {len(key)} bytes; AES-GCM takes "
                "16, 24 or 32 (make one with: openssl rand -base64 32)"
            )
        if any(known == key_id for known, _ in keys):
            raise OpsSettingsError(f"REFUNDS_ENCRYPTION_KEYS: key id {key_id!r} appears twice")
        keys.append((key_id, key))
    return tuple(keys)


def format_encryption_keys(keys: tuple[tuple[str, bytes], ...]) -> str:
    """The keys as REFUNDS_ENCRYPTION_KEYS writes them (for a child process's environment)."""
    return ",".join(f"{key_id}:{base64.b64encode(key).decode()}" for key_id, key in keys)


@dataclass(frozen=True)
class OpsSettings:
    encryption_keys: tuple[tuple[str, bytes], ...] = field(default=(), repr=False)
    # A worker or API without keys refuses to start unless this says it may run unencrypted.
    allow_unencrypted: bool = False
    metrics_address: str | None = "127.0.0.1:9464"  # REFUNDS_METRICS_ADDRESS; "off": none
    codec_address: str = "127.0.0.1:8081"
    codec_token: str | None = field(default=None, repr=False)  # bearer token for /decode
    codec_cors_origins: tuple[str, ...] = ("http://127.0.0.1:8233", "http://localhost:8233")
    log_format: str = "auto"  # json | plain | auto (plain in a terminal, JSON otherwise)
    trace_console: bool = False  # print spans to the console (refunds dev --trace-console)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OpsSettings:
        metrics = _text(env, "REFUNDS_METRICS_ADDRESS") or cls.metrics_address
        origins = _text(env, "REFUNDS_CODEC_CORS_ORIGINS")
        settings = cls(
            encryption_keys=parse_encryption_keys(_text(env, "REFUNDS_ENCRYPTION_KEYS")),
            allow_unencrypted=_flag(env, "REFUNDS_ALLOW_UNENCRYPTED"),
            metrics_address=None if (metrics or "").lower() == "off" else metrics,
            codec_address=_text(env, "REFUNDS_CODEC_ADDRESS") or cls.codec_address,
            codec_token=_text(env, "REFUNDS_CODEC_TOKEN"),
            codec_cors_origins=tuple(o.strip() for o in origins.split(",") if o.strip())
            if origins
            else cls.codec_cors_origins,
            log_format=(_text(env, "REFUNDS_LOG_FORMAT") or "auto").lower(),
            trace_console=_flag(env, "REFUNDS_TRACE_CONSOLE"),
        )
        settings.check()
        return settings

    def check(self) -> None:
        if self.log_format not in ("json", "plain", "auto"):
            raise OpsSettingsError(
                f"REFUNDS_LOG_FORMAT must be json, plain or auto, got {self.log_format!r}"
            )
        for name, address in (
            ("REFUNDS_METRICS_ADDRESS", self.metrics_address),
            ("REFUNDS_CODEC_ADDRESS", self.codec_address),
        ):
            host, sep, port = (address or "h:0").rpartition(":")
            if not (sep and host and port.isdigit() and int(port) <= 65535):
                raise OpsSettingsError(f"{name} must be host:port, got {address!r}")
        for origin in self.codec_cors_origins:
            if not origin.startswith(("http://", "https://")):
                raise OpsSettingsError(
                    f"REFUNDS_CODEC_CORS_ORIGINS: {origin!r} is not an http(s) origin"
                )

    @property
    def encrypted(self) -> bool:
        return bool(self.encryption_keys)
