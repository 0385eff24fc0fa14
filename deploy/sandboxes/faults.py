"""Fault injection shared by every provider sandbox.

The refund service has to survive what real providers do to it: slow answers, a 5xx or 429
before anything happened, and the dangerous one, a change that was made but whose answer never
arrived. The sandboxes inject these on purpose so tests and demos can show the service copes:
at random from `REFUNDS_SANDBOX_FAULTS` (`latency=300ms,error_rate=0.3,drop_rate=0.1,seed=7`),
or scripted per path by a test (`faults.script(...)`) or over HTTP (`/_sandbox/faults`).
Nothing under `/_sandbox/` is ever faulted, so a sandbox can always be steered and inspected.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

ENV_VAR = "REFUNDS_SANDBOX_FAULTS"
CONTROL_PREFIX = "/_sandbox/"

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ErrorBody = Callable[[int], Mapping[str, Any]]


def parse_duration(text: str) -> float:
    """Seconds in `300ms`, `1.5s` or `2m`; a unit is required so `300` is never ambiguous."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 300ms, 1.5s or 2m")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{text!r} is not a rate between 0 and 1")
    return value


@dataclass
class ScriptedFault:
    """One rule a test sets up: for requests whose path starts with `path_prefix` (and whose
    method is `method`, any when None), answer `status` the next `fail_times` times without
    doing anything, then make the change but drop the connection the next `drop_times` times.
    `latency` (seconds) delays each answer the rule touches. A rule with only latency stays
    until cleared; the others retire once their counts are spent."""

    path_prefix: str = "/"
    method: str | None = None
    fail_times: int = 0
    status: int = 500
    drop_times: int = 0
    latency: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return path.startswith(self.path_prefix) and (
            self.method is None or self.method.upper() == method.upper()
        )

    def validate(self) -> None:
        counts = (self.fail_times, self.drop_times, self.status)
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in counts):
            raise ValueError("fail_times, drop_times and status must be integers")
        if not isinstance(self.path_prefix, str) or not isinstance(self.method, str | None):
            raise ValueError("path_prefix and method must be strings")
        if self.fail_times < 0 or self.drop_times < 0:
            raise ValueError("fail_times and drop_times must not be negative")
        if not 400 <= self.status <= 599:
            raise ValueError(f"status {self.status} is not an HTTP error status")
        if self.latency < 0:
            raise ValueError("latency must not be negative")


@dataclass(frozen=True)
class FaultPlan:
    """What to do to one request: answer `fail_status` at once, or run it and then drop the
    connection, each after `latency` seconds."""

    fail_status: int | None = None
    drop: bool = False
    latency: float = 0.0


