"""The codec server: lets the Temporal UI and CLI show readable payloads to those allowed.

Temporal's remote codec protocol: ``POST /decode`` and ``POST /encode`` take and answer
``{"payloads": [{"metadata": {name: base64}, "data": base64}]}`` (``Payloads`` as protobuf
JSON). The UI calls it from the browser, so the configured origins
(REFUNDS_CODEC_CORS_ORIGINS) get CORS headers, preflight included; with REFUNDS_CODEC_TOKEN
set, a request without ``Authorization: Bearer <token>`` gets 401. Clients in other languages
that cannot implement the codec can call ``/decode`` (and ``/encode``) too.

Payload contents are never logged: there is no access log, and errors name only what was
wrong with the request (or the key id), never its data.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import hdrs, web
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from workers.codec import EncryptionCodec, PayloadDecryptionError
from workers.settings import Settings, SettingsError, http_host_port

ALLOWED_HEADERS = "Content-Type, X-Namespace, Authorization"
MAX_BODY_BYTES = 64 * 1024 * 1024  # a page of history events in the UI can be large

Transform = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]


def codec_app(settings: Settings) -> web.Application:
    """The aiohttp application; refuses (SettingsError) without encryption keys, since it
    would have nothing to decode with."""
    if not settings.ops.encryption_keys:
        raise SettingsError("REFUNDS_ENCRYPTION_KEYS is not set: the codec server needs the keys")
    codec = EncryptionCodec(settings.ops.encryption_keys)
    origins = set(settings.ops.codec_cors_origins)
    token = settings.ops.codec_token

    def cors(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        origin = request.headers.get(hdrs.ORIGIN)
        if origin in origins:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = "POST, OPTIONS"
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = ALLOWED_HEADERS
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
            response.headers[hdrs.ACCESS_CONTROL_MAX_AGE] = "600"
        response.headers[hdrs.VARY] = "Origin"
        return response

    def error(request: web.Request, status: int, message: str) -> web.StreamResponse:
        return cors(request, web.json_response({"error": message}, status=status))

    async def preflight(request: web.Request) -> web.StreamResponse:
        return cors(request, web.Response(status=204))

    def authorized(request: web.Request) -> bool:
        if token is None:
            return True
        given = request.headers.get(hdrs.AUTHORIZATION, "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())

    async def apply(transform: Transform, request: web.Request) -> web.StreamResponse:
        if not authorized(request):
            return error(request, 401, "missing or wrong Authorization: Bearer token")
        try:
            body = await request.read()
            payloads = json_format.Parse(body, Payloads())
        except (json_format.ParseError, UnicodeDecodeError, ValueError):
            return error(
                request,
                400,
                'body must be JSON {"payloads": [{"metadata": {name: base64}, "data": base64}]}',
            )
        try:
            answered = await transform(payloads.payloads)
        except PayloadDecryptionError as exc:
            return error(request, 400, str(exc))
        text = json_format.MessageToJson(Payloads(payloads=answered))
        return cors(request, web.Response(text=text, content_type="application/json"))

    async def encode(request: web.Request) -> web.StreamResponse:
        return await apply(codec.encode, request)

    async def decode(request: web.Request) -> web.StreamResponse:
        return await apply(codec.decode, request)

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_post("/encode", encode)
    app.router.add_post("/decode", decode)
    app.router.add_route("OPTIONS", "/encode", preflight)
    app.router.add_route("OPTIONS", "/decode", preflight)
    return app


async def serve_codec(
    settings: Settings,
    stop: asyncio.Event,
    listening: Callable[[str], None] | None = None,
) -> None:
    """Serve the codec on ``settings.ops.codec_address`` until ``stop`` is set.

    Port 0 takes a free port; ``listening`` gets the base URL once it accepts connections
    (the UI's ``--ui-codec-endpoint``)."""
    app = codec_app(settings)
    host, port = http_host_port(settings.ops.codec_address)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            why = exc.strerror or str(exc)
            raise OSError(
                f"cannot listen on {settings.ops.codec_address} (REFUNDS_CODEC_ADDRESS): {why}"
            ) from exc
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        if listening is not None:
            listening(f"http://{shown}:{bound_port}")
        await stop.wait()
    finally:
        await runner.cleanup()
