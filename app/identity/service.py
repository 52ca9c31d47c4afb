"""The identity server's rules: client authentication, scopes, access tokens.

Existing integrations must keep working unchanged (manual §2.2.2): client ids, secrets and
scope strings are IdentityServer's, and so are the answers of /connect/token.

Client secrets are high-entropy random strings. Only IdentityServer's hash of them is kept
(base64 of SHA-256), so secrets imported from the old server keep working; they are compared
in constant time. A slow password hash would make the token endpoint a CPU sink for no gain.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import jwt

from app.applications.tables import APPROVED
from app.config import Api, Settings
from app.identity.keys import KeyRing
from app.identity.tables import ClientSecret
from app.web import throttle
from app.web.throttle import Policy

# Failed client authentications: an address that keeps failing is refused for a while; a
# client id under attack gets its failures answered without a look at the secret, while its
# real owner's requests (with the right secret) keep working.
TOKEN_ADDRESS = Policy(
    "token:address",
    free=50,
    window=dt.timedelta(minutes=5),
    first_block=dt.timedelta(minutes=1),
    longest=dt.timedelta(minutes=15),
)
TOKEN_CLIENT = Policy(
    "token:client",
    free=20,
    window=dt.timedelta(minutes=5),
    first_block=dt.timedelta(seconds=30),
    longest=dt.timedelta(minutes=5),
)
LAST_USED_EVERY = 60.0


def secret_hash(secret: str) -> str:
    """IdentityServer's stored form of a shared secret."""
    return base64.b64encode(hashlib.sha256(secret.encode()).digest()).decode()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


class TokenError(Exception):
    """An OAuth 2.0 error response (RFC 6749 §5.2)."""

    def __init__(self, error: str, status: int = 400, retry_after: int = 0) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.retry_after = retry_after


@dataclass
class ClientRecord:
    id: int
    client_id: str
    enabled: bool
    application_status: str | None
    secrets: list[dict[str, Any]]
    grants: list[tuple[str, str]]
    address_blocked: int
    client_blocked: int
    scopes: list[str] = field(default_factory=list)


def scope_string(api: Api, institution_number: str) -> str:
    return f"{api.scope_prefix}.{institution_number}"


def parse_scope(settings: Settings, scope: str) -> tuple[str, str] | None:
    """(api key, institution number) of a scope string, or None if it names no known API."""
    prefix, _, institution = scope.rpartition(".")
    api = next((api for api in settings.apis if api.scope_prefix == prefix), None)
    if api is None or not institution:
        return None
    return api.key, institution


async def load_client(client_id: str, address: str, settings: Settings) -> ClientRecord | None:
    """Everything the token endpoint needs about a client, in one round trip."""
    rows = await ClientSecret.raw(
        """
        SELECT c.id, c.client_id, c.enabled, a.status AS application_status,
            coalesce((SELECT json_agg(json_build_object('id', s.id, 'hash', s.value_hash))
                      FROM client_secret s WHERE s.client = c.id AND s.revoked_at IS NULL
                      AND (s.expires_at IS NULL OR s.expires_at > now())), '[]') AS secrets,
            coalesce((SELECT json_agg(json_build_array(g.api, g.institution_number))
                      FROM scope_grant g WHERE g.client = c.id), '[]') AS grants,
            coalesce((SELECT extract(epoch FROM max(t.blocked_until) - now())::int
                      FROM throttle t WHERE t.key = {} AND t.blocked_until > now()), 0)
                AS address_blocked,
            coalesce((SELECT extract(epoch FROM max(t.blocked_until) - now())::int
                      FROM throttle t WHERE t.key = {} AND t.blocked_until > now()), 0)
                AS client_blocked
        FROM client c LEFT JOIN application a ON a.id = c.application
        WHERE c.client_id = {}
        """,
        f"{TOKEN_ADDRESS.name}:{address}",
        f"{TOKEN_CLIENT.name}:{client_id}",
        client_id,
    )
    if not rows:
        return None
    row = rows[0]
    record = ClientRecord(
        id=row["id"],
        client_id=row["client_id"],
        enabled=row["enabled"],
        application_status=row["application_status"],
        secrets=json.loads(row["secrets"]),
        grants=[tuple(grant) for grant in json.loads(row["grants"])],
        address_blocked=row["address_blocked"],
        client_blocked=row["client_blocked"],
    )
    apis = {api.key: api for api in settings.apis}
    record.scopes = sorted(
        scope_string(apis[api], number) for api, number in record.grants if api in apis
    )
    return record


