"""One typed settings object, read from the environment once at process start.

Workflows never read it; activities get what they need through the objects built from it.
A missing or invalid value stops the process at start with a message naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from activities.risk import RiskPolicy, RiskPolicyError
from workers.money_settings import MoneySettings, MoneySettingsError
from workers.ops_settings import OpsSettings, OpsSettingsError
from workers.provider_settings import (
    DEFAULT_RATE_LIMITS,
    AdyenSettings,
    PayPalSettings,
    ProviderSettingsError,
    rate_limits_from_env,
    worker_queues_from_text,
)
from workflows.models import Psp


class SettingsError(Exception):
    """A setting is missing or invalid; the message names the variable."""


API_ROLES = ("requester", "reviewer", "admin")


@dataclass(frozen=True)
class ApiToken:
    """One ``token:role:identity`` entry of REFUNDS_API_TOKENS; the token stays out of reprs."""

    token: str = field(repr=False)
    role: str
    identity: str


@dataclass(frozen=True)
class Settings:
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "refunds"
    database_url: str | None = field(default=None, repr=False)
    state_dir: Path = Path(".refunds")
    stripe_api_key: str | None = field(default=None, repr=False)
    stripe_api_base: str | None = None
    stripe_webhook_secret: str | None = field(default=None, repr=False)  # comma: rotation
    shop_webhook_secret: str | None = field(default=None, repr=False)  # comma: rotation
    efw_policy: str = "refund"  # refund | review | ignore: early fraud warnings
    risk_policy: RiskPolicy = field(default_factory=RiskPolicy)
    risk_model: Path | None = None
    event_subscribers: tuple[str, ...] = ()
    events_secret: str | None = field(default=None, repr=False)
    http_address: str = "127.0.0.1:8000"
    api_tokens: tuple[ApiToken, ...] = field(default=(), repr=False)
    paypal: PayPalSettings = field(default_factory=PayPalSettings)
    adyen: AdyenSettings = field(default_factory=AdyenSettings)
    provider_rate_limits: Mapping[Psp, float] = field(
        default_factory=lambda: dict(DEFAULT_RATE_LIMITS)
    )
    worker_queues: tuple[str, ...] = ("refunds", "stripe", "paypal", "adyen")
    ops: OpsSettings = field(default_factory=OpsSettings)
    money: MoneySettings = field(default_factory=MoneySettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def text(name: str, default: str | None = None) -> str | None:
            value = env.get(name, "").strip()
            return value or default

        try:
            providers: dict[str, object] = {
                "paypal": PayPalSettings.from_env(env),
                "adyen": AdyenSettings.from_env(env),
                "provider_rate_limits": rate_limits_from_env(env),
                "worker_queues": worker_queues_from_text(env.get("REFUNDS_WORKER_QUEUES")),
                "ops": OpsSettings.from_env(env),
                "money": MoneySettings.from_env(env),
            }
        except (ProviderSettingsError, OpsSettingsError, MoneySettingsError) as exc:
            raise SettingsError(str(exc)) from exc
        settings = cls(
            temporal_address=text("TEMPORAL_ADDRESS", cls.temporal_address) or "",
            temporal_namespace=text("TEMPORAL_NAMESPACE", cls.temporal_namespace) or "",
            task_queue=text("REFUNDS_TASK_QUEUE", cls.task_queue) or "",
            database_url=text("REFUNDS_DATABASE_URL"),
            state_dir=Path(text("REFUNDS_STATE_DIR", ".refunds") or ".refunds"),
            stripe_api_key=text("STRIPE_API_KEY"),
            stripe_api_base=text("STRIPE_API_BASE"),
            stripe_webhook_secret=text("STRIPE_WEBHOOK_SECRET"),
            shop_webhook_secret=text("REFUNDS_SHOP_WEBHOOK_SECRET"),
            efw_policy=(text("REFUNDS_EFW_POLICY", "refund") or "refund").lower(),
            risk_policy=_risk_policy(env),
            risk_model=Path(model) if (model := text("REFUNDS_RISK_MODEL")) else None,
            event_subscribers=tuple(
                url.strip()
                for url in (text("REFUNDS_EVENT_SUBSCRIBERS") or "").split(",")
                if url.strip()
            ),
            events_secret=text("REFUNDS_EVENTS_SECRET"),
            http_address=text("REFUNDS_HTTP_ADDRESS", cls.http_address) or "",
            api_tokens=_api_tokens(env),
            **providers,  # type: ignore[arg-type]
        )
        settings.check()
        return settings

    def check(self) -> None:
        if ":" not in self.temporal_address:
            raise SettingsError(
                f"TEMPORAL_ADDRESS must be host:port, got {self.temporal_address!r}"
            )
        if self.database_url and not self.database_url.startswith(("postgres://", "postgresql://")):
            raise SettingsError("REFUNDS_DATABASE_URL must be a postgresql:// URL")
        if self.stripe_api_base and not self.stripe_api_base.startswith(("http://", "https://")):
            raise SettingsError(
                f"STRIPE_API_BASE must be an http(s) URL, got {self.stripe_api_base!r}"
            )
        if self.efw_policy not in ("refund", "review", "ignore"):
            raise SettingsError(
                f"REFUNDS_EFW_POLICY must be refund, review or ignore, got {self.efw_policy!r}"
            )
        for url in self.event_subscribers:
            if not url.startswith(("http://", "https://")):
                raise SettingsError(f"REFUNDS_EVENT_SUBSCRIBERS: {url!r} is not an http(s) URL")
        if self.event_subscribers and not self.events_secret:
            raise SettingsError(
                "REFUNDS_EVENTS_SECRET must be set when REFUNDS_EVENT_SUBSCRIBERS is: "
                "every event is signed"
            )
        if self.stripe_api_key and not self.stripe_api_key.startswith(("sk_", "rk_")):
            raise SettingsError("STRIPE_API_KEY must be a Stripe secret key (sk_... or rk_...)")
        try:
            http_host_port(self.http_address)
        except ValueError as exc:
            raise SettingsError(f"REFUNDS_HTTP_ADDRESS {exc}") from exc

    @property
    def stripe_webhook_secrets(self) -> tuple[str, ...]:
        return _secrets(self.stripe_webhook_secret)

    @property
    def shop_webhook_secrets(self) -> tuple[str, ...]:
        return _secrets(self.shop_webhook_secret)

    def require_database_url(self) -> str:
        if not self.database_url:
            raise SettingsError(
                "REFUNDS_DATABASE_URL is not set: point it at PostgreSQL "
                "(or run `refunds dev`, which starts an embedded one)"
            )
        return self.database_url

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def _risk_policy(env: Mapping[str, str]) -> RiskPolicy:
    try:
        return RiskPolicy.from_env(env)
    except RiskPolicyError as exc:
        raise SettingsError(str(exc)) from exc


def http_host_port(address: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:8000`` for IPv6; port 0 = any free port); ValueError otherwise."""
    host, sep, port = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not (sep and host and port.isascii() and port.isdigit() and int(port) <= 65535):
        raise ValueError(f"must be host:port, got {address!r}")
    return host, int(port)


