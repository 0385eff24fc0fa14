"""The codec server: lets the Temporal UI and CLI show readable payloads to those allowed.

Temporal's remote codec protocol: ``POST /decode`` and ``POST /encode`` take and answer
``{"payloads": [{"metadata": {name: base64}, "data": base64}]}`` (``Payloads`` as protobuf
JSON). The UI calls it from the browser, so the configured origins
(REFUNDS_CODEC_CORS_ORIGINS) get CORS headers, preflight included (no credentials: the UI
sends no cookies); with REFUNDS_CODEC_TOKEN set, a request without
``Authorization: Bearer <token>`` gets 401. Clients in other languages that cannot implement
the codec can call ``/decode`` (and ``/encode``) too.

Without REFUNDS_CODEC_TOKEN the server decrypts for whoever reaches it, so it then listens on
loopback only (127.0.0.0/8, ::1, localhost; it refuses to start on any other
REFUNDS_CODEC_ADDRESS) and answers only requests whose ``Host`` names that address or
localhost (403 otherwise), so a web page whose own name was re-pointed at 127.0.0.1 (DNS
rebinding) cannot read from it. The Temporal UI calls it with ``Host`` = the codec address.

Payload contents are never logged: there is no access log, and errors name only what was
wrong with the request (or the key id), never its data.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import hdrs, web
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from workers.codec import EncryptionCodec, PayloadDecryptionError
from workers.settings import Settings, SettingsError, http_host_port

ALLOWED_HEADERS = "Content-Type, X-Namespace, Authorization"
MAX_BODY_BYTES = 64 * 1024 * 1024  # a page of history events in the UI can be large

Transform = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 with or without brackets) is this
    machine's loopback: ``localhost``, 127.0.0.0/8 or ::1."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The host of a ``Host`` header without its port (``[::1]:8081`` -> ``::1``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    name, _, _ = header.partition(":")
    return name


def refuse_open_without_token(settings: Settings) -> None:
    """SettingsError when the codec would decrypt for anyone beyond this machine."""
    if settings.ops.codec_token is not None:
        return
    host, _ = http_host_port(settings.ops.codec_address)
    if not is_loopback(host):
        raise SettingsError(
            f"REFUNDS_CODEC_ADDRESS is {settings.ops.codec_address}, which is not a loopback "
            "address, and REFUNDS_CODEC_TOKEN is not set: the codec server would decrypt "
            "payloads for anyone who can reach it. Set REFUNDS_CODEC_TOKEN (callers then send "
            "Authorization: Bearer <token>) or listen on loopback "
            "(REFUNDS_CODEC_ADDRESS=127.0.0.1:8081)"
        )


def codec_app(settings: Settings) -> web.Application:
    """The aiohttp application; refuses (SettingsError) without encryption keys, since it
    would have nothing to decode with, and without a token on a non-loopback address."""
    if not settings.ops.encryption_keys:
        raise SettingsError("REFUNDS_ENCRYPTION_KEYS is not set: the codec server needs the keys")
    refuse_open_without_token(settings)
    codec = EncryptionCodec(settings.ops.encryption_keys)
    origins = set(settings.ops.codec_cors_origins)
    token = settings.ops.codec_token

    def cors(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        origin = request.headers.get(hdrs.ORIGIN)
        if origin in origins:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = "POST, OPTIONS"
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = ALLOWED_HEADERS
            response.headers[hdrs.ACCESS_CONTROL_MAX_AGE] = "600"
        response.headers[hdrs.VARY] = "Origin"
        return response

    def error(request: web.Request, status: int, message: str) -> web.StreamResponse:
        return cors(request, web.json_response({"error": message}, status=status))

    def host_allowed(request: web.Request) -> bool:
        """Without a token, only requests addressed to this loopback server by name."""
        if token is not None:
            return True  # the token authenticates; a proxy may use any name
        name = host_name(request.headers.get(hdrs.HOST, ""))
        return is_loopback(name)  # the address it listens on is one (refused otherwise)

    @web.middleware
    async def check_host(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not host_allowed(request):
            return web.json_response(
                {"error": "Host must name this codec server's loopback address or localhost"},
                status=403,
            )
        return await handler(request)

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

    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[check_host])
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
    (the UI's ``--ui-codec-endpoint``). Without REFUNDS_CODEC_TOKEN it refuses
    (SettingsError) an address other than loopback."""
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
