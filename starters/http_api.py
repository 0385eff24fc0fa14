"""Start, read, review and cancel refunds over HTTP (`refunds serve`, `REFUNDS_HTTP_ADDRESS`).

Every `/v1/` request carries an API token, `Authorization: Bearer <token>`, from
`REFUNDS_API_TOKENS` (or a file named by `REFUNDS_API_TOKENS_FILE`): comma-separated
`token:role:identity` entries, roles `requester`, `reviewer`, `admin`. The token's identity, not
a field in the body, is who acted.

| operation | who | answer |
| --- | --- | --- |
| `POST /v1/refunds` | requester, admin | 202 `{"id", "workflow_id", "status"}` |
| `GET /v1/refunds/{id}` | any role | 200, the `status` query's object |
| `GET /v1/reviews?sort=deadline\\|risk` | reviewer, admin | 200 `{"reviews": [...]}` |
| `POST /v1/refunds/{id}/approve` `{"note"?, "amount"?}` | reviewer, admin | 200, the refund |
| `POST /v1/refunds/{id}/reject` `{"reason"}` | reviewer, admin | 200, the refund |
| `POST /v1/refunds/{id}/cancel` (no body or `{}`) | requester, admin | 200, the refund |
| `POST /v1/refunds/quote` (a `QuoteInput`) | requester, admin | 200, a `RefundQuote` |

- **Starting a refund.** The body is a `RefundRequest`. The `Idempotency-Key` header is the
  request id: send it, or `request_id` in the body, or both when they are equal (different
  values are refused with 400). A repeat with the same key answers the same refund, however
  often, and never starts a second one (the first request's body wins). `requested_by` may be
  left out: it is always **replaced by the token's identity**, so the requester recorded, and
  kept from approving their own refund, is whoever holds the token. The answer's `status` comes
  from the `RefundStatus` search attribute, so it answers even before a worker has run.
- **Decisions** go to the workflow as validated updates carrying the token's identity as the
  reviewer (or canceller). A decision the workflow refuses is answered 409 with its reason
  (`approval refused: rita requested this refund, so cannot approve it`); a decision on a
  refund that has ended is 409 `... the refund has ended (SUCCEEDED)`; an unknown id is 404.
- **Errors** are JSON `{"error": {"type", "message"}}` (422 adds `problems`, one
  `{"field", "message"}` per invalid field): 400 malformed JSON or an Idempotency-Key that
  disagrees with the body, 401 no or unknown token, 403 the role may not do that, 404 unknown
  refund, 409 refused, 413 a body over 1 MiB, 415 a body that is not JSON, 422 invalid fields,
  503 Temporal or a worker did not answer within 15 s.
- **Quotes** answer what a refund of given order lines would return, as the refund workflow
  computes it; an unknown order is 404, lines that cannot be refunded 422 with the reason.
- **No tokens.** With no tokens configured `refunds serve` refuses to start, unless
  `--insecure-no-auth` is given: then every caller is the admin `anonymous` (for a trial on
  your own machine only; as everyone is the same person, refunds started that way cannot be
  approved through the API, since a requester never approves their own refund).
- The OpenAPI document is `/openapi.json`; `/docs` renders it with no external assets.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from importlib import metadata
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Response
from fastapi.responses import HTMLResponse
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from activities.orders import OrderBook
from starters.client import (
    RefundHandle,
    final_status,
    refund_handle,
    start_refund,
    visible_status,
    workflow_id,
)
from starters.http_auth import Caller, TokenAuth, allowed
from starters.http_docs import DOCS_HTML
from starters.http_errors import (
    ERROR_RESPONSES,
    ApiError,
    BodyLimit,
    ErrorBody,
    install_error_handlers,
)
from starters.http_models import (
    ApproveBody,
    CancelBody,
    CreatedRefund,
    NewRefund,
    RejectBody,
    ReviewList,
)
from starters.http_quote import quote_router
from starters.http_tracing import trace_requests
from starters.review_queue import review_queue
from workers.settings import Settings, SettingsError
from workflows.models import CancelRequest, RefundRequest, RefundView
from workflows.refund import RefundWorkflow
from workflows.review_models import ApproveDecision, RejectDecision

TEMPORAL_TIMEOUT = timedelta(seconds=15)
NO_TOKENS = (
    "REFUNDS_API_TOKENS is not set: give the API tokens as token:role:identity "
    "(or REFUNDS_API_TOKENS_FILE), or pass --insecure-no-auth to let anyone act as admin"
)
RefundId = Annotated[str, Path(min_length=1, max_length=200, description="the request id")]


def _private_telemetry() -> dict[str, Any]:
    """FastAPI's own OpenTelemetry (newer releases): never its OTLP exporters from the
    environment (they would bypass the span scrubbing of workers.telemetry), never exception
    messages recorded as logs."""
    if "telemetry" not in inspect.signature(FastAPI).parameters:
        return {}
    return {"telemetry": {"auto_configure": False, "logs": False}}


def create_app(
    client: Client,
    settings: Settings,
    *,
    allow_anonymous: bool = False,
    routers: Sequence[APIRouter] = (),
    orders: OrderBook | None = None,
) -> FastAPI:
    """The API over ``client``; with no tokens configured only ``allow_anonymous`` serves it.

    ``orders`` (the order store) serves ``POST /v1/refunds/quote`` under the refund policy of
    ``settings``; without it the endpoint is not there.

    ``routers`` (the webhook receiver) are served beside it: the same JSON errors and 1 MiB
    body limit, and no API token outside ``/v1/`` (webhooks carry their own signatures).
    """
    if not settings.api_tokens and not allow_anonymous:
        raise SettingsError(NO_TOKENS)
    app = FastAPI(
        title="refunds HTTP API",
        version=_version(),
        description=__doc__ or "",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        responses=ERROR_RESPONSES,
        **_private_telemetry(),
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimit)
    app.add_middleware(TokenAuth, tokens=settings.api_tokens, anonymous=allow_anonymous)
    trace_requests(app)
    _add_refund_routes(app, client, settings.task_queue)
    _add_decision_routes(app, client)
    if orders is not None:
        app.include_router(quote_router(orders, settings.money.refund_policy))
    for router in routers:
        app.include_router(router)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(DOCS_HTML)

    return app


def _version() -> str:
    try:
        return metadata.version("refunds")
    except metadata.PackageNotFoundError:
        return "0"


def _not_found(request_id: str) -> ApiError:
    return ApiError(404, f"no refund {request_id} (workflow {workflow_id(request_id)})")


def _add_refund_routes(app: FastAPI, client: Client, task_queue: str) -> None:
    @app.post(
        "/v1/refunds",
        status_code=202,
        response_model=CreatedRefund,
        summary="Start a refund, or answer the one already started with this key",
    )
    async def create_refund(
        body: NewRefund,
        caller: Annotated[Caller, Depends(allowed("create"))],
        response: Response,
        idempotency_key: Annotated[
            str | None,
            Header(alias="Idempotency-Key", min_length=1, max_length=200),
        ] = None,
    ) -> CreatedRefund:
        if body.request_id and idempotency_key and body.request_id != idempotency_key:
            raise ApiError(
                400,
                f"the Idempotency-Key header ({idempotency_key!r}) and the body's request_id "
                f"({body.request_id!r}) differ: send one, or both equal",
                "idempotency_key_mismatch",
            )
        request_id = body.request_id or idempotency_key
        if not request_id:
            raise ApiError(
                422,
                "the request is invalid: request_id: is required: send the Idempotency-Key "
                "header (or request_id in the body)",
                "invalid_request",
            )
        fields = body.model_dump() | {"request_id": request_id, "requested_by": caller.identity}
        request = RefundRequest.model_validate(fields)
        handle = await start_refund(client, request, task_queue)
        status = await visible_status(handle, TEMPORAL_TIMEOUT)
        response.headers["Location"] = f"/v1/refunds/{request_id}"
        return CreatedRefund(id=request_id, workflow_id=handle.id, status=status)

    @app.get(
        "/v1/refunds/{id}",
        response_model=RefundView,
        summary="A refund's status (the workflow's `status` query)",
        responses={404: {"model": ErrorBody, "description": "no such refund"}},
    )
    async def get_refund(
        id: RefundId, _: Annotated[Caller, Depends(allowed("read"))]
    ) -> RefundView:
        try:
            view: RefundView = await refund_handle(client, id).query(
                RefundWorkflow.status, rpc_timeout=TEMPORAL_TIMEOUT
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise _not_found(id) from exc
            raise
        return view

    @app.get(
        "/v1/reviews",
        response_model=ReviewList,
        summary="Refunds awaiting review, oldest deadline (or highest risk) first",
    )
    async def list_reviews(
        _: Annotated[Caller, Depends(allowed("list_reviews"))],
        sort: Literal["deadline", "risk"] = "deadline",
    ) -> ReviewList:
        try:
            async with asyncio.timeout(TEMPORAL_TIMEOUT.total_seconds()):
                queue = await review_queue(client, sort)
        except TimeoutError as exc:
            raise ApiError(
                503, "the review queue did not answer within 15 s: is a worker running?"
            ) from exc
        return ReviewList(reviews=queue)


Send = Callable[[RefundHandle], Awaitable[RefundView]]
DECIDED: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorBody, "description": "no such refund"},
    409: {
        "model": ErrorBody,
        "description": "the workflow refused the decision, or the refund has ended",
    },
}


def _add_decision_routes(app: FastAPI, client: Client) -> None:

    async def decide(request_id: str, action: str, send: Send) -> RefundView:
        try:
            return await send(refund_handle(client, request_id))
        except WorkflowUpdateFailedError as refused:
            why = getattr(refused.cause, "message", None) or str(refused.cause or refused)
            raise ApiError(409, f"{action} refused: {why}", "refused") from refused
        except RPCError as exc:
            ended = await final_status(client, request_id, TEMPORAL_TIMEOUT)
            if ended:
                raise ApiError(
                    409, f"{action} refused: the refund has ended ({ended})", "ended"
                ) from exc
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise _not_found(request_id) from exc
            raise

    @app.post(
        "/v1/refunds/{id}/approve",
        response_model=RefundView,
        responses=DECIDED,
        summary="Approve a refund awaiting review",
    )
    async def approve(
        id: RefundId,
        caller: Annotated[Caller, Depends(allowed("approve"))],
        body: ApproveBody | None = None,
    ) -> RefundView:
        given = body or ApproveBody()
        decision = ApproveDecision(reviewer=caller.identity, note=given.note, amount=given.amount)
        return await decide(
            id,
            "approval",
            lambda h: h.execute_update(
                RefundWorkflow.approve_refund, decision, rpc_timeout=TEMPORAL_TIMEOUT
            ),
        )

    @app.post(
        "/v1/refunds/{id}/reject",
        response_model=RefundView,
        responses=DECIDED,
        summary="Reject a refund awaiting review",
    )
    async def reject(
        id: RefundId, caller: Annotated[Caller, Depends(allowed("reject"))], body: RejectBody
    ) -> RefundView:
        decision = RejectDecision(reviewer=caller.identity, reason=body.reason)
        return await decide(
            id,
            "rejection",
            lambda h: h.execute_update(
                RefundWorkflow.reject_refund, decision, rpc_timeout=TEMPORAL_TIMEOUT
            ),
        )

    @app.post(
        "/v1/refunds/{id}/cancel",
        response_model=RefundView,
        responses=DECIDED,
        summary="Cancel a refund before the provider is asked (received, validating, in review)",
    )
    async def cancel(
        id: RefundId,
        caller: Annotated[Caller, Depends(allowed("cancel"))],
        body: CancelBody | None = None,
    ) -> RefundView:
        order = CancelRequest(requested_by=caller.identity)
        return await decide(
            id,
            "cancel",
            lambda h: h.execute_update(
                RefundWorkflow.cancel_refund, order, rpc_timeout=TEMPORAL_TIMEOUT
            ),
        )
