"""The identity server's HTTP interface: discovery, JWKS, /connect/token, /connect/introspect.

These are data APIs, stable and in the standards' formats (RFC 6749, 7662, 8414, 9068),
kept apart from the portal's pages. They take no cookies and need no CSRF token.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import jwt
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State

from app.config import Settings
from app.identity import keys
from app.identity.service import TokenError, TokenService, issuer, load_client

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_BODY = 8192


def _settings(state: State) -> Settings:
    settings: Settings = state.settings
    return settings


def _tokens(state: State) -> TokenService:
    service: TokenService = state.tokens
    return service


def oauth_error(error: TokenError) -> Response[bytes]:
    headers = dict(NO_STORE)
    if error.retry_after:
        headers["Retry-After"] = str(error.retry_after)
    # The same bytes for every cause of one error, so the answer tells nothing more.
    body = b'{"error":"' + error.error.encode() + b'"}'
    if error.error == "invalid_client" and error.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="token"'
    return Response(body, status_code=error.status, media_type="application/json", headers=headers)


def parse_form(body: bytes, content_type: str) -> dict[str, str]:
    """The form parameters; a repeated parameter or a body that is not a form is refused."""
    if content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        raise TokenError("invalid_request")
    if len(body) > MAX_BODY:
        raise TokenError("invalid_request")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise TokenError("invalid_request") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise TokenError("invalid_request")  # RFC 6749 §3.2: no repeated parameters
        form[name] = value
    return form


def client_credentials(authorization: str | None, form: dict[str, str]) -> tuple[str, str]:
    """client_secret_basic (RFC 6749 §2.3.1, form-encoded then base64) or client_secret_post;
    never both at once."""
    in_body = "client_id" in form or "client_secret" in form
    if authorization:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic" or (in_body and "client_secret" in form):
            raise TokenError("invalid_request")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise TokenError("invalid_client") from None
        client_id, separator, secret = decoded.partition(":")
        if not separator:
            raise TokenError("invalid_client")
        client_id, secret = unquote_plus(client_id), unquote_plus(secret)
        if "client_id" in form and form["client_id"] != client_id:
            raise TokenError("invalid_request")
        return client_id, secret
    return form.get("client_id", ""), form.get("client_secret", "")


class IdentityController(Controller):
    opt = {"exclude_from_csrf": True}  # noqa: RUF012 - Litestar reads it as a class attribute

    @get("/.well-known/openid-configuration", name="discovery")
    async def discovery(self, state: State) -> Response[dict[str, Any]]:
        base = issuer(_settings(state))
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
                "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
                "scopes_supported": sorted({api.scope_prefix for api in _settings(state).apis}),
            },
            headers={"Cache-Control": "public, max-age=300"},
        )

    @get("/.well-known/openid-configuration/jwks", name="jwks")
    async def jwks(self) -> Response[dict[str, Any]]:
        return Response(
            {"keys": await keys.published_keys()}, headers={"Cache-Control": "public, max-age=300"}
        )

    @post("/connect/token", name="token", status_code=200)
    async def token(self, request: Request[Any, Any, Any], state: State) -> Response[Any]:
        service = _tokens(state)
        address = request.client.host if request.client else "unknown"
        try:
            form = parse_form(await request.body(), request.headers.get("content-type", ""))
            grant_type = form.get("grant_type")
            if not grant_type:
                raise TokenError("invalid_request")
            client_id, secret = client_credentials(request.headers.get("authorization"), form)
            record = await service.authenticate(client_id, secret, address)
            if grant_type != "client_credentials":
                raise TokenError("unsupported_grant_type")
            scopes = service.granted_scopes(record, form.get("scope"))
            body = await service.issue(record, scopes)
        except TokenError as error:
            return oauth_error(error)
        return Response(body, headers=NO_STORE)

    @post("/connect/introspect", name="introspect", status_code=200)
    async def introspect(self, request: Request[Any, Any, Any], state: State) -> Response[Any]:
        """RFC 7662 for the vendor's APIs, each with its own secret from the settings."""
        settings = _settings(state)
        try:
            form = parse_form(await request.body(), request.headers.get("content-type", ""))
            resource, secret = client_credentials(request.headers.get("authorization"), form)
        except TokenError as error:
            return oauth_error(error)
        expected = settings.api_secrets.get(resource)
        if not expected or not hmac.compare_digest(secret.encode(), expected.encode()):
            return oauth_error(TokenError("invalid_client", 401))
        inactive = Response({"active": False}, headers=NO_STORE)
        token = form.get("token", "")
        claims = await _verified_claims(token, resource, settings)
        if claims is None:
            return inactive
        record = await load_client(str(claims.get("client_id", "")), "", settings)
        if record is None or not record.enabled:
            return inactive
        own = [
            scope
            for scope in str(claims.get("scope", "")).split()
            if scope.split(".", 1)[0] == resource and scope in record.scopes
        ]
        if not own:
            return inactive
        return Response(
            {
                "active": True,
                "scope": " ".join(own),
                "client_id": claims["client_id"],
                "sub": claims["sub"],
                "aud": claims["aud"],
                "iss": claims["iss"],
                "exp": claims["exp"],
                "iat": claims["iat"],
                "jti": claims["jti"],
                "token_type": "Bearer",
            },
            headers=NO_STORE,
        )


async def _verified_claims(token: str, resource: str, settings: Settings) -> dict[str, Any] | None:
    """The claims of a token this server signed for `resource`, if it is still valid."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        return None
    published = {key["kid"]: key for key in await keys.published_keys()}
    jwk = published.get(str(header.get("kid")))
    if jwk is None or header.get("typ") != "at+jwt":
        return None
    try:
        public_key = jwt.PyJWK.from_dict(jwk).key
        claims: dict[str, Any] = jwt.decode(
            token,
            public_key,
            algorithms=["ES256"],
            audience=resource,
            issuer=issuer(settings),
            options={"require": ["exp", "iat", "client_id"]},
        )
    except jwt.InvalidTokenError:
        return None
    return claims
