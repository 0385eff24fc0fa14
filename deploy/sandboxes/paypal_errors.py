"""PayPal's error answers, shaped as PayPal sends them.

REST errors are `{"name", "message", "debug_id", "details": [{"issue", "description"}],
"links"}`; the refund service decides on `details[0].issue` (REFUND_AMOUNT_EXCEEDED, ...), and
paypalrestsdk on the status (a 400 comes back as `{"error": ...}` instead of an exception). The
OAuth endpoints answer in OAuth's own shape (`{"error", "error_description"}`).
"""

from __future__ import annotations

import secrets

from deploy.sandboxes.paypal_objects import JsonObject

_MESSAGES = {
    "INVALID_REQUEST": "Request is not well-formed, syntactically incorrect, or violates schema.",
    "UNPROCESSABLE_ENTITY": (
        "The requested action could not be performed, semantically incorrect, or failed "
        "business validation."
    ),
    "RESOURCE_NOT_FOUND": "The specified resource does not exist.",
    "RESOURCE_CONFLICT": "The server has detected a conflict while processing this request.",
    "NOT_AUTHORIZED": "Authorization failed due to insufficient permissions.",
    "INTERNAL_SERVER_ERROR": "An internal server error has occurred.",
    "RATE_LIMIT_REACHED": "Too many requests. Blocked due to rate limiting.",
    "SERVICE_UNAVAILABLE": "Service Unavailable.",
}
_STATUS_NAMES = {
    400: "INVALID_REQUEST",
    403: "NOT_AUTHORIZED",
    404: "RESOURCE_NOT_FOUND",
    409: "RESOURCE_CONFLICT",
    422: "UNPROCESSABLE_ENTITY",
    429: "RATE_LIMIT_REACHED",
    503: "SERVICE_UNAVAILABLE",
}


def debug_id() -> str:
    return secrets.token_hex(7)


class PayPalApiError(Exception):
    """An error answer; `oauth` ones use OAuth's `{"error", "error_description"}` shape."""

    def __init__(
        self,
        status: int,
        issue: str | None = None,
        description: str | None = None,
        *,
        field: str | None = None,
        value: str | None = None,
        api: str = "payments",
        oauth: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(description or issue or str(status))
        self.status, self.issue, self.description = status, issue, description
        self.field, self.value, self.api, self.oauth = field, value, api, oauth

    def body(self) -> JsonObject:
        if self.oauth is not None:
            return {"error": self.oauth[0], "error_description": self.oauth[1]}
        name = _STATUS_NAMES.get(self.status, "INTERNAL_SERVER_ERROR")
        body: JsonObject = {"name": name, "message": _MESSAGES[name], "debug_id": debug_id()}
        if self.issue is not None:
            detail: JsonObject = {"issue": self.issue}
            if self.field is not None:
                detail.update(field=self.field, location="body")
            if self.value is not None:
                detail["value"] = self.value
            if self.description:
                detail["description"] = self.description
            body["details"] = [detail]
            anchor = f"#error-{self.issue}"
        else:
            anchor = f"#{name}"
        href = f"https://developer.paypal.com/docs/api/{self.api}/v2/{anchor}"
        body["links"] = [{"href": href, "rel": "information_link", "method": "GET"}]
        return body


def refused(issue: str, description: str, api: str = "payments") -> PayPalApiError:
    """422 UNPROCESSABLE_ENTITY: understood, but PayPal will not do it."""
    return PayPalApiError(422, issue, description, api=api)


def invalid(issue: str, description: str, field: str | None = None) -> PayPalApiError:
    """400 INVALID_REQUEST: the request breaks the schema."""
    return PayPalApiError(400, issue, description, field=field)


def not_found(api: str = "payments") -> PayPalApiError:
    return PayPalApiError(
        404,
        "INVALID_RESOURCE_ID",
        "Specified resource ID does not exist. Please check the resource ID and try again.",
        api=api,
    )


def bad_client() -> PayPalApiError:
    return PayPalApiError(401, oauth=("invalid_client", "Client Authentication failed"))


def bad_token() -> PayPalApiError:
    return PayPalApiError(401, oauth=("invalid_token", "Token signature verification failed"))


def in_progress() -> PayPalApiError:
    return PayPalApiError(
        409,
        "PREVIOUS_REQUEST_IN_PROGRESS",
        "A previous request on this resource is currently in progress. Please wait for some "
        "time and try again. It is best to space out the initial and the subsequent request(s).",
    )


def fault_body(status: int) -> JsonObject:
    """What an injected fault answers: PayPal's 429, 503 or generic 500."""
    return PayPalApiError(status).body()
