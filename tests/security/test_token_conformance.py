"""The token and introspection endpoints against the standards, point by point: client
authentication (RFC 6749 §2.3.1), the token and error responses (§5.1, §5.2), the access
token's JWT profile (RFC 9068) and introspection (RFC 7662).

Where the product departs from a standard to keep existing integrations working, the test says
so: a failed Basic authentication answers 400 invalid_client, as IdentityServer did, where
§5.2 asks for 401 (the design notes record this); a missing grant_type is, as in IdentityServer,
unsupported_grant_type rather than invalid_request; a GET is invalid_request rather than 405.
The default access tokens are IdentityServer's (scope a JSON array, no sub); RFC 9068's are a
setting away (`identity.token_profile = "rfc9068"`), and tested here as such."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.identity import keys
from app.identity.endpoint import TokenEndpoint
from app.identity.service import TokenService, issuer
from tests.conftest import INTROSPECTION_SECRET, Browser
from tests.factories import make_client
from tests.integration.identity.test_token_endpoint import basic, token, verified

pytestmark = pytest.mark.anyio
API = "api_informat_sas_leerlingen"
SCOPE = f"{API}.leerlingen.123456"


@pytest.fixture
async def registered(client: Browser) -> dict[str, Any]:
    return await make_client(scopes=[("leerlingen", "123456"), ("personeel", "123456")])


def post_auth(registered: dict[str, Any]) -> dict[str, str]:
    return {"client_id": registered["client_id"], "client_secret": registered["secret"]}


def assert_never_cached(response: httpx.Response) -> None:
    # §5.1's no-store, in IdentityServer's words.
    assert response.headers["cache-control"] == "no-store, no-cache, max-age=0"
    assert response.headers["pragma"] == "no-cache"
    assert response.headers["content-type"] == "application/json; charset=UTF-8"


async def test_rfc_6749_2_3_1_client_authentication(
    client: Browser, registered: dict[str, Any]
) -> None:
    credentials = post_auth(registered)
    grant = {"grant_type": "client_credentials"}
    in_body = await token(client, {**grant, **credentials})
    in_header = await token(
        client, grant, headers=basic(registered["client_id"], registered["secret"])
    )
    assert (in_body.status_code, in_header.status_code) == (200, 200)
    # "MUST NOT be included in the request URI"
    in_query = await client.post("/connect/token", params=credentials, data=grant)
    assert in_query.json() == {"error": "invalid_client"}
    # "MUST NOT use more than one authentication method in each request"
    both = await token(
        client,
        {**grant, "client_secret": registered["secret"]},
        headers=basic(registered["client_id"], registered["secret"]),
    )
    assert both.json() == {"error": "invalid_request"}
    not_basic = await token(client, {**grant, **credentials}, headers={"Authorization": "Bearer x"})
    assert not_basic.json() == {"error": "invalid_request"}
    garbage = await token(client, grant, headers={"Authorization": "Basic ***"})
    assert garbage.json() == {"error": "invalid_client"}
    control = await token(client, grant, headers=basic("a\x00b", registered["secret"]))
    assert control.json() == {"error": "invalid_client"}
    # §3.2: "The client MUST use the HTTP POST method" (refused as IdentityServer does)
    by_get = await client.get("/connect/token", params={**grant, **credentials})
    assert (by_get.status_code, by_get.json()) == (400, {"error": "invalid_request"})


async def test_rfc_6749_5_1_the_token_response(client: Browser, registered: dict[str, Any]) -> None:
    response = await token(client, {"grant_type": "client_credentials", **post_auth(registered)})
    assert response.status_code == 200
    assert_never_cached(response)
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    assert body["scope"].split() == [SCOPE, "api_informat_sas_personeel.personeel.123456"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"grant_type": None}, "unsupported_grant_type"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"grant_type": "authorization_code", "code": "x"}, "unsupported_grant_type"),
        ({"scope": f"{API}.leerlingen.999999"}, "invalid_scope"),
        ({"scope": "openid"}, "invalid_scope"),
        ({"client_secret": "niet-het-secret"}, "invalid_client"),
        ({"client_id": "onbekende-client"}, "invalid_client"),
    ],
    ids=lambda value: str(value),
)
async def test_rfc_6749_5_2_error_responses(
    client: Browser, registered: dict[str, Any], change: dict[str, str | None], error: str
) -> None:
    form = {"grant_type": "client_credentials", **post_auth(registered), **change}
    response = await token(client, {key: value for key, value in form.items() if value})
    # 400 for every error, invalid_client included (IdentityServer's answer; see above).
    assert response.status_code == 400
    assert response.json() == {"error": error}, "the code only: no description to learn from"
    assert_never_cached(response)


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"content": b'{"grant_type":"client_credentials"}', "headers": {"content-type": "x"}},
        {
            "content": b"grant_type=client_credentials&grant_type=client_credentials",
            "headers": {"content-type": "application/x-www-form-urlencoded"},
        },
        {"data": {"grant_type": "client_credentials", "x": "a" * 20_000}},
        # Appendix A: no control characters (a NUL once made this a 500).
        {"data": {"grant_type": "client_credentials", "client_id": "a\x00b", "client_secret": "x"}},
    ],
    ids=["not-a-form", "repeated-parameter", "oversized", "control-character"],
)
async def test_rfc_6749_5_2_malformed_requests(
    client: Browser, request_kwargs: dict[str, Any]
) -> None:
    response = await client.post("/connect/token", **request_kwargs)
    assert (response.status_code, response.json()) == (400, {"error": "invalid_request"})
    assert_never_cached(response)


@pytest.fixture
async def rfc9068(settings: Settings, transaction: None) -> AsyncIterator[Browser]:
    """The token endpoint with `identity.token_profile = "rfc9068"`."""
    profile = dataclasses.replace(
        settings, identity=dataclasses.replace(settings.identity, token_profile="rfc9068")
    )
    endpoint = TokenEndpoint(TokenService(profile))
    async with Browser(
        transport=httpx.ASGITransport(app=endpoint), base_url="http://testserver"
    ) as browser:
        yield browser


async def test_rfc_9068_access_token_claims(
    client: Browser, rfc9068: Browser, registered: dict[str, Any]
) -> None:
    issued = [
        (
            await token(
                rfc9068,
                {"grant_type": "client_credentials", "scope": SCOPE, **post_auth(registered)},
            )
        ).json()
        for _ in range(2)
    ]
    claims = [await verified(client, body["access_token"]) for body in issued]
    for body, each in zip(issued, claims, strict=True):
        # §2.2: the required claims, and nothing about a person.
        assert {"iss", "exp", "aud", "sub", "client_id", "iat", "jti"} <= set(each)
        assert set(each) <= {"iss", "exp", "aud", "sub", "client_id", "iat", "nbf", "jti", "scope"}
        # §2.2.2: with no end user, sub is the client itself.
        assert each["sub"] == each["client_id"] == registered["client_id"]
        assert each["aud"] == API
        assert each["scope"] == SCOPE == body["scope"]
        assert each["exp"] - each["iat"] == body["expires_in"]
        assert abs(each["iat"] - time.time()) < 5
    assert claims[0]["jti"] != claims[1]["jti"]
    # Introspection answers alike for either profile.
    assert (await introspect(client, issued[0]["access_token"])).json()["scope"] == SCOPE


async def test_identityserver_access_token_claims(
    client: Browser, registered: dict[str, Any]
) -> None:
    """The default: IdentityServer4 4.x and Duende's client-credentials token."""
    body = (
        await token(client, {"grant_type": "client_credentials", **post_auth(registered)})
    ).json()
    each = await verified(client, body["access_token"])
    assert set(each) == {"iss", "nbf", "iat", "exp", "aud", "scope", "client_id", "jti"}
    assert each["client_id"] == registered["client_id"]
    assert each["scope"] == [SCOPE, "api_informat_sas_personeel.personeel.123456"]
    assert body["scope"] == " ".join(each["scope"]), "the token response keeps RFC 6749's string"
    assert sorted(each["aud"]) == [API, "api_informat_sas_personeel"]
    assert each["nbf"] == each["iat"] and each["exp"] - each["iat"] == body["expires_in"]
    one = (
        await token(
            client, {"grant_type": "client_credentials", "scope": SCOPE, **post_auth(registered)}
        )
    ).json()
    single = await verified(client, one["access_token"])
    assert single["scope"] == [SCOPE], "an array also for one scope"
    assert single["aud"] == API


