"""``refunds codec-server``: decrypts payloads for the Temporal UI and CLI until Ctrl-C."""

from __future__ import annotations

import asyncio

import click

from starters.cli_support import load_settings
from starters.codec_server import serve_codec
from starters.processes import run_until_interrupted


@click.command("codec-server")
def codec_server() -> None:
    """Decode payloads for the Temporal UI and CLI on REFUNDS_CODEC_ADDRESS until Ctrl-C.

    POST /decode and /encode speak Temporal's remote codec protocol with the keys in
    REFUNDS_ENCRYPTION_KEYS. Point the UI at it (`temporal server start-dev
    --ui-codec-endpoint URL`, or the UI's Data Encoder setting) or the CLI
    (`temporal workflow show --codec-endpoint URL [--codec-auth 'Bearer <token>']`).
    Browsers at REFUNDS_CODEC_CORS_ORIGINS may call it; with REFUNDS_CODEC_TOKEN set, callers
    need `Authorization: Bearer <token>`. Without a token it listens on loopback only
    (127.0.0.0/8, ::1, localhost) and answers only requests addressed to that name.
    """
    settings = load_settings()
    if not settings.ops.encryption_keys:
        raise click.ClickException(
            "REFUNDS_ENCRYPTION_KEYS is not set: the codec server has no keys to decode with"
        )

    def listening(url: str) -> None:
        click.echo(f"Codec server on {url} (POST /decode, /encode); Ctrl-C stops it")
        if settings.ops.codec_token is None:
            click.echo(
                "No REFUNDS_CODEC_TOKEN: anyone on this machine who can reach it can decrypt",
                err=True,
            )

    async def service(stop: asyncio.Event) -> None:
        await serve_codec(settings, stop, listening)
        click.echo("stopped")

    run_until_interrupted(service)