class SandboxFaults:
    """Random faults (from the environment) plus scripted rules (from tests), consulted once per
    request. A matching scripted rule decides alone, so a test stays deterministic even when
    random faults are configured too."""

    def __init__(
        self,
        latency: float = 0.0,
        error_rate: float = 0.0,
        drop_rate: float = 0.0,
        seed: int | None = None,
    ) -> None:
        self.latency = latency
        self.error_rate = error_rate
        self.drop_rate = drop_rate
        self.seed = seed
        self._random = random.Random(seed)
        self.rules: list[ScriptedFault] = []

    @classmethod
    def parse(cls, text: str) -> SandboxFaults:
        """`latency=300ms,error_rate=0.3,drop_rate=0.1,seed=7`; every item optional."""
        settings: dict[str, Any] = {}
        for raw in text.split(","):
            item = raw.strip()
            if not item:
                continue
            name, sep, value = item.partition("=")
            name, value = name.strip(), value.strip()
            try:
                if not sep:
                    raise ValueError("expected name=value")
                if name == "latency":
                    settings[name] = parse_duration(value)
                elif name in ("error_rate", "drop_rate"):
                    settings[name] = _rate(value)
                elif name == "seed":
                    settings[name] = int(value)
                else:
                    raise ValueError("known items are latency, error_rate, drop_rate, seed")
            except ValueError as problem:
                raise ValueError(f"bad sandbox fault item {item!r}: {problem}") from None
        return cls(**settings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SandboxFaults:
        try:
            return cls.parse(environ.get(ENV_VAR, ""))
        except ValueError as problem:
            raise ValueError(f"{ENV_VAR}: {problem}") from None

    def configure(self, text: str) -> None:
        """Replace the random faults (keeping scripted rules), e.g. from `/_sandbox/faults`."""
        parsed = SandboxFaults.parse(text)
        self.latency, self.error_rate = parsed.latency, parsed.error_rate
        self.drop_rate, self.seed = parsed.drop_rate, parsed.seed
        self._random = random.Random(parsed.seed)

    def script(
        self,
        path_prefix: str = "/",
        method: str | None = None,
        *,
        fail_times: int = 0,
        status: int = 500,
        drop_times: int = 0,
        latency: float | str = 0.0,
    ) -> ScriptedFault:
        seconds = parse_duration(latency) if isinstance(latency, str) else float(latency)
        rule = ScriptedFault(path_prefix, method, fail_times, status, drop_times, seconds)
        rule.validate()
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """No faults at all: random ones off, scripted rules gone."""
        self.configure("")
        self.rules.clear()

    def plan(self, method: str, path: str) -> FaultPlan:
        for rule in self.rules:
            if rule.matches(method, path):
                return self._use(rule)
        if self.error_rate and self._random.random() < self.error_rate:
            status = self._random.choice((500, 429))
            return FaultPlan(fail_status=status, latency=self.latency)
        drop = bool(self.drop_rate) and self._random.random() < self.drop_rate
        return FaultPlan(drop=drop, latency=self.latency)

    def _use(self, rule: ScriptedFault) -> FaultPlan:
        if rule.fail_times > 0:
            rule.fail_times -= 1
            plan = FaultPlan(fail_status=rule.status, latency=rule.latency)
        elif rule.drop_times > 0:
            rule.drop_times -= 1
            plan = FaultPlan(drop=True, latency=rule.latency)
        else:
            return FaultPlan(latency=rule.latency)  # a latency-only rule stays until cleared
        if rule.fail_times == 0 and rule.drop_times == 0:
            self.rules.remove(rule)
        return plan

    def describe(self) -> dict[str, Any]:
        return {
            "latency": self.latency,
            "error_rate": self.error_rate,
            "drop_rate": self.drop_rate,
            "seed": self.seed,
            "rules": [asdict(rule) for rule in self.rules],
        }


def drop_connection(request: web.Request) -> None:
    """Close the socket without a byte of answer: the client sees a connection error (httpx:
    "Server disconnected without sending a response"), exactly like a network cut."""
    transport = request.transport
    if transport is not None:
        transport.abort()


def fault_middleware(faults: SandboxFaults, error_body: ErrorBody) -> Any:
    """aiohttp middleware applying `faults`; `error_body(status)` is the provider's own error
    JSON, so a faulted answer looks like one the real provider would send."""

    @web.middleware
    async def apply_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX):
            return await handler(request)
        plan = faults.plan(request.method, request.path)
        if plan.fail_status is not None:
            await asyncio.sleep(plan.latency)
            return web.json_response(error_body(plan.fail_status), status=plan.fail_status)
        response = await handler(request)
        await asyncio.sleep(plan.latency)
        if plan.drop:
            drop_connection(request)
        return response

    return apply_faults


def _rule_from_json(raw: object) -> ScriptedFault:
    if not isinstance(raw, dict):
        raise ValueError("a fault rule is a JSON object")
    fields = dict(raw)
    latency = fields.pop("latency", 0.0)
    unknown = set(fields) - {"path_prefix", "method", "fail_times", "status", "drop_times"}
    if unknown:
        raise ValueError(f"unknown fault rule fields: {sorted(unknown)}")
    try:
        rule = ScriptedFault(**fields)
    except TypeError as problem:
        raise ValueError(str(problem)) from None
    rule.latency = parse_duration(latency) if isinstance(latency, str) else float(latency)
    rule.validate()
    return rule


def add_fault_routes(app: web.Application, faults: SandboxFaults) -> None:
    """`GET /_sandbox/faults` shows the faults; `POST` takes a rule object, a list of rules, or
    `{"spec": "latency=300ms,..."}` (replaces the random faults); `DELETE` clears everything."""

    async def show(_: web.Request) -> web.Response:
        return web.json_response(faults.describe())

    async def add(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            if isinstance(body, dict) and set(body) == {"spec"}:
                faults.configure(str(body["spec"]))
            else:
                raw_rules = body if isinstance(body, list) else [body]
                faults.rules.extend([_rule_from_json(raw) for raw in raw_rules])
        except ValueError as problem:
            return web.json_response({"error": str(problem)}, status=400)
        return web.json_response(faults.describe())

    async def clear(_: web.Request) -> web.Response:
        faults.clear()
        return web.json_response(faults.describe())

    app.router.add_get("/_sandbox/faults", show)
    app.router.add_post("/_sandbox/faults", add)
    app.router.add_delete("/_sandbox/faults", clear)