async def introspect(client: Browser, access_token: str, api: str = API) -> httpx.Response:
    return await client.post(
        "/connect/introspect",
        data={"token": access_token},
        headers=basic(api, INTROSPECTION_SECRET),
    )


async def test_rfc_7662_introspection(client: Browser, registered: dict[str, Any]) -> None:
    access = (
        await token(client, {"grant_type": "client_credentials", **post_auth(registered)})
    ).json()["access_token"]
    # §2.1: the caller must be authorised; an API proves it with its secret.
    anonymous = await client.post("/connect/introspect", data={"token": access})
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic")
    active = await introspect(client, access)
    assert_never_cached(active)
    body = active.json()
    # §2.2: active, plus what the API needs, limited to the asking API's own scopes.
    assert body["active"] is True
    assert body["scope"] == SCOPE
    assert body["token_type"] == "Bearer"
    assert body["client_id"] == body["sub"] == registered["client_id"]
    assert body["iss"] == (await client.get("/.well-known/openid-configuration")).json()["issuer"]
    assert body["exp"] > time.time() > body["iat"] - 5
    assert (await client.get("/connect/introspect")).status_code == 405


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def header_with(**fields: str) -> str:
    return b64url(json.dumps(fields).encode())


async def crafted(settings: Settings, claims: dict[str, Any]) -> str:
    """A token signed with the server's own key: only its claims can make it inactive."""
    key = await keys.KeyRing(settings).current()
    now = int(time.time())
    base = {"iss": issuer(settings), "aud": API, "iat": now, "nbf": now, "exp": now + 60}
    return key.sign({**base, **claims})


