"""Who is calling: API tokens (``Authorization: Bearer <token>``) with roles.

Authentication happens in ``TokenAuth``, before the request body is read, so a caller without
a known token learns nothing but 401 (not whether the body parses or fits). Each operation
then checks the token's role (``allowed``): 403 when the role may not do it. The token's
identity, never a field in the body, is who acted.

| role | create | read | cancel | list reviews | approve, reject |
| --- | --- | --- | --- | --- | --- |
| requester | yes | yes | yes | no | no |
| reviewer | no | yes | no | yes | yes |
| admin | yes | yes | yes | yes | yes |
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from starters.http_errors import ApiError, send_error
from workers.settings import ApiToken

Action = Literal["create", "read", "cancel", "list_reviews", "approve", "reject"]

PERMISSIONS: dict[Action, frozenset[str]] = {
    "create": frozenset({"requester", "admin"}),
    "read": frozenset({"requester", "reviewer", "admin"}),
    "cancel": frozenset({"requester", "admin"}),
    "list_reviews": frozenset({"reviewer", "admin"}),
    "approve": frozenset({"reviewer", "admin"}),
    "reject": frozenset({"reviewer", "admin"}),
}
WHAT: dict[Action, str] = {
    "create": "create refunds",
    "read": "read refunds",
    "cancel": "cancel refunds",
    "list_reviews": "list the review queue",
    "approve": "approve refunds",
    "reject": "reject refunds",
}
CALLER_KEY = "refunds.caller"
PROTECTED_PREFIX = "/v1/"


@dataclass(frozen=True)
class Caller:
    identity: str
    role: str


ANONYMOUS = Caller(identity="anonymous", role="admin")


def find_caller(tokens: tuple[ApiToken, ...], authorization: str | None) -> Caller | None:
    """The caller a ``Bearer`` header names, comparing every token in constant time."""
    scheme, _, presented = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return None
    given = presented.strip().encode()
    found = None
    for token in tokens:
        if hmac.compare_digest(token.token.encode(), given):
            found = Caller(identity=token.identity, role=token.role)
    return found


class TokenAuth:
    """401 for any ``/v1/`` request without a known token; else the caller goes in the scope.

    With ``anonymous`` (``refunds serve --insecure-no-auth`` and no tokens), every caller is
    the admin ``anonymous``.
    """

    def __init__(self, app: ASGIApp, tokens: tuple[ApiToken, ...], anonymous: bool) -> None:
        self.app = app
        self.tokens = tokens
        self.anonymous = anonymous and not tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(PROTECTED_PREFIX):
            await self.app(scope, receive, send)
            return
        if self.anonymous:
            caller: Caller | None = ANONYMOUS
        else:
            header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            if not header.strip().lower().startswith("bearer "):
                await send_error(
                    send,
                    401,
                    "missing API token: send Authorization: Bearer <token>",
                    {"WWW-Authenticate": "Bearer"},
                )
                return
            caller = find_caller(self.tokens, header)
            if caller is None:
                await send_error(
                    send,
                    401,
                    "unknown API token",
                    {"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
                return
        scope[CALLER_KEY] = caller
        await self.app(scope, receive, send)


# Declares the scheme in the OpenAPI document (the "Authorize" button); TokenAuth checks it.
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiToken",
    description="An API token from REFUNDS_API_TOKENS (`token:role:identity`).",
)


def allowed(action: Action) -> Callable[..., Caller]:
    """A dependency: the caller, when their role may do ``action``; else 403."""

    def check(
        request: Request,
        _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Caller:
        caller = request.scope.get(CALLER_KEY)
        if not isinstance(caller, Caller):
            raise ApiError(401, "missing API token: send Authorization: Bearer <token>")
        if caller.role not in PERMISSIONS[action]:
            may = " or ".join(sorted(PERMISSIONS[action]))
            raise ApiError(403, f"a {caller.role} token cannot {WHAT[action]}: that needs {may}")
        return caller

    return check
