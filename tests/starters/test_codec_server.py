"""The codec server over real HTTP, as the Temporal UI and CLI call it."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from starters.codec_server import serve_codec
from tests.starters.cli_run import (
    PROVIDER_AND_SERVICE_PREFIXES,
    TEST_ENCRYPTION_KEYS,
    TEST_KEY,
    TEST_KEY_ID,
)
from workers.ops_settings import OpsSettings
from workers.settings import Settings

UI_ORIGIN = "http://127.0.0.1:8233"


def codec_settings(token: str | None = None) -> Settings:
    return Settings(
        ops=OpsSettings(
            encryption_keys=((TEST_KEY_ID, TEST_KEY),),
            codec_address="127.0.0.1:0",
            codec_token=token,
            codec_cors_origins=(UI_ORIGIN,),
        )
    )


@asynccontextmanager
async def codec_server(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The server on a free port, and an HTTP client pointed at it."""
    stop = asyncio.Event()
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    listening: Callable[[str], None] = started.set_result
    server = asyncio.create_task(serve_codec(settings, stop, listening))
    try:
        url = await asyncio.wait_for(started, 10)
        async with httpx.AsyncClient(base_url=url) as http:
            yield http
    finally:
        stop.set()
        await server


def json_payload(value: object) -> dict[str, object]:
    """One payload as the pydantic converter writes it, in the codec protocol's JSON."""
    return {
        "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
        "data": base64.b64encode(json.dumps(value).encode()).decode(),
    }


def metadata_of(payload: dict[str, object]) -> dict[str, bytes]:
    fields = payload["metadata"]
    assert isinstance(fields, dict)
    return {name: base64.b64decode(value) for name, value in fields.items()}


async def test_encode_then_decode_gives_back_the_payload_and_hides_it_in_between() -> None:
    sent = {"payloads": [json_payload({"note": "customer says parcel lost"}), json_payload(7)]}
    async with codec_server(codec_settings()) as http:
        encoded = await http.post("/encode", json=sent)
        assert encoded.status_code == 200, encoded.text
        payloads = encoded.json()["payloads"]
        assert [metadata_of(p)["encoding"] for p in payloads] == [b"binary/encrypted"] * 2
        assert [metadata_of(p)["encryption-key-id"] for p in payloads] == [b"test-key-1"] * 2
        assert "parcel lost" not in encoded.text
        assert b"parcel lost" not in base64.b64decode(payloads[0]["data"])

        decoded = await http.post("/decode", json={"payloads": payloads})
        # An unencrypted payload (a client without the codec) comes back as it was.
        plain = await http.post("/decode", json=sent)

    assert decoded.status_code == 200, decoded.text
    assert decoded.json() == sent
    assert plain.json() == sent


async def test_the_ui_origin_passes_the_preflight_and_others_get_no_cors_headers() -> None:
    async with codec_server(codec_settings(token="s3cret")) as http:
        preflight = await http.options(
            "/decode",
            headers={
                "Origin": UI_ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-namespace,authorization",
            },
        )
        stranger = await http.options("/decode", headers={"Origin": "http://evil.example"})
        answered = await http.post(
            "/decode",
            json={"payloads": []},
            headers={"Origin": UI_ORIGIN, "Authorization": "Bearer s3cret"},
        )

    assert preflight.status_code in (200, 204)
    assert preflight.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert preflight.headers["Access-Control-Allow-Headers"] == (
        "Content-Type, X-Namespace, Authorization"
    )
    assert "Access-Control-Allow-Origin" not in stranger.headers
    assert answered.status_code == 200
    assert answered.headers["Access-Control-Allow-Origin"] == UI_ORIGIN


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "s3cret", "Basic s3cret"])
async def test_with_a_token_set_only_the_right_bearer_token_decodes(
    authorization: str | None,
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    body = {"payloads": [json_payload("x")]}
    async with codec_server(codec_settings(token="s3cret")) as http:
        refused = await http.post("/decode", json=body, headers=headers)
        allowed = await http.post("/decode", json=body, headers={"Authorization": "Bearer s3cret"})

    assert refused.status_code == 401
    assert "Bearer" in refused.json()["error"]
    assert allowed.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"payloads": [{"data": 5}]}',
        b'{"payloads": "x"}',
        b'{"payload": []}',
        b"",
    ],
)
async def test_garbage_is_a_clear_400(body: bytes) -> None:
    async with codec_server(codec_settings()) as http:
        answer = await http.post(
            "/decode", content=body, headers={"Content-Type": "application/json"}
        )

    assert answer.status_code == 400
    assert "payloads" in answer.json()["error"]


async def test_a_payload_under_an_unknown_key_is_a_400_naming_the_key_id() -> None:
    foreign = {
        "metadata": {
            "encoding": base64.b64encode(b"binary/encrypted").decode(),
            "encryption-key-id": base64.b64encode(b"retired-2023").decode(),
        },
        "data": base64.b64encode(bytes(40)).decode(),
    }
    async with codec_server(codec_settings()) as http:
        answer = await http.post("/decode", json={"payloads": [foreign]})

    assert answer.status_code == 400
    assert "'retired-2023'" in answer.json()["error"]


# The command itself, in its own process (until starters/cli.py registers it as
# `refunds codec-server`, it is run by its module).
COMMAND = [sys.executable, "-c", "from starters.cli_codec import codec_server; codec_server()"]


def command_env(extra: dict[str, str]) -> dict[str, str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(PROVIDER_AND_SERVICE_PREFIXES)
    }
    return environment | extra


def test_the_command_without_keys_says_which_variable_to_set() -> None:
    answer = subprocess.run(
        COMMAND,
        env=command_env({"REFUNDS_ALLOW_UNENCRYPTED": "true"}),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert answer.returncode != 0
    assert "REFUNDS_ENCRYPTION_KEYS is not set" in answer.stderr


def test_the_command_decodes_until_ctrl_c() -> None:
    env = command_env(
        {"REFUNDS_ENCRYPTION_KEYS": TEST_ENCRYPTION_KEYS, "REFUNDS_CODEC_ADDRESS": "127.0.0.1:0"}
    )
    server = subprocess.Popen(
        COMMAND, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        url = banner.split(" on ", 1)[1].split()[0]
        sent = {"payloads": [json_payload({"iban": "DE02100100109307118603"})]}
        encoded = httpx.post(f"{url}/encode", json=sent, timeout=10).json()
        decoded = httpx.post(f"{url}/decode", json=encoded, timeout=10).json()
        server.send_signal(signal.SIGINT)
        _, errors = server.communicate(timeout=15)
    finally:
        server.kill()
        server.wait()

    assert decoded == sent
    assert server.returncode == 0, errors
    assert "DE02100100109307118603" not in errors
