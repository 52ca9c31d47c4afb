"""The identity server's HTTP interface: discovery, JWKS, /connect/token, /connect/introspect.

These are data APIs, stable and in the standards' formats (RFC 6749, 7662, 8414, 9068),
kept apart from the portal's pages. They take no cookies and need no CSRF token.
"""

from __future__ import annotations

from typing import Any

import jwt
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State

from app.config import Settings
from app.identity import keys
from app.identity.oauth import JSON, NO_STORE, TokenError, client_credentials, parse_form
from app.identity.service import TokenService, issuer, load_client
from app.web.addresses import address_of
from app.web.controllers import settings_of

NO_STORE_HEADERS = {name.decode(): value.decode() for name, value in NO_STORE}
JSON_TYPE = JSON[1].decode()


def _tokens(state: State) -> TokenService:
    tokens: TokenService = state.tokens
    return tokens


def oauth_error(error: TokenError) -> Response[bytes]:
    headers = {name.decode(): value.decode() for name, value in error.headers()}
    del headers["content-type"]
    return Response(error.body(), status_code=error.status, media_type=JSON_TYPE, headers=headers)


class IdentityController(Controller):
    opt = {"exclude_from_csrf": True, "no_session": True}  # noqa: RUF012 - Litestar reads it as a class attribute

    @get("/.well-known/openid-configuration", name="discovery")
    async def discovery(self, state: State) -> Response[dict[str, Any]]:
        base = issuer(settings_of(state))
        return Response(
            {
                "issuer": base,
                "jwks_uri": f"{base}/.well-known/openid-configuration/jwks",
                "token_endpoint": f"{base}/connect/token",
                "introspection_endpoint": f"{base}/connect/introspect",
                "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
                "token_endpoint_auth_signing_alg_values_supported": [
                    settings_of(state).identity.signing_algorithm
                ],
                "scopes_supported": sorted({api.scope_prefix for api in settings_of(state).apis}),
            },
            headers={"Cache-Control": "public, max-age=300"},
        )

    @get("/.well-known/openid-configuration/jwks", name="jwks")
    async def jwks(self) -> Response[dict[str, Any]]:
        return Response(
            {"keys": await keys.published_keys()}, headers={"Cache-Control": "public, max-age=300"}
        )

    @post("/connect/introspect", name="introspect", status_code=200)
    async def introspect(self, request: Request[Any, Any, Any], state: State) -> Response[Any]:
        """RFC 7662 for the vendor's APIs, each with its own secret from the settings."""
        settings = settings_of(state)
        try:
            form = parse_form(await request.body(), request.headers.get("content-type", ""))
            resource, secret = client_credentials(request.headers.get("authorization"), form)
            address = address_of(request.client)
            await _tokens(state).authenticate_api(resource, secret, address)
        except TokenError as error:
            return oauth_error(error)
        inactive = Response({"active": False}, headers=NO_STORE_HEADERS, media_type=JSON_TYPE)
        token = form.get("token", "")
        claims = await _verified_claims(token, resource, settings)
        if claims is None:
            return inactive
        record = await load_client(str(claims.get("client_id", "")), settings)
        if record is None or not record.usable:
            return inactive
        # A JSON array in IdentityServer's token profile, a string in RFC 9068's.
        scopes = claims.get("scope", "")
        own = [
            scope
            for scope in (scopes.split() if isinstance(scopes, str) else map(str, scopes))
            if scope.split(".", 1)[0] == resource and scope in record.scope_set
        ]
        if not own:
            return inactive
        return Response(
            {
                "active": True,
                "scope": " ".join(own),
                "client_id": claims["client_id"],
                # RFC 7662 §2.2: the subject of a client's own token is the client.
                "sub": claims.get("sub", claims["client_id"]),
                "aud": claims["aud"],
                "iss": claims["iss"],
                "exp": claims["exp"],
                "iat": claims["iat"],
                "jti": claims["jti"],
                "token_type": "Bearer",
            },
            headers=NO_STORE_HEADERS,
            media_type=JSON_TYPE,
        )


async def _verified_claims(token: str, resource: str, settings: Settings) -> dict[str, Any] | None:
    """The claims of a token this server signed for `resource`, if it is still valid."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        return None
    published = {key["kid"]: key for key in await keys.published_keys()}
    jwk = published.get(str(header.get("kid")))
    if jwk is None or header.get("typ") != "at+jwt" or header.get("alg") != jwk.get("alg"):
        return None
    try:
        public_key = jwt.PyJWK.from_dict(jwk).key
        claims: dict[str, Any] = jwt.decode(
            token,
            public_key,
            algorithms=[jwk["alg"]],
            audience=resource,
            issuer=issuer(settings),
            options={"require": ["exp", "iat", "client_id"]},
        )
    except jwt.InvalidTokenError:
        return None
    return claims