async def test_rfc_7662_inactive_tokens_say_nothing_more(
    client: Browser, registered: dict[str, Any], settings: Settings
) -> None:
    own = {"sub": registered["client_id"], "client_id": registered["client_id"], "jti": "j"}
    good = await crafted(settings, {**own, "scope": SCOPE})
    assert (await introspect(client, good)).json()["active"] is True, "crafting works"
    header, payload, _signature = good.split(".")
    unsigned = header_with(alg="none", typ="at+jwt")
    public = (await client.get("/.well-known/openid-configuration/jwks")).json()["keys"][0]
    # Algorithm confusion: the published public key used as an HMAC secret.
    signing_input = f"{header_with(typ='at+jwt', alg='HS256', kid=public['kid'])}.{payload}"
    mac = hmac.new(json.dumps(public).encode(), signing_input.encode(), hashlib.sha256)
    confused = f"{signing_input}.{b64url(mac.digest())}"
    tokens = {
        "expired": await crafted(settings, {**own, "scope": SCOPE, "iat": 0, "nbf": 0, "exp": 60}),
        "another issuer": await crafted(
            settings, {**own, "scope": SCOPE, "iss": "https://elders.be"}
        ),
        "another API's": await crafted(
            settings, {**own, "scope": "api_informat_sas_personeel.personeel.123456", "aud": "x"}
        ),
        "a scope no longer granted": await crafted(
            settings, {**own, "scope": f"{API}.leerlingen.999999"}
        ),
        "unsigned": f"{unsigned}.{payload}.",
        "HS256 with the public key": confused,
        "tampered": f"{header}.{payload[:-2]}AA.{_signature}",
        "not a token": "abc",
    }
    for reason, access in tokens.items():
        answer = await introspect(client, access)
        assert answer.json() == {"active": False}, reason
        assert_never_cached(answer)
