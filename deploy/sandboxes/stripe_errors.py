"""Stripe's error answers, shaped as Stripe sends them.

The SDK picks its exception from the HTTP status and `error.type` (400/404 ->
InvalidRequestError, 402 -> CardError, 401 -> AuthenticationError, `idempotency_error` ->
IdempotencyError, 429 -> RateLimitError, 5xx -> APIError), and the refund service decides on
`code`; so both must be what Stripe would send for the same mistake.
"""

from __future__ import annotations

from typing import Any

from deploy.sandboxes.stripe_objects import JsonObject


class StripeApiError(Exception):
    """An error answer. `saved` says whether an Idempotency-Key keeps it: Stripe saves results
    only once an endpoint has begun executing, so parameter validation failures are not kept
    (a corrected retry with the same key goes through) while business refusals are."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        saved: bool = True,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = error_type
        self.code = code
        self.param = param
        self.saved = saved
        self.extra = extra

    def body(self) -> JsonObject:
        error: JsonObject = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = "https://stripe.com/docs/error-codes/" + self.code.replace("_", "-")
        if self.param is not None:
            error["param"] = self.param
        error.update(self.extra)
        return {"error": error}


def invalid(
    message: str, param: str | None = None, code: str | None = None, *, saved: bool = False
) -> StripeApiError:
    """A 400 for a bad request parameter (not kept by idempotency unless `saved`)."""
    return StripeApiError(400, message, code=code, param=param, saved=saved)


def refused(message: str, code: str | None, param: str | None = None) -> StripeApiError:
    """A 400 for a request Stripe understood but will not do in the object's current state."""
    return StripeApiError(400, message, code=code, param=param)


def missing(kind: str, object_id: str, param: str | None = None) -> StripeApiError:
    """Stripe's 404 for an unknown id: "No such payment_intent: 'pi_x'"."""
    return StripeApiError(
        404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param, saved=False
    )


def unauthenticated(message: str) -> StripeApiError:
    """Stripe answers a missing or bad key with 401 and type `invalid_request_error` (the SDK
    raises AuthenticationError from the status)."""
    return StripeApiError(401, message, saved=False)


def fault_body(status: int) -> JsonObject:
    """What an injected fault answers: Stripe's 429 rate limit or its generic 500."""
    if status == 429:
        return StripeApiError(
            429,
            "Too many requests hit the API too quickly. We recommend an exponential backoff "
            "of your requests.",
            code="rate_limit",
        ).body()
    return StripeApiError(
        status,
        "Something went wrong on Stripe's end. (sandbox fault injection)",
        error_type="api_error",
    ).body()
