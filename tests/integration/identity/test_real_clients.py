"""What today's integrations send to IdentityServer, on the wire to a real `portal serve`.

Partner software and the vendor's APIs were written against IdentityServer (the design notes list
what their published code sends and expects): PHP's curl with an array posts
multipart/form-data, some clients send an empty `scope=`, resource servers on ASP.NET Core's
JwtBearer require one `scope` claim per scope. Each point is tried here with a real HTTP client
against a server started as a user starts it, with no base URL configured.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from app.db import create_database
from app.mail.tables import OutboxMail
from app.throttle import Throttle
from tests.conftest import INTROSPECTION_SECRET, PostgresServer, links_in
from tests.databases import drop_database, with_database
from tests.factories import PASSWORD, make_client, unique_email
from tests.serving import PORTAL, environment, free_port, portal_serve

pytestmark = pytest.mark.anyio
LEERLINGEN = "api_informat_sas_leerlingen.leerlingen.123456"
VOORINSCHRIJVINGEN = "api_informat_sas_leerlingen.voorinschrijvingen.123456"
PERSONEEL = "api_informat_sas_personeel.personeel.654321"
GRANTED = sorted([LEERLINGEN, VOORINSCHRIJVINGEN, PERSONEEL])


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where `portal serve` announces its address to the other commands (not the project's)."""
    return tmp_path_factory.mktemp("served") / "postgres"


@pytest.fixture(scope="module")
def served(database_url: str, data_dir: Path) -> Iterator[str]:
    env: dict[str, str | None] = {
        "DATABASE_URL": database_url,
        "PORTAL_DATABASE_DATA_DIR": str(data_dir),
        "PORTAL_PORTAL_BASE_URL": None,  # as in litestar.toml: the address served
        "PORTAL_API_SECRETS": f"api_informat_sas_leerlingen={INTROSPECTION_SECRET}",
    }
    with portal_serve(free_port(), "--no-access-log", env=env) as base:
        yield base


@pytest.fixture
async def http(served: str, committed: None) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served, timeout=10) as client:
        yield client


@pytest.fixture
async def registered(committed: None) -> dict[str, Any]:
    return await make_client(
        scopes=[("leerlingen", "123456"), ("voorinschrijvingen", "123456"), ("personeel", "654321")]
    )


def credentials(client: dict[str, Any]) -> dict[str, str]:
    return {"client_id": str(client["client_id"]), "client_secret": str(client["secret"])}


async def verified_claims(http: httpx.AsyncClient, access_token: str) -> dict[str, Any]:
    """The token checked as a resource server does: discovery, JWKS, signature, iss, aud."""
    discovery = (await http.get("/.well-known/openid-configuration")).json()
    jwks = (await http.get(discovery["jwks_uri"])).json()
    header = json.loads(base64.urlsafe_b64decode(access_token.split(".")[0] + "=="))
    assert (header["typ"], header["alg"]) == ("at+jwt", "ES256")
    assert header["kid"] in {key["kid"] for key in jwks["keys"]}
    decoded = jose_jwt.decode(access_token, KeySet.import_key_set(jwks), algorithms=["ES256"])
    jose_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": discovery["issuer"]},
        exp={"essential": True},
        nbf={"essential": True},
    ).validate(decoded.claims)
    return dict(decoded.claims)


