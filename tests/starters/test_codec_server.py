"""The codec server over real HTTP, as the Temporal UI and CLI call it."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import httpx
import pytest

from starters.codec_server import is_loopback, serve_codec
from tests.starters.cli_run import (
    PROVIDER_AND_SERVICE_PREFIXES,
    TEST_ENCRYPTION_KEYS,
    TEST_KEY,
    TEST_KEY_ID,
    refunds,
)
from workers.ops_settings import OpsSettings
from workers.settings import Settings, SettingsError

UI_ORIGIN = "http://127.0.0.1:8233"


def codec_settings(token: str | None = None, address: str = "127.0.0.1:0") -> Settings:
    return Settings(
        ops=OpsSettings(
            encryption_keys=((TEST_KEY_ID, TEST_KEY),),
            codec_address=address,
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


def encrypted_payload(data: bytes, key_id: bytes = b"test-key-1") -> dict[str, object]:
    """A payload that says it is encrypted, with ``data`` as its nonce, ciphertext and tag."""
    return {
        "metadata": {
            "encoding": base64.b64encode(b"binary/encrypted").decode(),
            "encryption-key-id": base64.b64encode(key_id).decode(),
        },
        "data": base64.b64encode(data).decode(),
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
    # The UI sends no cookies: browsers are not told they may send credentials.
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    assert "Access-Control-Allow-Credentials" not in answered.headers


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


async def test_a_payload_under_an_unknown_key_is_a_400_naming_only_its_key_id() -> None:
    foreign = encrypted_payload(bytes(40), key_id=b"retired-2023")
    async with codec_server(codec_settings()) as http:
        answer = await http.post("/decode", json={"payloads": [foreign]})

    assert answer.status_code == 400
    error = answer.json()["error"]
    assert "'retired-2023'" in error
    assert "not among this service's keys" in error
    assert TEST_KEY_ID not in error, "the keys it has are not the caller's business"


@pytest.mark.parametrize("length", [0, 5, 27])
async def test_a_payload_too_short_to_be_aes_gcm_is_a_400_without_a_traceback(
    length: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with codec_server(codec_settings()) as http:
        answer = await http.post("/decode", json={"payloads": [encrypted_payload(bytes(length))]})

    assert answer.status_code == 400, answer.text
    assert answer.json() == {
        "error": f"payload too short to be AES-GCM: {length} bytes "
        "(at least 28: a 12-byte nonce and a 16-byte tag)"
    }
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert "Traceback" not in caplog.text


async def test_encoding_an_encrypted_payload_gives_it_back_unchanged() -> None:
    async with codec_server(codec_settings()) as http:
        once = (await http.post("/encode", json={"payloads": [json_payload("x")]})).json()
        twice = await http.post("/encode", json=once)
        decoded = await http.post("/decode", json=twice.json())

    assert twice.status_code == 200
    assert twice.json() == once
    assert decoded.json() == {"payloads": [json_payload("x")]}


async def test_without_a_token_a_request_for_another_host_name_is_refused() -> None:
    """A page whose name was re-pointed at 127.0.0.1 (DNS rebinding) sends its own name."""
    body = {"payloads": [json_payload("x")]}
    async with codec_server(codec_settings()) as http:
        port = http.base_url.port
        rebound = await http.post("/decode", json=body, headers={"Host": f"evil.example:{port}"})
        no_port = await http.post("/decode", json=body, headers={"Host": "evil.example"})
        preflight = await http.options(
            "/decode",
            headers={
                "Host": f"evil.example:{port}",
                "Origin": f"http://evil.example:{port}",
                "Access-Control-Request-Method": "POST",
            },
        )
        by_address = await http.post("/decode", json=body)  # Host: 127.0.0.1:<port>
        by_name = await http.post("/decode", json=body, headers={"Host": f"localhost:{port}"})
        from_ui = await http.post(
            "/decode", json=body, headers={"Origin": UI_ORIGIN, "X-Namespace": "default"}
        )

    assert rebound.status_code == 403
    assert "Host" in rebound.json()["error"]
    assert no_port.status_code == 403
    assert preflight.status_code == 403
    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert by_address.status_code == 200
    assert by_name.status_code == 200
    assert from_ui.status_code == 200
    assert from_ui.headers["Access-Control-Allow-Origin"] == UI_ORIGIN


async def test_with_a_token_any_host_name_may_call_with_the_token() -> None:
    body = {"payloads": [json_payload("x")]}
    async with codec_server(codec_settings(token="s3cret")) as http:
        answer = await http.post(
            "/decode",
            json=body,
            headers={"Host": "codec.internal.example", "Authorization": "Bearer s3cret"},
        )

    assert answer.status_code == 200


@pytest.mark.parametrize("address", ["0.0.0.0:0", "[::]:0", "10.1.2.3:8081", "codec.example:80"])
async def test_without_a_token_it_refuses_to_listen_beyond_loopback(address: str) -> None:
    listened: list[str] = []

    with pytest.raises(SettingsError) as raised:
        # (A server that starts would wait for ever: 10 s says it did.)
        await asyncio.wait_for(
            serve_codec(codec_settings(address=address), asyncio.Event(), listened.append), 10
        )

    assert "REFUNDS_CODEC_TOKEN" in str(raised.value)
    assert "REFUNDS_CODEC_ADDRESS" in str(raised.value)
    assert address in str(raised.value)
    assert listened == []


async def test_with_a_token_it_listens_beyond_loopback() -> None:
    async with codec_server(codec_settings(token="s3cret", address="0.0.0.0:0")) as http:
        port = http.base_url.port
        answer = await http.post(
            f"http://127.0.0.1:{port}/decode",
            json={"payloads": []},
            headers={"Authorization": "Bearer s3cret"},
        )

    assert answer.status_code == 200


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.4.5.6", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("localhost.evil.example", False),
        ("", False),
    ],
)
def test_loopback_is_127_0_0_0_8_and_1_and_localhost(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


# The command itself, `refunds codec-server`, in its own process.
COMMAND = [sys.executable, "-m", "starters.cli", "codec-server"]


def command_env(extra: dict[str, str]) -> dict[str, str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(PROVIDER_AND_SERVICE_PREFIXES)
    }
    return environment | extra


def test_the_command_without_keys_says_which_variable_to_set() -> None:
    answer = refunds("codec-server", env={"REFUNDS_ALLOW_UNENCRYPTED": "true"}, timeout=30)

    assert answer.returncode != 0
    assert "REFUNDS_ENCRYPTION_KEYS is not set" in answer.stderr


def test_the_command_without_a_token_refuses_an_address_beyond_loopback() -> None:
    answer = refunds("codec-server", env={"REFUNDS_CODEC_ADDRESS": "0.0.0.0:0"}, timeout=30)

    assert answer.returncode != 0
    assert "REFUNDS_CODEC_TOKEN" in answer.stderr
    assert "REFUNDS_CODEC_ADDRESS" in answer.stderr
    assert "Traceback" not in answer.stderr


def test_the_command_decodes_until_ctrl_c() -> None:
    env = command_env(
        {"REFUNDS_ENCRYPTION_KEYS": TEST_ENCRYPTION_KEYS, "REFUNDS_CODEC_ADDRESS": "127.0.0.1:0"}
    )
    server = subprocess.Popen(
        COMMAND, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    iban = "DE02100100109307118603"
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        url = banner.split(" on ", 1)[1].split()[0]
        assert urlsplit(url).hostname == "127.0.0.1"
        sent = {"payloads": [json_payload({"iban": iban})]}
        encoded = httpx.post(f"{url}/encode", json=sent, timeout=10).json()
        decoded = httpx.post(f"{url}/decode", json=encoded, timeout=10).json()
        # A payload altered in transit fails its tag: the 400 names the key id and echoes
        # neither the ciphertext nor (of course) the plaintext.
        [payload] = encoded["payloads"]
        data = bytearray(base64.b64decode(payload["data"]))
        data[-1] ^= 1
        tampered_data = base64.b64encode(bytes(data)).decode()
        tampered = httpx.post(
            f"{url}/decode",
            json={"payloads": [{**payload, "data": tampered_data}]},
            timeout=10,
        )
        short = httpx.post(
            f"{url}/decode", json={"payloads": [encrypted_payload(bytes(5))]}, timeout=10
        )
        server.send_signal(signal.SIGINT)
        _, errors = server.communicate(timeout=15)
    finally:
        server.kill()
        server.wait()

    assert decoded == sent
    assert server.returncode == 0, errors
    assert tampered.status_code == 400
    assert "failed authentication" in tampered.json()["error"]
    assert tampered_data not in tampered.text
    assert payload["data"] not in tampered.text
    assert iban not in tampered.text
    assert short.status_code == 400
    assert "payload too short to be AES-GCM: 5 bytes" in short.json()["error"]
    assert "Traceback" not in errors, "a bad payload is the caller's error, not the server's"