def _api_tokens(env: Mapping[str, str]) -> tuple[ApiToken, ...]:
    inline = env.get("REFUNDS_API_TOKENS", "").strip()
    path = env.get("REFUNDS_API_TOKENS_FILE", "").strip()
    if inline and path:
        raise SettingsError("set REFUNDS_API_TOKENS or REFUNDS_API_TOKENS_FILE, not both")
    if not path:
        return parse_api_tokens(inline, "REFUNDS_API_TOKENS")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise SettingsError(f"REFUNDS_API_TOKENS_FILE: cannot read {path}: {why}") from exc
    return parse_api_tokens(text, "REFUNDS_API_TOKENS_FILE")


def parse_api_tokens(text: str, variable: str) -> tuple[ApiToken, ...]:
    """``token:role:identity`` entries, separated by commas or lines (``#`` starts a comment).

    Errors name the variable and the entry's position, never the token itself.
    """
    entries = [
        entry.strip()
        for line in text.splitlines()
        if not line.strip().startswith("#")
        for entry in line.split(",")
        if entry.strip()
    ]
    tokens: list[ApiToken] = []
    for number, entry in enumerate(entries, start=1):
        parts = [part.strip() for part in entry.split(":", 2)]
        if len(parts) != 3 or not all(parts):
            raise SettingsError(f"{variable}: entry {number} is not token:role:identity")
        token, role, identity = parts
        if role not in API_ROLES:
            raise SettingsError(
                f"{variable}: entry {number} has the unknown role {role!r} "
                f"(roles: {', '.join(API_ROLES)})"
            )
        if any(known.token == token for known in tokens):
            raise SettingsError(f"{variable}: entry {number} repeats an earlier token")
        tokens.append(ApiToken(token=token, role=role, identity=identity))
    return tuple(tokens)


SANDBOX_STRIPE_KEY = "sk_test_sandbox"


SANDBOX_PAYPAL_CLIENT = ("sandbox-client", "sandbox-secret")
SANDBOX_ADYEN_KEY = ("AQE_sandbox_key", "RefundsSandboxECOM")


def settings_for_stack(
    settings: Settings,
    temporal_address: str,
    database_url: str,
    stripe_api_base: str | None,
    paypal_api_base: str | None = None,
    adyen_checkout_base: str | None = None,
    paypal_webhook_certificate: str | None = None,
) -> Settings:
    """``settings`` pointed at a running local stack (sandbox credentials for the providers
    whose sandbox it runs); its refunds are valued in USD unless REFUNDS_SETTLEMENT_CURRENCY
    names another settlement currency (the stack seeds the rates: ``deploy.local.fx_seed``)."""
    stripe_key = settings.stripe_api_key
    if stripe_api_base and not stripe_key:
        stripe_key = SANDBOX_STRIPE_KEY
    paypal, adyen = settings.paypal, settings.adyen
    if paypal_api_base:
        client_id, secret = SANDBOX_PAYPAL_CLIENT
        paypal = replace(
            paypal,
            api_base=paypal_api_base,
            client_id=paypal.client_id or client_id,
            client_secret=paypal.client_secret or secret,
            webhook_cert_file=paypal.webhook_cert_file
            or (Path(paypal_webhook_certificate) if paypal_webhook_certificate else None),
        )
    if adyen_checkout_base:
        key, account = SANDBOX_ADYEN_KEY
        adyen = replace(
            adyen,
            checkout_base=adyen_checkout_base,
            api_key=adyen.api_key or key,
            merchant_account=adyen.merchant_account or account,
            # The sandbox sends CAPTURE notifications and keeps delayed captures authorised.
            auto_capture=False,
        )
    return settings.with_overrides(
        temporal_address=temporal_address,
        database_url=database_url,
        stripe_api_base=stripe_api_base or settings.stripe_api_base,
        stripe_api_key=stripe_key,
        paypal=paypal,
        adyen=adyen,
        money=replace(
            settings.money, settlement_currency=settings.money.settlement_currency or "USD"
        ),
    )


def _secrets(text: str | None) -> tuple[str, ...]:
    """Comma-separated secrets: the current one first, older ones during a rotation."""
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())
