"""PayPal's and Adyen's settings, and how fast each provider may be called.

Read with the rest of ``Settings`` once at start; a missing or invalid value names its
variable. Secrets stay out of reprs, so they never reach a log line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from activities.durations import parse_duration
from workflows.models import Psp


class ProviderSettingsError(ValueError):
    """A provider setting is missing or invalid; the message names the variable."""


def _text(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name, "").strip() or None


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    text = (_text(env, name) or "").lower()
    if not text:
        return default
    if text not in ("true", "false", "1", "0", "yes", "no"):
        raise ProviderSettingsError(f"{name} must be true or false, got {text!r}")
    return text in ("true", "1", "yes")


def _check_base(name: str, value: str | None) -> None:
    if value and not value.startswith(("http://", "https://")):
        raise ProviderSettingsError(f"{name} must be an http(s) URL, got {value!r}")


@dataclass(frozen=True)
class PayPalSettings:
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    api_base: str | None = None  # PAYPAL_API_BASE; unset means PayPal's own sandbox/live
    mode: str = "sandbox"  # PAYPAL_MODE: sandbox | live (which PayPal hosts, when no base)
    webhook_id: str | None = None
    # How a webhook's transmission signature is checked: "certificate" (download PayPal's
    # certificate from PAYPAL-CERT-URL, PayPal's hosts only, or use PAYPAL_WEBHOOK_CERT_FILE)
    # or "api" (ask PayPal's verify-webhook-signature endpoint).
    webhook_verify: str = "certificate"
    webhook_cert_file: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PayPalSettings:
        cert = _text(env, "PAYPAL_WEBHOOK_CERT_FILE")
        settings = cls(
            client_id=_text(env, "PAYPAL_CLIENT_ID"),
            client_secret=_text(env, "PAYPAL_CLIENT_SECRET"),
            api_base=_text(env, "PAYPAL_API_BASE"),
            mode=(_text(env, "PAYPAL_MODE") or "sandbox").lower(),
            webhook_id=_text(env, "PAYPAL_WEBHOOK_ID"),
            webhook_verify=(_text(env, "PAYPAL_WEBHOOK_VERIFY") or "certificate").lower(),
            webhook_cert_file=Path(cert) if cert else None,
        )
        settings.check()
        return settings

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret)

    def check(self) -> None:
        if bool(self.client_id) != bool(self.client_secret):
            raise ProviderSettingsError(
                "PAYPAL_CLIENT_ID and PAYPAL_CLIENT_SECRET must be set together"
            )
        _check_base("PAYPAL_API_BASE", self.api_base)
        if self.mode not in ("sandbox", "live"):
            raise ProviderSettingsError(f"PAYPAL_MODE must be sandbox or live, got {self.mode!r}")
        if self.webhook_verify not in ("certificate", "api"):
            raise ProviderSettingsError(
                f"PAYPAL_WEBHOOK_VERIFY must be certificate or api, got {self.webhook_verify!r}"
            )
        if self.webhook_cert_file and not self.webhook_cert_file.is_file():
            raise ProviderSettingsError(
                f"PAYPAL_WEBHOOK_CERT_FILE: no such file {self.webhook_cert_file}"
            )


DEFAULT_ADYEN_SETTLEMENT_TIMEOUT = "6h"


@dataclass(frozen=True)
class AdyenSettings:
    api_key: str | None = field(default=None, repr=False)
    merchant_account: str | None = None
    checkout_base: str | None = (
        None  # ADYEN_CHECKOUT_BASE, e.g. https://checkout-test.adyen.com/v72
    )
    hmac_key: str | None = field(default=None, repr=False)  # hex; comma-separated: rotation
    webhook_username: str | None = None
    webhook_password: str | None = field(default=None, repr=False)
    # Adyen has no status poll: a refund whose REFUND notification has not come this long
    # after Adyen received it is escalated (REFUNDS_ADYEN_SETTLEMENT_TIMEOUT, e.g. 6h).
    settlement_timeout_s: int = 6 * 3600
    # Adyen's default: payments are captured at authorisation and no CAPTURE notification is
    # sent. With manual or delayed capture set ADYEN_AUTO_CAPTURE=false and enable CAPTURE
    # notifications: a payment then counts as captured only once its CAPTURE comes.
    auto_capture: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AdyenSettings:
        timeout = _text(env, "REFUNDS_ADYEN_SETTLEMENT_TIMEOUT") or DEFAULT_ADYEN_SETTLEMENT_TIMEOUT
        try:
            timeout_s = parse_duration(timeout)
        except ValueError as exc:
            raise ProviderSettingsError(f"REFUNDS_ADYEN_SETTLEMENT_TIMEOUT: {exc}") from None
        settings = cls(
            api_key=_text(env, "ADYEN_API_KEY"),
            merchant_account=_text(env, "ADYEN_MERCHANT_ACCOUNT"),
            checkout_base=_text(env, "ADYEN_CHECKOUT_BASE"),
            hmac_key=_text(env, "ADYEN_HMAC_KEY"),
            webhook_username=_text(env, "ADYEN_WEBHOOK_USERNAME"),
            webhook_password=_text(env, "ADYEN_WEBHOOK_PASSWORD"),
            settlement_timeout_s=timeout_s,
            auto_capture=_flag(env, "ADYEN_AUTO_CAPTURE", True),
        )
        settings.check()
        return settings

    @property
    def configured(self) -> bool:
        return bool(self.api_key and self.merchant_account)

    @property
    def hmac_keys(self) -> tuple[str, ...]:
        return tuple(part.strip() for part in (self.hmac_key or "").split(",") if part.strip())

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        if self.webhook_username and self.webhook_password:
            return self.webhook_username, self.webhook_password
        return None

    def check(self) -> None:
        if self.api_key and not self.merchant_account:
            raise ProviderSettingsError("ADYEN_MERCHANT_ACCOUNT must be set with ADYEN_API_KEY")
        _check_base("ADYEN_CHECKOUT_BASE", self.checkout_base)
        for key in self.hmac_keys:
            try:
                bytes.fromhex(key)
            except ValueError:
                raise ProviderSettingsError("ADYEN_HMAC_KEY must be hexadecimal") from None
        if bool(self.webhook_username) != bool(self.webhook_password):
            raise ProviderSettingsError(
                "ADYEN_WEBHOOK_USERNAME and ADYEN_WEBHOOK_PASSWORD must be set together"
            )
        if self.settlement_timeout_s <= 0:
            raise ProviderSettingsError("REFUNDS_ADYEN_SETTLEMENT_TIMEOUT must be above zero")


# Activities per second each provider's task queue hands out, across every worker: the
# server enforces it, so a rate-limited provider slows only its own refunds.
DEFAULT_RATE_LIMITS: Mapping[Psp, float] = {Psp.STRIPE: 50.0, Psp.PAYPAL: 20.0, Psp.ADYEN: 50.0}


def rate_limits_from_env(env: Mapping[str, str]) -> dict[Psp, float]:
    """``REFUNDS_PROVIDER_RATE_LIMITS=stripe=50,paypal=20``: the defaults for any not named."""
    limits = dict(DEFAULT_RATE_LIMITS)
    for entry in (_text(env, "REFUNDS_PROVIDER_RATE_LIMITS") or "").split(","):
        if not entry.strip():
            continue
        name, _, rate = entry.partition("=")
        try:
            psp, per_second = Psp(name.strip().lower()), float(rate)
        except ValueError:
            raise ProviderSettingsError(
                f"REFUNDS_PROVIDER_RATE_LIMITS: {entry.strip()!r} is not provider=calls_per_second"
                " (providers: stripe, paypal, adyen)"
            ) from None
        if not per_second > 0:
            raise ProviderSettingsError(
                f"REFUNDS_PROVIDER_RATE_LIMITS: {psp.value}'s rate must be above zero"
            )
        limits[psp] = per_second
    return limits


WORKER_QUEUE_NAMES = ("refunds", "stripe", "paypal", "adyen")


def worker_queues_from_text(
    text: str | None, variable: str = "REFUNDS_WORKER_QUEUES"
) -> tuple[str, ...]:
    """Which queues a worker polls: ``refunds`` (workflows and the ledger) and the providers'.

    Empty or ``all`` means every one.
    """
    names = [part.strip().lower() for part in (text or "").split(",") if part.strip()]
    if not names or names == ["all"]:
        return WORKER_QUEUE_NAMES
    unknown = [name for name in names if name not in WORKER_QUEUE_NAMES]
    if unknown:
        raise ProviderSettingsError(
            f"{variable}: unknown queue {unknown[0]!r} (queues: {', '.join(WORKER_QUEUE_NAMES)}, "
            "or all)"
        )
    return tuple(dict.fromkeys(names))
