"""/connect/token as existing integrations use it: IdentityServer's behaviour, RFC 6749/9068."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote_plus

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from app.identity import keys
from app.identity.importer import import_clients, read_csv, read_json
from app.identity.service import secret_hash
from app.identity.tables import Client, ClientSecret, ScopeGrant
from tests.conftest import INTROSPECTION_SECRET, Browser
from tests.factories import make_client

pytestmark = pytest.mark.anyio
SCOPE = "api_informat_sas_leerlingen.leerlingen.123456"
INVALID_CLIENT = b'{"error":"invalid_client"}'


async def token(client: Browser, data: dict[str, str], **kwargs: Any) -> httpx.Response:
    return await client.post("/connect/token", data=data, **kwargs)


def basic(client_id: str, secret: str) -> dict[str, str]:
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


async def verified(client: Browser, access_token: str) -> dict[str, Any]:
    """Check the token as a resource server would, with another JOSE library (joserfc)."""
    discovery = (await client.get("/.well-known/openid-configuration")).json()
    jwks = (await client.get(discovery["jwks_uri"].replace("http://127.0.0.1:8000", ""))).json()
    header = json.loads(base64.urlsafe_b64decode(access_token.split(".")[0] + "=="))
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    assert any(key["kid"] == header["kid"] for key in jwks["keys"])
    assert all("d" not in key for key in jwks["keys"]), "no private parts are published"
    decoded = jose_jwt.decode(access_token, KeySet.import_key_set(jwks), algorithms=["ES256"])
    jose_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": discovery["issuer"]},
        aud={"essential": True, "value": "api_informat_sas_leerlingen"},
        exp={"essential": True},
    ).validate(decoded.claims)
    claims = decoded.claims
    return dict(claims)


async def test_a_standard_oauth_client_gets_tokens_both_ways(client: Browser, app: Any) -> None:
    registered = await make_client(scopes=[("leerlingen", "123456"), ("leerlingen", "654321")])
    discovery = (await client.get("/.well-known/openid-configuration")).json()
    assert discovery["grant_types_supported"] == ["client_credentials"]
    endpoint = discovery["token_endpoint"].replace("http://127.0.0.1:8000", "http://testserver")
    for method in ("client_secret_post", "client_secret_basic"):
        async with AsyncOAuth2Client(
            client_id=registered["client_id"],
            client_secret=registered["secret"],
            token_endpoint_auth_method=method,
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
        ) as oauth:
            issued = await oauth.fetch_token(endpoint, grant_type="client_credentials")
        assert issued["token_type"] == "Bearer"
        assert issued["expires_in"] == 3600
        assert "refresh_token" not in issued
        claims = await verified(client, issued["access_token"])
        # IdentityServer's client-credentials token: no subject, the scopes as a JSON array.
        assert "sub" not in claims
        assert claims["client_id"] == registered["client_id"]
        assert claims["scope"] == [
            "api_informat_sas_leerlingen.leerlingen.123456",
            "api_informat_sas_leerlingen.leerlingen.654321",
        ]
        assert issued["scope"] == " ".join(claims["scope"])
        assert claims["exp"] - claims["iat"] == 3600
        assert claims["jti"]


async def test_the_token_response_is_never_cached(client: Browser) -> None:
    registered = await make_client()
    response = await token(
        client,
        {
            "grant_type": "client_credentials",
            "client_id": registered["client_id"],
            "client_secret": registered["secret"],
        },
    )
    assert response.status_code == 200
    # IdentityServer's headers, byte for byte.
    assert response.headers["cache-control"] == "no-store, no-cache, max-age=0"
    assert response.headers["pragma"] == "no-cache"
    assert response.headers["content-type"] == "application/json; charset=UTF-8"


async def test_asking_for_some_scopes_and_for_one_not_granted(client: Browser) -> None:
    registered = await make_client(scopes=[("leerlingen", "123456"), ("personeel", "123456")])
    auth = {"client_id": registered["client_id"], "client_secret": registered["secret"]}
    one = await token(client, {"grant_type": "client_credentials", "scope": SCOPE, **auth})
    assert one.json()["scope"] == SCOPE
    other_school = await token(
        client,
        {
            "grant_type": "client_credentials",
            **auth,
            "scope": "api_informat_sas_leerlingen.leerlingen.999999",
        },
    )
    assert other_school.status_code == 400
    assert other_school.content == b'{"error":"invalid_scope"}'
    both = await token(client, {"grant_type": "client_credentials", **auth})
    claims = await verified_unchecked_audience(both.json()["access_token"])
    assert sorted(claims["aud"]) == ["api_informat_sas_leerlingen", "api_informat_sas_personeel"]


async def verified_unchecked_audience(access_token: str) -> dict[str, Any]:
    payload = access_token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


async def test_every_kind_of_bad_client_gets_the_same_answer(client: Browser) -> None:
    good = await make_client()
    expired = await make_client()
    await ClientSecret.raw(
        "UPDATE client_secret SET expires_at = now() - interval '1 second' WHERE id = {}",
        expired["secret_id"],
    )
    revoked = await make_client()
    await ClientSecret.raw(
        "UPDATE client_secret SET revoked_at = now() WHERE id = {}", revoked["secret_id"]
    )
    disabled = await make_client(enabled=False)
    archived = await make_client(application_status="gearchiveerd")
    new = await make_client(application_status="nieuw")
    cases = [
        ("unknown-client", "whatever-secret-value"),
        (good["client_id"], "not-the-secret"),
        (expired["client_id"], expired["secret"]),
        (revoked["client_id"], revoked["secret"]),
        (disabled["client_id"], disabled["secret"]),
        (archived["client_id"], archived["secret"]),
        (new["client_id"], new["secret"]),
        (good["client_id"], ""),
    ]
    for client_id, secret in cases:
        response = await token(
            client,
            {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        )
        assert (response.status_code, response.content) == (400, INVALID_CLIENT), client_id
        assert response.headers["cache-control"] == "no-store, no-cache, max-age=0"
        basic_response = await token(
            client, {"grant_type": "client_credentials"}, headers=basic(client_id, secret)
        )
        assert (basic_response.status_code, basic_response.content) == (400, INVALID_CLIENT)
    approved = await make_client(application_status="goedgekeurd")
    fine = await token(
        client,
        {
            "grant_type": "client_credentials",
            "client_id": approved["client_id"],
            "client_secret": approved["secret"],
        },
    )
    assert fine.status_code == 200


@pytest.mark.parametrize(
    ("request_kwargs", "error"),
    [
        (
            {
                "content": b'{"grant_type": "client_credentials"}',
                "headers": {"content-type": "application/json"},
            },
            "invalid_request",
        ),
        (
            {
                "content": b"grant_type=client_credentials&grant_type=client_credentials",
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            },
            "invalid_request",
        ),
        # The client is checked first, as IdentityServer does.
        ({"data": {"client_id": "x"}}, "invalid_client"),
    ],
    ids=["json-body", "repeated-parameter", "no-grant-type-unknown-client"],
)
async def test_malformed_requests_are_refused(
    client: Browser, request_kwargs: dict[str, Any], error: str
) -> None:
    response = await client.post("/connect/token", **request_kwargs)
    assert response.status_code == 400
    assert response.json() == {"error": error}


async def test_two_ways_of_authentication_at_once_and_other_grants_are_refused(
    client: Browser,
) -> None:
    registered = await make_client()
    both = await token(
        client,
        {"grant_type": "client_credentials", "client_secret": registered["secret"]},
        headers=basic(registered["client_id"], registered["secret"]),
    )
    assert both.json() == {"error": "invalid_request"}
    password_grant = await token(
        client,
        {
            "grant_type": "password",
            "client_id": registered["client_id"],
            "client_secret": registered["secret"],
        },
    )
    assert password_grant.json() == {"error": "unsupported_grant_type"}
    no_grant = await token(
        client, {"client_id": registered["client_id"], "client_secret": registered["secret"]}
    )
    assert (no_grant.status_code, no_grant.json()) == (400, {"error": "unsupported_grant_type"})
    # IdentityServer answers any other method with invalid_request, not 405.
    for method in ("GET", "PUT", "DELETE"):
        other = await client.request(method, "/connect/token")
        assert (other.status_code, other.json()) == (400, {"error": "invalid_request"})
        assert other.headers["cache-control"] == "no-store, no-cache, max-age=0"


async def test_basic_credentials_are_form_encoded_first(client: Browser) -> None:
    registered = await make_client(client_id="school:een+twee", secret="geheim met spatie:+/=")
    response = await token(
        client,
        {"grant_type": "client_credentials"},
        headers=basic(registered["client_id"], registered["secret"]),
    )
    assert response.status_code == 200


async def test_identityserver_clients_keep_their_secrets(client: Browser, settings: Any) -> None:
    exported = json.dumps(
        [
            {
                "ClientId": "informat_customer_school",
                "ClientSecrets": [
                    {"Type": "SharedSecret", "Value": secret_hash("origineel-geheim-1")}
                ],
                "AllowedGrantTypes": ["client_credentials"],
                "AllowedScopes": [SCOPE, "api_informat_sas_personeel.personeel.123456", "openid"],
            }
        ]
    )
    report = await import_clients(read_json(exported), settings)
    assert report.clients_created == 1
    assert report.scopes_added == 2
    assert report.skipped == ["informat_customer_school: scope openid names no known API"]
    again = await import_clients(read_json(exported), settings)
    assert (again.clients_created, again.secrets_added, again.scopes_added) == (0, 0, 0)

    response = await token(
        client,
        {
            "grant_type": "client_credentials",
            "client_id": "informat_customer_school",
            "client_secret": "origineel-geheim-1",
        },
    )
    assert response.status_code == 200
    assert SCOPE in response.json()["scope"]

    csv_text = (
        f"client_id,secret_sha256,scopes\ncsv_client,{secret_hash('csv-geheim-123')},{SCOPE}\n"
    )
    await import_clients(read_csv(csv_text), settings)
    assert (
        await token(
            client,
            {
                "grant_type": "client_credentials",
                "client_id": "csv_client",
                "client_secret": "csv-geheim-123",
            },
        )
    ).status_code == 200


async def test_a_second_secret_overlaps_and_revoking_the_first_is_immediate(
    client: Browser,
) -> None:
    registered = await make_client()
    await ClientSecret.insert(
        ClientSecret(client=registered["id"], value_hash=secret_hash("tweede-geheim-456"))
    )
    for secret in (registered["secret"], "tweede-geheim-456"):
        response = await token(
            client,
            {
                "grant_type": "client_credentials",
                "client_id": registered["client_id"],
                "client_secret": secret,
            },
        )
        assert response.status_code == 200
    await ClientSecret.raw(
        "UPDATE client_secret SET revoked_at = now() WHERE id = {}", registered["secret_id"]
    )
    old = await token(
        client,
        {
            "grant_type": "client_credentials",
            "client_id": registered["client_id"],
            "client_secret": registered["secret"],
        },
    )
    assert old.content == INVALID_CLIENT
    new = await token(
        client,
        {
            "grant_type": "client_credentials",
            "client_id": registered["client_id"],
            "client_secret": "tweede-geheim-456",
        },
    )
    assert new.status_code == 200


async def test_a_removed_scope_is_gone_from_the_next_token(client: Browser) -> None:
    registered = await make_client(scopes=[("leerlingen", "123456"), ("leerlingen", "222222")])
    await ScopeGrant.delete().where(
        (ScopeGrant.client == registered["id"]) & (ScopeGrant.institution_number == "222222")
    )
    response = await token(
        client,
        {
            "grant_type": "client_credentials",
            "client_id": registered["client_id"],
            "client_secret": registered["secret"],
        },
    )
    assert response.json()["scope"] == SCOPE


async def test_tokens_of_a_rotated_key_still_verify(client: Browser, settings: Any) -> None:
    registered = await make_client()
    before = (
        await token(
            client,
            {
                "grant_type": "client_credentials",
                "client_id": registered["client_id"],
                "client_secret": registered["secret"],
            },
        )
    ).json()
    await keys.rotate(settings)
    jwks = (await client.get("/.well-known/openid-configuration/jwks")).json()
    assert len(jwks["keys"]) >= 2
    await verified(client, before["access_token"])


async def test_repeated_failures_from_one_address_are_refused_for_a_while(
    client: Browser,
) -> None:
    for attempt in range(51):
        await token(
            client,
            {
                "grant_type": "client_credentials",
                "client_id": f"guess-{attempt}",
                "client_secret": "x",
            },
        )
    response = await token(
        client, {"grant_type": "client_credentials", "client_id": "guess", "client_secret": "x"}
    )
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0


async def test_a_client_under_attack_keeps_working_for_its_owner(client: Browser) -> None:
    registered = await make_client()
    from app.throttle import Throttle

    await Throttle.raw(
        "INSERT INTO throttle (key, failures, blocked_until) VALUES"
        " ({}, 99, now() + interval '5 minutes')",
        f"token:client:{registered['client_id']}",
    )
    wrong = await token(
        client,
        {
            "grant_type": "client_credentials",
            "client_id": registered["client_id"],
            "client_secret": "x",
        },
    )
    assert wrong.status_code == 429
    right = await token(
        client,
        {
            "grant_type": "client_credentials",
            "client_id": registered["client_id"],
            "client_secret": registered["secret"],
        },
    )
    assert right.status_code == 200


async def test_introspection_for_the_vendors_apis(client: Browser) -> None:
    registered = await make_client(scopes=[("leerlingen", "123456"), ("personeel", "123456")])
    access = (
        await token(
            client,
            {
                "grant_type": "client_credentials",
                "client_id": registered["client_id"],
                "client_secret": registered["secret"],
            },
        )
    ).json()["access_token"]
    api = basic("api_informat_sas_leerlingen", INTROSPECTION_SECRET)

    active = await client.post("/connect/introspect", data={"token": access}, headers=api)
    body = active.json()
    assert body["active"] is True
    assert body["scope"] == SCOPE, "only this API's scopes"
    assert body["client_id"] == registered["client_id"]
    assert active.headers["cache-control"] == "no-store, no-cache, max-age=0"

    for bad in ("", "not-a-token", access[:-4] + "AAAA"):
        assert (
            await client.post("/connect/introspect", data={"token": bad}, headers=api)
        ).json() == {"active": False}
    await Client.update({Client.enabled: False}).where(Client.id == registered["id"])
    assert (
        await client.post("/connect/introspect", data={"token": access}, headers=api)
    ).json() == {"active": False}
    wrong = await client.post(
        "/connect/introspect",
        data={"token": access},
        headers=basic("api_informat_sas_leerlingen", "wrong-secret-000"),
    )
    assert wrong.status_code == 401
    assert wrong.content == INVALID_CLIENT


async def test_signing_keys_are_sealed_at_rest(client: Browser, settings: Any) -> None:
    from app.identity.tables import SigningKey

    # A key stored in plain text, as before sealing existed, signing now.
    await SigningKey.raw("UPDATE signing_key SET retired_at = now() WHERE retired_at IS NULL")
    kid, pem, jwk = keys._new_key("ES256")
    await SigningKey.raw(
        "INSERT INTO signing_key (kid, private_pem, public_jwk) VALUES ({}, {}, {}::jsonb)",
        kid,
        pem,
        json.dumps(jwk),
    )
    await keys.ensure_signing_key(settings)
    stored = await SigningKey.select(SigningKey.kid, SigningKey.private_pem)
    assert stored and all(row["private_pem"].startswith("sealed.v1.") for row in stored)
    assert not any("PRIVATE KEY" in row["private_pem"] for row in stored), "nothing in plain text"
    # The sealed key still signs, and what it signs verifies.
    current = await keys.KeyRing(settings).current()
    assert current.kid == kid
    registered = await make_client()
    issued = await token(
        client,
        {
            "grant_type": "client_credentials",
            "client_id": registered["client_id"],
            "client_secret": registered["secret"],
        },
    )
    await verified(client, issued.json()["access_token"])


async def test_a_new_secret_key_takes_over_the_sealed_signing_keys(
    client: Browser, settings: Any
) -> None:
    import dataclasses

    from app.crypto import Sealer
    from app.identity.tables import SigningKey

    await keys.ensure_signing_key(settings)
    changed = dataclasses.replace(
        settings,
        secret_key=settings.secret_key + "-nieuw",
        previous_secret_keys=(settings.secret_key,),
    )
    # What every instance does at start-up with the new key and the old one as previous.
    await keys.ensure_signing_key(changed)
    only_new = Sealer(changed.secret_key)
    for row in await SigningKey.select(SigningKey.kid, SigningKey.private_pem):
        assert not only_new.stale(row["private_pem"], f"signing-key:{row['kid']}")
    without_previous = dataclasses.replace(changed, previous_secret_keys=())
    assert (await keys.KeyRing(without_previous).current()).kid


async def test_switching_to_rs256_keeps_tokens_of_both_keys_verifying(
    client: Browser, settings: Any
) -> None:
    import dataclasses

    from app.identity.endpoint import TokenEndpoint
    from app.identity.service import TokenService

    registered = await make_client()
    grant = {
        "grant_type": "client_credentials",
        "client_id": registered["client_id"],
        "client_secret": registered["secret"],
    }
    before = (await token(client, grant)).json()["access_token"]
    rs256 = dataclasses.replace(
        settings, identity=dataclasses.replace(settings.identity, signing_algorithm="RS256")
    )
    # What an instance started with the new setting does: a new RS256 key signs from now on.
    await keys.ensure_signing_key(rs256)
    await keys.ensure_signing_key(rs256)  # and the next instance changes nothing more
    jwks = (await client.get("/.well-known/openid-configuration/jwks")).json()["keys"]
    assert [key["alg"] for key in jwks][:2] == ["RS256", "ES256"]
    rsa_key = jwks[0]
    assert rsa_key["kty"] == "RSA" and len(base64.urlsafe_b64decode(rsa_key["n"] + "==")) == 256
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=TokenEndpoint(TokenService(rs256))),
        base_url="http://testserver",
    ) as switched:
        after = (await switched.post("/connect/token", data=grant)).json()["access_token"]
    header = json.loads(base64.urlsafe_b64decode(after.split(".")[0] + "=="))
    assert (header["alg"], header["kid"]) == ("RS256", rsa_key["kid"])
    keyset = KeySet.import_key_set({"keys": jwks})
    for issued, algorithm in ((before, "ES256"), (after, "RS256")):
        decoded = jose_jwt.decode(issued, keyset, algorithms=[algorithm])
        assert decoded.claims["client_id"] == registered["client_id"]
        introspected = await client.post(
            "/connect/introspect",
            data={"token": issued},
            headers=basic("api_informat_sas_leerlingen", INTROSPECTION_SECRET),
        )
        assert introspected.json()["active"] is True, algorithm
