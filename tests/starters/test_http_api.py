"""The HTTP API, served by uvicorn on a free port, with the dev server, a worker, the sandbox."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from starters.http_server import serve_http
from tests.support.stack import running_worker
from tests.workflows.review_support import paid, refunds_at_provider
from workers.settings import Settings, parse_api_tokens

TOKENS = "t-rita-req:requester:rita,t-rita-rev:reviewer:rita,t-tom:reviewer:tom,t-ops:admin:ops"
RITA = {"Authorization": "Bearer t-rita-req"}
RITA_REVIEWING = {"Authorization": "Bearer t-rita-rev"}
TOM = {"Authorization": "Bearer t-tom"}


@pytest.fixture
async def api(
    dev_env: WorkflowEnvironment, ledger_db: asyncpg.Pool, stripe_base: str
) -> AsyncIterator[httpx.AsyncClient]:
    """The API served on 127.0.0.1:<free port> beside a refund worker; an HTTP client for it."""
    client = dev_env.client
    async with running_worker(client, ledger_db, stripe_base) as queue:
        settings = Settings(
            task_queue=queue,
            http_address="127.0.0.1:0",
            api_tokens=parse_api_tokens(TOKENS, "REFUNDS_API_TOKENS"),
        )
        stop = asyncio.Event()
        urls: list[str] = []
        server = asyncio.create_task(serve_http(settings, client, stop, listening=urls.append))
        try:
            async with asyncio.timeout(10):
                while not urls:
                    assert not server.done(), server.exception()
                    await asyncio.sleep(0.01)
            async with httpx.AsyncClient(base_url=urls[0], timeout=20) as http:
                yield http
        finally:
            stop.set()
            await server


def refund_body(payment: str, **fields: Any) -> dict[str, Any]:
    body = {
        "psp": "stripe",
        "payment_id": payment,
        "currency": "usd",
        "reason": "requested_by_customer",
        "customer_id": "cus_http",
    }
    return body | fields


async def until_status(http: httpx.AsyncClient, request_id: str, status: str) -> dict[str, Any]:
    async with asyncio.timeout(20):
        while True:
            answer = await http.get(f"/v1/refunds/{request_id}", headers=RITA)
            assert answer.status_code == 200, answer.text
            view: dict[str, Any] = answer.json()
            if view["status"] == status:
                return view
            await asyncio.sleep(0.05)


async def start(http: httpx.AsyncClient, body: dict[str, Any], key: str) -> httpx.Response:
    return await http.post("/v1/refunds", json=body, headers=RITA | {"Idempotency-Key": key})


async def test_a_refund_starts_once_per_key_and_is_read_until_it_succeeds(
    api: httpx.AsyncClient, stripe_base: str
) -> None:
    payment = await paid(stripe_base, 4999)
    key = f"rma-http-{uuid.uuid4().hex[:8]}"
    body = refund_body(payment, requested_by="someone-else")

    first = await start(api, body, key)
    again = await start(api, body, key)
    view = await until_status(api, key, "SUCCEEDED")
    after_the_end = await api.post(
        "/v1/refunds", json=body | {"request_id": key}, headers=RITA | {"Idempotency-Key": key}
    )

    assert first.status_code == 202, first.text
    assert first.json()["id"] == key
    assert first.json()["workflow_id"] == f"refund-{key}"
    assert first.json()["status"] in {"RECEIVED", "VALIDATING", "REFUNDING", "SUCCEEDED"}
    assert first.headers["location"] == f"/v1/refunds/{key}"
    assert (again.status_code, again.json()["id"]) == (202, key)
    assert (after_the_end.status_code, after_the_end.json()["status"]) == (202, "SUCCEEDED")
    assert (view["amount_refunded"], view["currency"]) == (4999, "USD")
    assert view["psp_refund_id"].startswith("re_")
    assert await refunds_at_provider(stripe_base, payment) == [4999], "one refund, not two"


async def test_review_roles_and_identities_through_the_api(
    api: httpx.AsyncClient, stripe_base: str
) -> None:
    payment = await paid(stripe_base, 90_000)
    key = f"rma-http-{uuid.uuid4().hex[:8]}"
    created = await api.post("/v1/refunds", json=refund_body(payment, request_id=key), headers=RITA)
    assert created.status_code == 202, created.text
    await until_status(api, key, "AWAITING_REVIEW")
    async with asyncio.timeout(20):
        while True:
            if key in {row["request_id"] for row in (await reviews(api, TOM))["reviews"]}:
                break
            await asyncio.sleep(0.2)

    listed_by_requester = await api.get("/v1/reviews", headers=RITA)
    by_requester = await api.post(f"/v1/refunds/{key}/approve", json={}, headers=RITA)
    own = await api.post(f"/v1/refunds/{key}/approve", json={}, headers=RITA_REVIEWING)
    ok = await api.post(f"/v1/refunds/{key}/approve", json={"note": "receipt seen"}, headers=TOM)
    view = await until_status(api, key, "SUCCEEDED")
    late = await api.post(f"/v1/refunds/{key}/reject", json={"reason": "late"}, headers=TOM)

    assert listed_by_requester.status_code == 403
    assert by_requester.status_code == 403
    assert by_requester.json()["error"]["message"] == (
        "a requester token cannot approve refunds: that needs admin or reviewer"
    )
    assert own.status_code == 409
    assert own.json()["error"] == {
        "type": "refused",
        "message": "approval refused: rita requested this refund, so cannot approve it",
    }
    assert ok.status_code == 200, ok.text
    assert [a["reviewer"] for a in ok.json()["review"]["approvals"]] == ["tom"]
    assert view["review"]["approvals"] == [
        {"reviewer": "tom", "note": "receipt seen", "amount": None}
    ]
    assert await refunds_at_provider(stripe_base, payment) == [90_000]
    assert late.status_code == 409
    assert late.json()["error"]["message"] == "rejection refused: the refund has ended (SUCCEEDED)"


async def reviews(http: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    answer = await http.get("/v1/reviews", params={"sort": "risk"}, headers=headers)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def test_reject_and_cancel_through_the_api(api: httpx.AsyncClient, stripe_base: str) -> None:
    keys = [f"rma-http-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for key in keys:
        payment = await paid(stripe_base, 60_000)
        assert (await start(api, refund_body(payment), key)).status_code == 202
    for key in keys:
        await until_status(api, key, "AWAITING_REVIEW")

    rejected = await api.post(
        f"/v1/refunds/{keys[0]}/reject", json={"reason": "no proof"}, headers=TOM
    )
    no_reason = await api.post(f"/v1/refunds/{keys[1]}/reject", json={}, headers=TOM)
    reviewer_cancels = await api.post(f"/v1/refunds/{keys[1]}/cancel", headers=TOM)
    canceled = await api.post(f"/v1/refunds/{keys[1]}/cancel", headers=RITA)
    ends = [
        await until_status(api, key, status)
        for key, status in zip(keys, ("REJECTED", "CANCELED"), strict=True)
    ]

    assert rejected.status_code == 200, rejected.text
    assert no_reason.status_code == 422
    assert no_reason.json()["error"]["problems"] == [{"field": "reason", "message": "is required"}]
    assert reviewer_cancels.status_code == 403
    assert canceled.status_code == 200, canceled.text
    assert ends[0]["review"]["rejected_by"] == "tom"
    assert [e["amount_refunded"] for e in ends] == [0, 0]


async def test_bad_requests_get_one_clear_json_error(api: httpx.AsyncClient) -> None:
    def error(answer: httpx.Response) -> tuple[int, str, str]:
        found = answer.json()["error"]
        return answer.status_code, found["type"], found["message"]

    json_headers = RITA | {"Content-Type": "application/json"}
    good = refund_body("pi_x", request_id="rma-1")

    no_token = await api.get("/v1/refunds/rma-1")
    bad_token = await api.get("/v1/refunds/rma-1", headers={"Authorization": "Bearer nope"})
    malformed = await api.post("/v1/refunds", content=b'{"psp": "stripe",', headers=json_headers)
    invalid = await api.post(
        "/v1/refunds", json={"psp": "visa", "amount": 10.5, "currency": "usd"}, headers=RITA
    )
    not_json = await api.post("/v1/refunds", data={"psp": "stripe"}, headers=RITA)
    no_key = await api.post("/v1/refunds", json=refund_body("pi_x"), headers=RITA)
    mismatch = await api.post("/v1/refunds", json=good, headers=RITA | {"Idempotency-Key": "rma-2"})
    unknown = await api.get("/v1/refunds/rma-never-started", headers=RITA)
    unknown_approve = await api.post("/v1/refunds/rma-never-started/approve", headers=TOM)
    too_big = await api.post(
        "/v1/refunds", json=good | {"metadata": {"x": "y" * (1 << 20)}}, headers=RITA
    )

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b" " * 65536

    too_big_chunked = await api.post("/v1/refunds", content=chunks(), headers=json_headers)
    bad_sort = await api.get("/v1/reviews", params={"sort": "amount"}, headers=TOM)
    no_path = await api.get("/v2/nothing")

    assert error(no_token) == (
        401,
        "unauthorized",
        "missing API token: send Authorization: Bearer <token>",
    )
    assert no_token.headers["www-authenticate"] == "Bearer"
    assert error(bad_token) == (401, "unauthorized", "unknown API token")
    assert error(malformed)[:2] == (400, "malformed_json")
    assert error(malformed)[2].startswith("the body is not valid JSON: Expecting")
    assert error(invalid)[:2] == (422, "invalid_request")
    problems = {p["field"]: p["message"] for p in invalid.json()["error"]["problems"]}
    assert problems == {
        "psp": "input should be 'stripe', 'paypal' or 'adyen'",
        "payment_id": "is required",
        "amount": "input should be a valid integer",
        "customer_id": "is required",
    }
    assert "psp: input should be 'stripe', 'paypal' or 'adyen'" in error(invalid)[2]
    assert error(not_json)[:2] == (415, "unsupported_media_type")
    assert error(no_key)[0] == 422 and "Idempotency-Key" in error(no_key)[2]
    assert error(mismatch)[:2] == (400, "idempotency_key_mismatch")
    assert error(unknown) == (
        404,
        "not_found",
        "no refund rma-never-started (workflow refund-rma-never-started)",
    )
    assert error(unknown_approve)[:2] == (404, "not_found")
    assert error(too_big)[:2] == (413, "body_too_large")
    assert error(too_big_chunked)[:2] == (413, "body_too_large")
    assert error(bad_sort)[0] == 422 and "query parameter sort" in error(bad_sort)[2]
    assert error(no_path)[:2] == (404, "not_found")
    for answer in (malformed, invalid, too_big, unknown, no_path):
        assert "Traceback" not in answer.text


async def test_openapi_lists_the_paths_and_docs_need_no_external_assets(
    api: httpx.AsyncClient,
) -> None:
    spec = (await api.get("/openapi.json")).json()
    docs = await api.get("/docs")

    assert set(spec["paths"]) == {
        "/v1/refunds",
        "/v1/refunds/{id}",
        "/v1/reviews",
        "/v1/refunds/{id}/approve",
        "/v1/refunds/{id}/reject",
        "/v1/refunds/{id}/cancel",
    }
    assert spec["components"]["securitySchemes"]["ApiToken"]["scheme"] == "bearer"
    create = spec["paths"]["/v1/refunds"]["post"]
    assert "202" in create["responses"] and "422" in create["responses"]
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    assert docs.status_code == 200
    assert "openapi.json" in docs.text
    assert "http://" not in docs.text and "https://" not in docs.text
