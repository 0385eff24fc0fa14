"""Scripted odd answers, for what `faults` cannot make: PayPal's JSON errors are all it sends.

A client must also cope with answers that are not PayPal's error JSON (a proxy's HTML page on a
400, a 408 from a load balancer, a redirect from a wrong `PAYPAL_API_BASE`, a body it cannot
parse) and with PayPal answering minimally (`id`, `status`, links) although `Prefer:
return=representation` was asked for. A rule matches requests by path prefix (and method),
for its next `times` requests:

- `status` (with `body`, `content_type`, `location`): that answer instead of the endpoint's,
  nothing done;
- `minimal: true`: the endpoint runs, but as if no `Prefer` had been sent.

`POST /_sandbox/answers` takes a rule or a list of rules, `GET` shows them, `DELETE` clears
them; in tests `sandbox.answers.script(...)`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

from deploy.sandboxes.faults import CONTROL_PREFIX

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_FIELDS = {"path_prefix", "method", "times", "status", "body", "content_type", "location"}
_FIELDS |= {"minimal"}
MAX_BODY = 65536


@dataclass
class ScriptedAnswer:
    path_prefix: str = "/"
    method: str | None = None
    times: int = 1
    status: int | None = None
    body: str = ""
    content_type: str = "text/html"
    location: str | None = None
    minimal: bool = False

    def validate(self) -> None:
        if not isinstance(self.path_prefix, str) or not isinstance(self.method, str | None):
            raise ValueError("path_prefix and method must be strings")
        if not isinstance(self.times, int) or isinstance(self.times, bool) or self.times < 1:
            raise ValueError("times must be a positive integer")
        if self.status is None and not self.minimal:
            raise ValueError("a rule answers a status or asks for minimal answers")
        if self.status is not None and not (
            isinstance(self.status, int) and 200 <= self.status <= 599
        ):
            raise ValueError(f"status {self.status!r} is not an HTTP status")
        if not isinstance(self.body, str) or len(self.body) > MAX_BODY:
            raise ValueError(f"body must be a string of at most {MAX_BODY} characters")
        if not isinstance(self.content_type, str) or not isinstance(self.location, str | None):
            raise ValueError("content_type and location must be strings")

    def matches(self, method: str, path: str) -> bool:
        return path.startswith(self.path_prefix) and (
            self.method is None or self.method.upper() == method.upper()
        )


class Answers:
    def __init__(self) -> None:
        self.rules: list[ScriptedAnswer] = []

    def script(self, path_prefix: str, method: str | None = None, **fields: Any) -> None:
        rule = ScriptedAnswer(path_prefix, method, **fields)
        rule.validate()
        self.rules.append(rule)

    def take(self, method: str, path: str) -> ScriptedAnswer | None:
        for rule in self.rules:
            if rule.matches(method, path):
                rule.times -= 1
                if rule.times <= 0:
                    self.rules.remove(rule)
                return rule
        return None

    def middleware(self) -> Any:
        @web.middleware
        async def answer(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path.startswith(CONTROL_PREFIX):
                return await handler(request)
            rule = self.take(request.method, request.path)
            if rule is None:
                return await handler(request)
            if rule.status is None:  # minimal: as if no Prefer was sent
                headers = request.headers.copy()
                headers.popall("Prefer", None)
                return await handler(request.clone(headers=headers))
            response = web.Response(status=rule.status, text=rule.body)
            response.content_type = rule.content_type
            if rule.location:
                response.headers["Location"] = rule.location
            return response

        return answer

    def add_routes(self, app: web.Application) -> None:
        async def show(_: web.Request) -> web.Response:
            return web.json_response([asdict(rule) for rule in self.rules])

        async def add(request: web.Request) -> web.Response:
            try:
                raw = await request.json()
                rules = [_rule(item) for item in (raw if isinstance(raw, list) else [raw])]
            except ValueError as problem:
                return web.json_response({"error": str(problem)}, status=400)
            self.rules.extend(rules)
            return await show(request)

        async def clear(request: web.Request) -> web.Response:
            self.rules.clear()
            return await show(request)

        app.router.add_get("/_sandbox/answers", show)
        app.router.add_post("/_sandbox/answers", add)
        app.router.add_delete("/_sandbox/answers", clear)


def _rule(raw: object) -> ScriptedAnswer:
    if not isinstance(raw, dict):
        raise ValueError("an answer rule is a JSON object")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise ValueError(f"unknown answer rule fields: {sorted(unknown)}")
    try:
        rule = ScriptedAnswer(**raw)
    except TypeError as problem:
        raise ValueError(str(problem)) from None
    rule.validate()
    return rule
