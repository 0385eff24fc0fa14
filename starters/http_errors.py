"""Every HTTP error is JSON ``{"error": {"type", "message"}}`` with its status; never a traceback.

Also the body limit: a request body over ``MAX_BODY_BYTES`` is answered 413 before the
application reads any of it (by its Content-Length, or while counting a chunked body).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import WorkflowQueryFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

log = logging.getLogger("refunds.http")

MAX_BODY_BYTES = 1024 * 1024
# A body over the limit is read and dropped up to this much before the 413, so that a client
# still sending sees the answer instead of a reset connection; beyond it, the connection closes.
DRAIN_BYTES = 16 * MAX_BODY_BYTES

TYPES_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    500: "internal",
    502: "bad_gateway",
    503: "unavailable",
}


class ErrorDetail(BaseModel):
    type: str
    message: str
    problems: list[dict[str, str]] | None = None


class ErrorBody(BaseModel):
    """What every error answers."""

    error: ErrorDetail


class ApiError(Exception):
    """An answer other than success: status, a stable ``type`` and a plain-words message."""

    def __init__(self, status: int, message: str, type_: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_ or TYPES_BY_STATUS.get(status, "error")
        self.message = message


def error_response(
    status: int,
    message: str,
    type_: str | None = None,
    problems: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    detail = ErrorDetail(
        type=type_ or TYPES_BY_STATUS.get(status, "error"), message=message, problems=problems
    )
    return JSONResponse(
        ErrorBody(error=detail).model_dump(exclude_none=True),
        status_code=status,
        headers=dict(headers or {}),
    )


def _where(loc: Sequence[Any]) -> str:
    parts = [str(part) for part in loc]
    if parts[:1] == ["body"]:
        return ".".join(parts[1:]) or "body"
    if parts[:1] == ["header"] and len(parts) > 1:
        return f"header {'-'.join(word.capitalize() for word in parts[1].split('-'))}"
    if parts[:1] in (["query"], ["path"]) and len(parts) > 1:
        return f"{parts[0]} parameter {'.'.join(parts[1:])}"
    return ".".join(parts) or "request"


def _plain(error: dict[str, Any]) -> str:
    kind = error.get("type")
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a field of this request"
    message = str(error.get("msg", "is invalid"))
    return message[:1].lower() + message[1:]


def describe_problems(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Each problem as ``{"field", "message"}`` in plain words."""
    problems = []
    for error in errors:
        where = _where(error.get("loc", ()))
        if where == "body" and error.get("type") in ("model_attributes_type", "dict_type"):
            problems.append({"field": "body", "message": "must be a JSON object"})
        else:
            problems.append({"field": where, "message": _plain(error)})
    return problems


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(isinstance(e.get("input"), bytes | bytearray) for e in errors):
        return error_response(415, "send the body as JSON, with Content-Type: application/json")
    broken = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if broken is not None:
        why = (broken.get("ctx") or {}).get("error", "JSON decode error")
        position = broken["loc"][-1] if len(broken.get("loc", ())) > 1 else "?"
        return error_response(
            400, f"the body is not valid JSON: {why} (at character {position})", "malformed_json"
        )
    problems = describe_problems(errors)
    text = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
    return error_response(
        422, f"the request is invalid: {text}", "invalid_request", problems=problems
    )


async def _invalid_model(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ValidationError)
    problems = describe_problems(exc.errors())
    text = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
    return error_response(422, f"the request is invalid: {text}", problems=problems)


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return error_response(exc.status, exc.message, exc.type, headers=headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    message = str(exc.detail)
    if exc.status_code == 404:
        message = f"no such path: {request.url.path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    elif exc.status_code == 400 and message == "There was an error parsing the body":
        message = "the body could not be read"
    return error_response(exc.status_code, message, headers=exc.headers)


async def _temporal_error(_: Request, exc: Exception) -> JSONResponse:
    no_answer = "Temporal did not answer within 15 s: is a worker running on the task queue?"
    if isinstance(exc, WorkflowUpdateRPCTimeoutOrCancelledError):
        return error_response(503, no_answer)
    if isinstance(exc, WorkflowQueryFailedError):
        return error_response(502, f"the refund workflow could not answer: {exc}")
    assert isinstance(exc, RPCError)
    if exc.status == RPCStatusCode.INVALID_ARGUMENT:
        return error_response(400, f"Temporal refused the request: {exc.message}")
    if exc.status in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED):
        return error_response(503, no_answer)  # our rpc_timeout: no worker took the query
    if exc.status == RPCStatusCode.UNAVAILABLE:
        return error_response(503, f"Temporal is unavailable: {exc.message}")
    return error_response(502, f"Temporal: {exc.message}")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal error; the service log has the details")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(ValidationError, _invalid_model)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(HTTPException, _http_error)
    for temporal_error in (
        RPCError,
        WorkflowQueryFailedError,
        WorkflowUpdateRPCTimeoutOrCancelledError,
    ):
        app.add_exception_handler(temporal_error, _temporal_error)
    app.add_exception_handler(Exception, _unexpected)


# What the OpenAPI document lists for every operation besides its success.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "malformed JSON, or a request Temporal refuses",
        401: "no token, or an unknown one",
        403: "the token's role may not do this",
        413: "a body over 1 MiB",
        422: "the request is invalid; `problems` lists each field",
        503: "Temporal or the worker did not answer in time",
    }.items()
}


async def send_error(send: Send, status: int, message: str, headers: dict[str, str]) -> None:
    error = {"type": TYPES_BY_STATUS.get(status, "error"), "message": message}
    body = json.dumps({"error": error}, separators=(",", ":")).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Answer 413 to a body over ``max_bytes``; the application sees the body only when it fits.

    The body is read here (keeping at most ``max_bytes``) and handed on in one piece.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > DRAIN_BYTES:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay(message, receive), send)  # client went away
                return
            size += len(message.get("body", b""))
            more = bool(message.get("more_body", False))
            if size > self.max_bytes:
                chunks.clear()
                if size > DRAIN_BYTES:
                    break
            else:
                chunks.append(message.get("body", b""))
        if size > self.max_bytes:
            await self._refuse(send)
            return
        whole: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay(whole, receive), send)

    async def _refuse(self, send: Send) -> None:
        message = f"the body is over {self.max_bytes} bytes (1 MiB)"
        await send_error(send, 413, message, {"connection": "close"})


def _replay(first: Message, receive: Receive) -> Receive:
    pending = [first]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed
