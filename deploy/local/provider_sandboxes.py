"""The providers' local sandboxes in the embedded stack: Stripe, PayPal and Adyen.

A sandbox is started only for a provider the configuration does not point elsewhere (its API
base or real credentials set). Each delivers its signed webhooks to this stack's receiver,
with the secrets the receiver checks (configured, or made by the stack under its state folder).
"""

from __future__ import annotations

import os
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from deploy.sandboxes.faults import SandboxFaults
from deploy.sandboxes.stripe_objects import CURRENCIES as STRIPE_CURRENCIES
from deploy.sandboxes.stripe_sandbox import StripeSandbox, settle_after_from_env
from workers.money_settings import MoneySettings
from workers.provider_settings import AdyenSettings, PayPalSettings

# Adyen tells every outcome by notification: the sandbox sends it this soon.
ADYEN_NOTIFY_AFTER_SECONDS = 0.5


class SandboxSettings(Protocol):
    @property
    def stripe_api_base(self) -> str | None: ...
    @property
    def stripe_api_key(self) -> str | None: ...
    @property
    def stripe_webhook_secret(self) -> str | None: ...
    @property
    def http_address(self) -> str: ...
    @property
    def paypal(self) -> PayPalSettings: ...
    @property
    def adyen(self) -> AdyenSettings: ...
    @property
    def money(self) -> MoneySettings: ...


@dataclass(frozen=True)
class SandboxPorts:
    stripe: int = 12111
    paypal: int = 12112
    adyen: int = 12113


@dataclass(frozen=True)
class SandboxBases:
    """Where each provider's API answers (None: the configured provider, not a sandbox)."""

    stripe: str | None = None
    paypal: str | None = None
    adyen: str | None = None
    paypal_certificate: str | None = None  # the PEM the PayPal sandbox signs webhooks with


def receiver_url(http_address: str, provider: str = "stripe") -> str:
    """Where a local sandbox delivers its webhooks: this stack's own receiver."""
    host, _, port = http_address.rpartition(":")
    host = "127.0.0.1" if host in ("", "0.0.0.0", "[::]") else host
    return f"http://{host}:{port}/webhooks/{provider}"


def _stripe_settlement(money: MoneySettings) -> str:
    """The Stripe sandbox settles where the service values refunds: REFUNDS_SETTLEMENT_CURRENCY,
    else USD as the local stack does (a currency Stripe does not settle in: USD)."""
    wanted = (money.settlement_currency or "USD").lower()
    return wanted if wanted in STRIPE_CURRENCIES else "usd"


async def start_sandboxes(
    settings: SandboxSettings,
    ports: SandboxPorts,
    state_dir: Path,
    exits: AsyncExitStack,
    deliver_webhooks: bool = True,
) -> SandboxBases:
    """Start the sandboxes needed; each is stopped by ``exits``. Without ``deliver_webhooks``
    (no receiver runs) they send no webhooks."""
    faults = SandboxFaults.from_env(os.environ)  # REFUNDS_SANDBOX_FAULTS, shared by all three
    settle_after = settle_after_from_env(os.environ)  # REFUNDS_SANDBOX_SETTLE_AFTER
    stripe = settings.stripe_api_base
    if not stripe and not settings.stripe_api_key:
        secret = (settings.stripe_webhook_secret or "").split(",")[0].strip()
        secret = secret if deliver_webhooks else ""
        stripe_box = StripeSandbox(
            faults=faults,
            state_file=state_dir / "stripe-sandbox.json",
            pending_refund_seconds=settle_after,
            late_failure_seconds=settle_after,
            webhook_url=receiver_url(settings.http_address) if secret else None,
            webhook_secret=secret or None,
            settlement_currency=_stripe_settlement(settings.money),
        )
        stripe = await stripe_box.start("127.0.0.1", ports.stripe)
        exits.push_async_callback(stripe_box.stop)
    paypal, certificate = settings.paypal.api_base, None
    if not paypal and not settings.paypal.configured:
        from deploy.sandboxes.paypal_sandbox import PayPalSandbox

        paypal_box = PayPalSandbox(
            faults=faults,
            state_file=state_dir / "paypal-sandbox.json",
            settle_after_seconds=settle_after,
            webhook_url=receiver_url(settings.http_address, "paypal") if deliver_webhooks else None,
            webhook_id=settings.paypal.webhook_id,
            cert_dir=state_dir / "paypal-sandbox-certificate",
        )
        paypal = await paypal_box.start("127.0.0.1", ports.paypal)
        exits.push_async_callback(paypal_box.stop)
        certificate = str(paypal_box.certificate_file)
    adyen = settings.adyen.checkout_base
    if not adyen and not settings.adyen.configured:
        from deploy.sandboxes.adyen_sandbox import AdyenSandbox

        keys = settings.adyen.hmac_keys
        adyen_box = AdyenSandbox(
            faults=faults,
            state_file=state_dir / "adyen-sandbox.json",
            settle_after_seconds=ADYEN_NOTIFY_AFTER_SECONDS,
            late_failure_seconds=settle_after,
            webhook_url=receiver_url(settings.http_address, "adyen") if deliver_webhooks else None,
            hmac_key=keys[0] if keys else None,
            webhook_auth=settings.adyen.basic_auth,
        )
        adyen = await adyen_box.start("127.0.0.1", ports.adyen)
        exits.push_async_callback(adyen_box.stop)
    return SandboxBases(stripe, paypal, adyen, certificate)
