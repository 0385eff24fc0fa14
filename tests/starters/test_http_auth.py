"""API tokens: how they are configured, and every role against every endpoint of the HTTP API."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from temporalio.testing import WorkflowEnvironment

from starters.cli_serve import serve
from starters.http_api import create_app
from tests.starters.cli_run import TEST_ENCRYPTION_KEYS
from workers.settings import ApiToken, Settings, SettingsError, parse_api_tokens

TOKENS = "t-req:requester:rita,t-rev:reviewer:tom,t-adm:admin:ops"


def test_tokens_come_from_the_variable_or_a_file(tmp_path: Path) -> None:
    inline = Settings.from_env({"REFUNDS_API_TOKENS": " t-req:requester:rita , t-adm:admin:ops "})
    file = tmp_path / "tokens"
    file.write_text("# who may call the API\nt-rev:reviewer:tom\nt-req:requester:team:returns\n")
    from_file = Settings.from_env({"REFUNDS_API_TOKENS_FILE": str(file)})

    assert inline.api_tokens == (
        ApiToken(token="t-req", role="requester", identity="rita"),
        ApiToken(token="t-adm", role="admin", identity="ops"),
    )
    assert [(t.role, t.identity) for t in from_file.api_tokens] == [
        ("reviewer", "tom"),
        ("requester", "team:returns"),
    ]
    assert Settings.from_env({}).api_tokens == ()
    assert "t-req" not in repr(inline) and "t-adm" not in repr(inline.api_tokens)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REFUNDS_API_TOKENS": "secret-1:admin"}, "REFUNDS_API_TOKENS: entry 1 is not"),
        ({"REFUNDS_API_TOKENS": "a:admin:ops,secret-1::x"}, "REFUNDS_API_TOKENS: entry 2 is not"),
        ({"REFUNDS_API_TOKENS": "secret-1:boss:ops"}, "entry 1 has the unknown role 'boss'"),
        ({"REFUNDS_API_TOKENS": "secret-1:admin:a,secret-1:reviewer:b"}, "entry 2 repeats"),
        ({"REFUNDS_API_TOKENS": "a:admin:o", "REFUNDS_API_TOKENS_FILE": "f"}, "not both"),
        ({"REFUNDS_API_TOKENS_FILE": "/no/such/file"}, "REFUNDS_API_TOKENS_FILE: cannot read"),
        ({"REFUNDS_HTTP_ADDRESS": "8000"}, "REFUNDS_HTTP_ADDRESS must be host:port"),
        ({"REFUNDS_HTTP_ADDRESS": "127.0.0.1:99999"}, "REFUNDS_HTTP_ADDRESS"),
        ({"REFUNDS_HTTP_ADDRESS": ":8000"}, "REFUNDS_HTTP_ADDRESS"),
    ],
)
def test_a_bad_setting_names_its_variable_and_never_the_token(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message) as raised:
        Settings.from_env(env)
    assert "secret-1" not in str(raised.value)


def test_the_http_address_defaults_to_the_documented_port() -> None:
    assert Settings.from_env({}).http_address == "127.0.0.1:8000"
    assert Settings.from_env({"REFUNDS_HTTP_ADDRESS": "[::1]:9000"}).http_address == "[::1]:9000"


def test_serve_refuses_to_start_without_tokens_and_says_how() -> None:
    clean = {
        "REFUNDS_API_TOKENS": None,
        "REFUNDS_API_TOKENS_FILE": None,
        "REFUNDS_ENCRYPTION_KEYS": TEST_ENCRYPTION_KEYS,  # keys are checked first
    }
    without = CliRunner().invoke(serve, [], env=clean)
    malformed = CliRunner().invoke(serve, [], env=clean | {"REFUNDS_API_TOKENS": "secret-1"})

    assert without.exit_code == 1
    assert "REFUNDS_API_TOKENS is not set" in without.output
    assert "--insecure-no-auth" in without.output
    assert malformed.exit_code == 1
    assert "REFUNDS_API_TOKENS: entry 1 is not token:role:identity" in malformed.output
    assert "secret-1" not in malformed.output


# --- Every role against every endpoint (the dev server; unknown refunds, so no worker) -----

ENDPOINTS = {
    "create": ("POST", "/v1/refunds", {}),  # an invalid body: allowed callers get 422
    "read": ("GET", "/v1/refunds/rma-unknown", None),
    "list_reviews": ("GET", "/v1/reviews", None),
    "approve": ("POST", "/v1/refunds/rma-unknown/approve", {"note": "ok"}),
    "reject": ("POST", "/v1/refunds/rma-unknown/reject", {"reason": "no"}),
    "cancel": ("POST", "/v1/refunds/rma-unknown/cancel", {}),
}
ALLOWED_ANSWER = {"create": 422, "list_reviews": 200}  # the others: 404, the refund is unknown
ROLES = {
    "requester": {"create", "read", "cancel"},
    "reviewer": {"read", "list_reviews", "approve", "reject"},
    "admin": set(ENDPOINTS),
}
TOKEN_OF = {"requester": "t-req", "reviewer": "t-rev", "admin": "t-adm"}


async def call(app_client: httpx.AsyncClient, endpoint: str, token: str | None) -> httpx.Response:
    method, path, body = ENDPOINTS[endpoint]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await app_client.request(method, path, json=body, headers=headers)


def asgi_client(env: WorkflowEnvironment, tokens: str, **options: bool) -> httpx.AsyncClient:
    settings = Settings(api_tokens=parse_api_tokens(tokens, "REFUNDS_API_TOKENS"))
    app = create_app(env.client, settings, **options)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


@pytest.mark.parametrize("role", sorted(ROLES))
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
async def test_each_role_may_do_exactly_what_it_is_for(
    dev_env: WorkflowEnvironment, role: str, endpoint: str
) -> None:
    async with asgi_client(dev_env, TOKENS) as api:
        answer = await call(api, endpoint, TOKEN_OF[role])
        anonymous = await call(api, endpoint, None)
        wrong = await call(api, endpoint, "t-guess")

    if endpoint in ROLES[role]:
        assert answer.status_code == ALLOWED_ANSWER.get(endpoint, 404), answer.text
    else:
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"]["type"] == "forbidden"
    assert (anonymous.status_code, wrong.status_code) == (401, 401)


async def test_without_tokens_only_the_insecure_flag_serves_and_everyone_is_admin(
    dev_env: WorkflowEnvironment,
) -> None:
    with pytest.raises(SettingsError, match="REFUNDS_API_TOKENS is not set"):
        create_app(dev_env.client, Settings())
    async with asgi_client(dev_env, "", allow_anonymous=True) as api:
        answers = {endpoint: await call(api, endpoint, None) for endpoint in ENDPOINTS}

    assert {e: a.status_code for e, a in answers.items()} == {
        e: ALLOWED_ANSWER.get(e, 404) for e in ENDPOINTS
    }