def jwt_bearer_claims(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """The claims ASP.NET Core's JwtBearer makes of a token's payload (JwtSecurityTokenHandler
    without claim type mapping): a JSON array becomes one claim per element, anything else one
    claim with its value as text."""
    claims = []
    for name, value in payload.items():
        for each in value if isinstance(value, list) else [value]:
            claims.append((name, each if isinstance(each, str) else json.dumps(each)))
    return claims


def require_claim(claims: list[tuple[str, str]], name: str, value: str) -> bool:
    """`policy.RequireClaim(name, value)`: some claim of that type has exactly that value."""
    return (name, value) in claims


async def test_php_curl_with_an_array_posts_multipart_and_gets_a_token(
    http: httpx.AsyncClient, registered: dict[str, Any]
) -> None:
    fields = {"grant_type": "client_credentials", **credentials(registered), "scope": LEERLINGEN}
    # httpx's multipart encoder, with plain fields as curl sends them for an array.
    answer = await http.post(
        "/connect/token", files={name: (None, value) for name, value in fields.items()}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json; charset=UTF-8"
    body = answer.json()
    assert (body["token_type"], body["scope"]) == ("Bearer", LEERLINGEN)
    assert isinstance(body["expires_in"], int)
    claims = await verified_claims(http, body["access_token"])
    assert claims["scope"] == [LEERLINGEN]
    assert "sub" not in claims


async def test_multipart_has_the_limits_of_a_form(
    http: httpx.AsyncClient, registered: dict[str, Any]
) -> None:
    fields = {"grant_type": "client_credentials", **credentials(registered)}
    parts = {name: (None, value) for name, value in fields.items()}
    a_file = await http.post(
        "/connect/token", files={**parts, "scope": ("scope.txt", LEERLINGEN, "text/plain")}
    )
    repeated = await http.post(
        "/connect/token",
        files=[*parts.items(), ("grant_type", (None, "client_credentials"))],
    )
    oversized = await http.post("/connect/token", files={**parts, "padding": (None, "x" * 9000)})
    no_boundary = await http.post(
        "/connect/token",
        content=b"grant_type=client_credentials",
        headers={"content-type": "multipart/form-data"},
    )
    for refused in (a_file, repeated, oversized, no_boundary):
        assert (refused.status_code, refused.json()) == (400, {"error": "invalid_request"})


async def test_an_api_introspects_with_a_multipart_body_too(
    http: httpx.AsyncClient, registered: dict[str, Any]
) -> None:
    issued = await http.post(
        "/connect/token", data={"grant_type": "client_credentials", **credentials(registered)}
    )
    answer = await http.post(
        "/connect/introspect",
        files={"token": (None, issued.json()["access_token"])},
        auth=("api_informat_sas_leerlingen", INTROSPECTION_SECRET),
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["active"] is True
    assert body["scope"] == f"{LEERLINGEN} {VOORINSCHRIJVINGEN}", "only this API's scopes"
    assert body["sub"] == body["client_id"] == registered["client_id"]


@pytest.mark.parametrize("scope", ["", "   "], ids=["empty", "blank"])
async def test_an_empty_scope_is_every_granted_scope(
    http: httpx.AsyncClient, registered: dict[str, Any], scope: str
) -> None:
    for how in ("form", "multipart"):
        fields = {"grant_type": "client_credentials", **credentials(registered), "scope": scope}
        if how == "form":
            answer = await http.post("/connect/token", data=fields)
        else:
            answer = await http.post(
                "/connect/token", files={name: (None, value) for name, value in fields.items()}
            )
        assert answer.status_code == 200, (how, answer.text)
        assert answer.json()["scope"].split() == GRANTED
        claims = await verified_claims(http, answer.json()["access_token"])
        assert claims["scope"] == GRANTED


async def test_form_body_and_basic_give_identityserver_tokens(
    http: httpx.AsyncClient, registered: dict[str, Any]
) -> None:
    in_body = await http.post(
        "/connect/token", data={"grant_type": "client_credentials", **credentials(registered)}
    )
    in_header = await http.post(
        "/connect/token",
        data={"grant_type": "client_credentials"},
        auth=(str(registered["client_id"]), str(registered["secret"])),
    )
    for answer in (in_body, in_header):
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "no-store, no-cache, max-age=0"
        assert answer.headers["pragma"] == "no-cache"
        claims = await verified_claims(http, answer.json()["access_token"])
        assert set(claims) == {"iss", "nbf", "iat", "exp", "aud", "scope", "client_id", "jti"}
        assert claims["scope"] == GRANTED
        assert sorted(claims["aud"]) == [
            "api_informat_sas_leerlingen",
            "api_informat_sas_personeel",
        ]
        assert claims["client_id"] == registered["client_id"]


async def test_a_jwt_bearer_resource_server_finds_every_scope(
    http: httpx.AsyncClient, registered: dict[str, Any]
) -> None:
    answer = await http.post(
        "/connect/token", data={"grant_type": "client_credentials", **credentials(registered)}
    )
    payload = answer.json()["access_token"].split(".")[1]
    claims = jwt_bearer_claims(json.loads(base64.urlsafe_b64decode(payload + "==")))
    for scope in GRANTED:
        assert require_claim(claims, "scope", scope), scope
    assert require_claim(claims, "client_id", str(registered["client_id"]))
    # What RFC 9068's one string would have given such a server: no scope found.
    as_string = jwt_bearer_claims({"scope": " ".join(GRANTED)})
    assert not any(require_claim(as_string, "scope", scope) for scope in GRANTED)


async def test_other_clients_failing_never_lock_out_a_client_with_its_secret(
    http: httpx.AsyncClient, registered: dict[str, Any]
) -> None:
    statuses = [
        (
            await http.post(
                "/connect/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": f"stale-integration-{attempt}",
                    "client_secret": "oud-geheim",
                },
            )
        ).status_code
        for attempt in range(51)
    ]
    assert statuses == [400] * 50 + [429]
    blocked = await http.post(
        "/connect/token",
        data={"grant_type": "client_credentials", "client_id": "nog-een", "client_secret": "x"},
    )
    assert blocked.status_code == 429
    assert blocked.json() == {"error": "invalid_client"}
    assert int(blocked.headers["retry-after"]) > 0
    known = await http.post(
        "/connect/token", data={"grant_type": "client_credentials", **credentials(registered)}
    )
    assert known.status_code == 200, "a known client with its right secret gets its token at once"


def guesses(base: str, forwarded: list[str]) -> list[int]:
    """The statuses of token requests with unknown client ids, each with its X-Forwarded-For."""
    with httpx.Client(base_url=base, timeout=10) as http:
        return [
            http.post(
                "/connect/token",
                data={"grant_type": "client_credentials", "client_id": "g", "client_secret": "x"},
                headers={"X-Forwarded-For": each},
            ).status_code
            for each in forwarded
        ]


async def test_forwarding_headers_count_only_from_trusted_proxies(
    database_url: str, tmp_path: Path, committed: None
) -> None:
    env: dict[str, str | None] = {
        "DATABASE_URL": database_url,
        "PORTAL_DATABASE_DATA_DIR": str(tmp_path / "postgres"),
        "PORTAL_PORTAL_TRUSTED_PROXIES": None,
    }
    # No proxy is trusted by default: a client sending X-Forwarded-For through loopback
    # cannot reset its per-address limit with every request.
    with portal_serve(free_port(), "--no-access-log", env=env) as base:
        changing = [f"203.0.113.{n}" for n in range(51)]
        assert guesses(base, changing) == [400] * 50 + [429]
    await Throttle.delete(force=True)
    trusted = {**env, "PORTAL_PORTAL_TRUSTED_PROXIES": "127.0.0.1"}
    with portal_serve(free_port(), "--no-access-log", env=trusted) as base:
        assert guesses(base, ["198.51.100.7"] * 51) == [400] * 50 + [429]
        assert guesses(base, ["198.51.100.8"]) == [400], "another client behind the proxy"
        # Not an address: counted as one "unknown" client, never a fresh counter each time.
        odd = [f"not-an-address-{n}" for n in range(51)]
        assert guesses(base, odd) == [400] * 50 + [429]


async def test_without_a_base_url_the_issuer_and_mails_follow_the_port_served(
    http: httpx.AsyncClient, served: str, committed: None
) -> None:
    discovery = (await http.get("/.well-known/openid-configuration")).json()
    assert discovery["issuer"] == served
    assert discovery["token_endpoint"] == f"{served}/connect/token"
    email = unique_email()
    await http.get("/registreren")
    registration = await http.post(
        "/registreren",
        data={
            "_csrf_token": http.cookies["csrftoken"],
            "email": email,
            "password": PASSWORD,
            "password_repeat": PASSWORD,
            "terms": "yes",
        },
    )
    assert registration.status_code == 303
    mail = await OutboxMail.select(OutboxMail.text).where(OutboxMail.recipient == email).first()
    assert mail is not None
    activation = [link for link in links_in(mail["text"]) if "/activeren/" in link]
    assert activation and activation[0].startswith(f"{served}/"), activation


async def test_portal_demo_prints_the_address_served(
    served: str, data_dir: Path, postgres: PostgresServer
) -> None:
    name = f"portal_demo_address_{os.getpid()}"
    await drop_database(postgres.admin_url, name)
    await create_database(postgres.admin_url, name)  # `portal demo` migrates it
    try:
        printed = await anyio.to_thread.run_sync(
            demo, with_database(postgres.admin_url, name), data_dir
        )
    finally:
        await drop_database(postgres.admin_url, name)
    assert f"{served}/connect/token" in printed
    assert "127.0.0.1:8000" not in printed


def demo(database_url: str, data_dir: Path) -> str:
    return subprocess.run(
        [str(PORTAL), "demo"],
        env=environment(
            {
                "DATABASE_URL": database_url,
                "PORTAL_DATABASE_DATA_DIR": str(data_dir),
                "PORTAL_PORTAL_BASE_URL": None,
            }
        ),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