def matching_secret(valid_secrets: list[dict[str, Any]], secret: str) -> int | None:
    """The id of the valid secret that matches, comparing every one in constant time."""
    candidate = secret_hash(secret).encode()
    found = None
    for stored in valid_secrets:
        if hmac.compare_digest(candidate, str(stored["hash"]).encode()):
            found = int(stored["id"])
    return found


class TokenService:
    """Issues access tokens for the client_credentials grant."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = KeyRing()
        self._last_used: dict[int, float] = {}

    async def address_blocked(self, address: str) -> int:
        return await throttle.seconds_blocked(TOKEN_ADDRESS, address)

    async def authenticate(self, client_id: str, secret: str, address: str) -> ClientRecord:
        record = await load_client(client_id, address, self.settings) if client_id else None
        if record is not None and record.address_blocked:
            raise TokenError("invalid_client", 429, record.address_blocked)
        secret_id = (
            matching_secret(record.secrets, secret) if record is not None and secret else None
        )
        usable = (
            record is not None
            and secret_id is not None
            and record.enabled
            and record.application_status in (None, APPROVED)
        )
        if not usable or record is None or secret_id is None:
            await self._failed(client_id, address, record)
            raise TokenError("invalid_client")
        await self._mark_used(secret_id)
        return record

    async def _failed(self, client_id: str, address: str, record: ClientRecord | None) -> None:
        wait = await throttle.record(TOKEN_ADDRESS, address)
        if client_id:
            await throttle.record(TOKEN_CLIENT, client_id)
        if wait:
            raise TokenError("invalid_client", 429, wait)
        if record is not None and record.client_blocked:
            raise TokenError("invalid_client", 429, record.client_blocked)

    async def _mark_used(self, secret_id: int) -> None:
        """Keep "last used" to the minute, without a write on every token request."""
        now = time.monotonic()
        if now - self._last_used.get(secret_id, -LAST_USED_EVERY) < LAST_USED_EVERY:
            return
        self._last_used[secret_id] = now
        await ClientSecret.raw(
            "UPDATE client_secret SET last_used_at = now() WHERE id = {}", secret_id
        )

    def granted_scopes(self, record: ClientRecord, requested: str | None) -> list[str]:
        """Absent: every granted scope. Present: each one must be granted."""
        if requested is None:
            if not record.scopes:
                raise TokenError("invalid_scope")
            return record.scopes
        wanted = requested.split()
        if not wanted or any(scope not in record.scopes for scope in wanted):
            raise TokenError("invalid_scope")
        return sorted(set(wanted))

    async def issue(self, record: ClientRecord, scopes: list[str]) -> dict[str, Any]:
        key = await self.keys.current()
        now = int(time.time())
        lifetime = self.settings.identity.token_lifetime_seconds
        audiences = sorted({scope.split(".", 1)[0] for scope in scopes})
        claims = {
            "iss": issuer(self.settings),
            "sub": record.client_id,
            "client_id": record.client_id,
            "aud": audiences[0] if len(audiences) == 1 else audiences,
            "scope": " ".join(scopes),
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": secrets.token_urlsafe(16),
        }
        token = jwt.encode(
            claims, key.private_key, algorithm="ES256", headers={"kid": key.kid, "typ": "at+jwt"}
        )
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": claims["scope"],
        }


def issuer(settings: Settings) -> str:
    return settings.portal.base_url.rstrip("/")
