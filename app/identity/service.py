"""The identity server's rules: client authentication, scopes, access tokens.

Existing integrations must keep working unchanged (manual §2.2.2): client ids, secrets and
scope strings are IdentityServer's, and so are the answers of /connect/token.

Client secrets are high-entropy random strings. Only IdentityServer's hash of them is kept
(base64 of SHA-256), so secrets imported from the old server keep working; they are compared
in constant time. A slow password hash would make the token endpoint a CPU sink for no gain.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import datetime as dt
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypedDict

import asyncpg
import msgspec

from app import db, throttle
from app.config import Api, Settings
from app.identity import diagnostics as causes
from app.identity.cache import BLOCKED, ClientCache
from app.identity.diagnostics import Diagnostics, Failure
from app.identity.keys import KeyRing
from app.identity.oauth import TokenError
from app.identity.scopes import parse_scope, scope_string
from app.identity.tables import ClientSecret
from app.piccolo_conf import DB
from app.throttle import Policy
from app.vocabulary import APPROVED
from app.vocabulary import ARCHIVED as ARCHIVED_STATUS

# Failed client authentications. Failures with client ids nobody has slow down only requests
# with unknown client ids from that address, so a stale integration, or a school's NAT, never
# locks out the other clients behind the same address (IdentityServer has no such coupling
# either). Failures of a known client id count against that client id: its wrong secrets are
# answered 429 for a while, while its owner's requests with the right secret keep working.
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
BEARER = "Bearer"
LAST_USED_EVERY = 60.0
LAST_USED_WRITE_AFTER = 5.0

log = logging.getLogger(__name__)


class TokenAnswer(TypedDict):
    """/connect/token's answer, in IdentityServer's order."""

    access_token: str
    token_type: str
    expires_in: int
    scope: str


def secret_hash(secret: str) -> str:
    """IdentityServer's stored form of a shared secret."""
    return base64.b64encode(hashlib.sha256(secret.encode()).digest()).decode()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """What the token endpoint needs to know about a client, as one process remembers it."""

    id: int
    client_id: str
    enabled: bool
    application_status: str | None
    # None for a client without an application; a deactivated partner's clients get nothing.
    partner_active: bool | None
    # (id, IdentityServer hash, expiry as a Unix time or None) of each unrevoked secret.
    secrets: tuple[tuple[int, str, float | None], ...]
    scopes: tuple[str, ...]
    scope_set: frozenset[str] = field(default_factory=frozenset)

    @property
    def usable(self) -> bool:
        return (
            self.enabled
            and self.application_status in (None, APPROVED)
            and self.partner_active is not False
        )

    def valid_secrets(self) -> list[tuple[int, str]]:
        now = time.time()
        return [
            (id_, hash_) for id_, hash_, expires in self.secrets if not expires or expires > now
        ]


# Everything the token endpoint needs about a client, in one statement (prepared by asyncpg
# once per connection).
CLIENT_QUERY = """
SELECT c.id, c.client_id, c.enabled, a.status AS application_status,
    p.active AS partner_active,
    coalesce((SELECT json_agg(json_build_array(
                        s.id, s.value_hash, extract(epoch FROM s.expires_at)))
              FROM client_secret s WHERE s.client = c.id AND s.revoked_at IS NULL
              AND (s.expires_at IS NULL OR s.expires_at > now())), '[]') AS secrets,
    coalesce((SELECT json_agg(json_build_array(g.api, g.institution_number))
              FROM scope_grant g WHERE g.client = c.id), '[]') AS grants
FROM client c LEFT JOIN application a ON a.id = c.application
LEFT JOIN partner p ON p.id = a.partner
"""
ONE_CLIENT = CLIENT_QUERY + "WHERE c.client_id = $1"
# The newest first, should there be more than a process keeps.
EVERY_CLIENT = CLIENT_QUERY + "ORDER BY c.id DESC LIMIT $1"


def client_record(row: Mapping[str, Any], apis: dict[str, Api]) -> ClientRecord:
    scopes = sorted(
        {
            scope_string(apis[api], number)
            for api, number in msgspec.json.decode(row["grants"])
            if api in apis
        }
    )
    return ClientRecord(
        id=row["id"],
        client_id=row["client_id"],
        enabled=row["enabled"],
        application_status=row["application_status"],
        partner_active=row["partner_active"],
        secrets=tuple(
            (int(id_), str(hash_), float(expires) if expires else None)
            for id_, hash_, expires in msgspec.json.decode(row["secrets"])
        ),
        scopes=tuple(scopes),
        scope_set=frozenset(scopes),
    )


async def load_client(client_id: str, settings: Settings) -> ClientRecord | None:
    """The client's record, in one round trip."""
    rows = await db.fetch(DB, ONE_CLIENT, client_id)
    if not rows:
        return None
    return client_record(rows[0], {api.key: api for api in settings.apis})


async def load_every_client(
    connection: asyncpg.Connection, most: int, settings: Settings
) -> list[tuple[str, ClientRecord]]:
    apis = {api.key: api for api in settings.apis}
    rows = await connection.fetch(EVERY_CLIENT, most)
    return [(row["client_id"], client_record(row, apis)) for row in rows]


def matching_secret(valid_secrets: Iterable[tuple[int, str]], secret: str) -> int | None:
    """The id of the valid secret that matches, comparing every one in constant time."""
    candidate = secret_hash(secret).encode()
    found = None
    for secret_id, stored in valid_secrets:
        if hmac.compare_digest(candidate, stored.encode()):
            found = secret_id
    return found


class TokenService:
    """Issues access tokens for the client_credentials grant.

    Clients come from the process's memory (app.identity.cache); anything that would refuse
    a request from memory is checked against the database before the refusal, so a new secret
    or a new scope works the moment it is committed.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = KeyRing(settings)
        self.clients: ClientCache[ClientRecord] = ClientCache(
            lambda client_id: load_client(client_id, settings),
            settings.identity.client_memory_size,
            lambda connection, most: load_every_client(connection, most, settings),
        )
        self._issuer = issuer(settings)
        self._rfc9068 = settings.identity.token_profile == "rfc9068"  # noqa: S105
        self._last_used: dict[int, float] = {}
        self._unwritten: set[int] = set()
        self._writer: asyncio.Task[None] | None = None
        self.diagnostics = Diagnostics(settings)

    def start(self) -> None:
        self.clients.start(self.settings.database.url)

    async def stop(self) -> None:
        await self.clients.stop()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        # What was noted since the last write is written now.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._write_last_used(0), timeout=5)
        await self.diagnostics.stop()

    async def seconds_blocked(self, policy: Policy, subject: str) -> int:
        remembered = self.clients.seconds_blocked(throttle.key(policy, subject))
        if remembered is not None:
            return remembered
        return await throttle.seconds_blocked(policy, subject)

    async def authenticate(self, client_id: str, secret: str, address: str) -> ClientRecord:
        record = await self.clients.get(client_id) if client_id else None
        secret_id = self._check(record, secret)
        if secret_id is None and record is not None:
            record = await self.clients.get(client_id, reload=True)
            secret_id = self._check(record, secret)
        if record is None:
            await self._refuse_unknown(address)
        if secret_id is None:
            wait = await throttle.record(TOKEN_CLIENT, client_id)
            self._note_refusal(record, secret, address, wait)
            raise TokenError("invalid_client", 429 if wait else 400, wait)
        self._mark_used(secret_id)
        return record

    def _note_refusal(self, record: ClientRecord, secret: str, address: str, wait: int) -> None:
        """Why a known client was refused, for its partner's page (written later, in batch)."""
        failure = Failure(record.id, dt.datetime.now(dt.UTC), causes.WRONG_SECRET, address)
        if not record.enabled:
            failure.cause = causes.DISABLED
        elif record.partner_active is False:
            failure.cause = causes.PARTNER_INACTIVE
        elif record.application_status == ARCHIVED_STATUS:
            failure.cause = causes.ARCHIVED
        elif record.application_status not in (None, APPROVED):
            failure.cause = causes.NOT_APPROVED
        elif wait:
            failure.cause = causes.BLOCKED
            failure.detail["until"] = (failure.at + dt.timedelta(seconds=wait)).isoformat()
        else:
            failure.presented_hash = secret_hash(secret)  # compared later, never written
        self.diagnostics.failed(failure)

    @staticmethod
    def _check(record: ClientRecord | None, secret: str) -> int | None:
        if record is None or not record.usable:
            return None
        return matching_secret(record.valid_secrets(), secret)

    async def authenticate_api(self, resource: str, secret: str, address: str) -> None:
        """An API asking to introspect a token proves it is that API with the secret from the
        settings. Failures count against the client address like unknown client ids at the
        token endpoint, so a secret cannot be guessed at leisure here either."""
        wait = await self.seconds_blocked(TOKEN_ADDRESS, address)
        if wait:
            raise TokenError("invalid_client", 429, wait)
        expected = self.settings.api_secrets.get(resource)
        if not expected or not hmac.compare_digest(secret.encode(), expected.encode()):
            await self._failed_at(address)
            raise TokenError("invalid_client", 401)

    async def _refuse_unknown(self, address: str) -> NoReturn:
        """A client id nobody has: refused, and counted against the address it came from."""
        wait = await self.seconds_blocked(TOKEN_ADDRESS, address)
        if not wait:
            await self._failed_at(address)
        raise TokenError("invalid_client", 429 if wait else 400, wait)

    async def _failed_at(self, address: str) -> None:
        wait = await throttle.record(TOKEN_ADDRESS, address)
        if wait:
            # Every process refuses this address from now on, without a database round trip.
            key = throttle.key(TOKEN_ADDRESS, address)
            self.clients.block(key, wait)
            await ClientSecret.raw("SELECT pg_notify({}, {})", BLOCKED, f"{key} {wait}")
            raise TokenError("invalid_client", 429, wait)

    def _mark_used(self, secret_id: int) -> None:
        """Keep "last used" to the minute, beside the requests rather than in their way: each
        secret is noted at most once a minute, and the notes are written together, in one
        statement every few seconds (with tens of thousands of clients, one write per token
        would be one write per request)."""
        now = time.monotonic()
        if now - self._last_used.get(secret_id, -LAST_USED_EVERY) < LAST_USED_EVERY:
            return
        self._last_used[secret_id] = now
        self._unwritten.add(secret_id)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(
                self._write_last_used(LAST_USED_WRITE_AFTER),
                name="last-used",
                context=contextvars.Context(),
            )

    async def _write_last_used(self, after: float) -> None:
        await asyncio.sleep(after)
        used, self._unwritten = self._unwritten, set()
        if not used:
            return
        try:
            await db.fetch(
                DB, "UPDATE client_secret SET last_used_at = now() WHERE id = ANY($1)", list(used)
            )
        except Exception:  # bookkeeping only: a failed write must not end up unobserved
            log.warning("could not record the use of %d client secrets", len(used), exc_info=True)
        now = time.monotonic()
        for secret_id, noted in list(self._last_used.items()):
            if now - noted >= LAST_USED_EVERY:
                del self._last_used[secret_id]

    async def granted_scopes(
        self, record: ClientRecord, requested: str | None, address: str = ""
    ) -> list[str]:
        """Absent or blank: every granted scope. Present: each one must be granted."""
        try:
            return self._granted(record, requested)
        except TokenError:
            fresh = await self.clients.get(record.client_id, reload=True)
            try:
                return self._granted(fresh or record, requested)
            except TokenError:
                self._note_scopes(fresh or record, requested, address)
                raise

    def _note_scopes(self, record: ClientRecord, requested: str | None, address: str) -> None:
        wanted = requested.split() if requested else []
        missing = []
        for scope in sorted(set(wanted) - record.scope_set):
            parsed = parse_scope(self.settings, scope)
            if parsed is not None:
                missing.append({"api": parsed[0], "school": parsed[1]})
        failure = Failure(record.id, dt.datetime.now(dt.UTC), causes.SCOPE_NOT_GRANTED, address)
        failure.detail["missing"] = missing
        failure.detail["unknown"] = len(set(wanted) - record.scope_set) - len(missing)
        self.diagnostics.failed(failure)

    @staticmethod
    def _granted(record: ClientRecord, requested: str | None) -> list[str]:
        """Absent, empty or blank: every granted scope, as IdentityServer answers."""
        wanted = requested.split() if requested else []
        if not wanted:
            if not record.scopes:
                raise TokenError("invalid_scope")
            return list(record.scopes)
        if not record.scope_set.issuperset(wanted):
            raise TokenError("invalid_scope")
        return sorted(set(wanted))

    async def issue(self, record: ClientRecord, scopes: list[str]) -> TokenAnswer:
        key = await self.keys.current()
        now = int(time.time())
        lifetime = self.settings.identity.token_lifetime_seconds
        audiences = sorted({scope.split(".", 1)[0] for scope in scopes})
        audience = audiences[0] if len(audiences) == 1 else audiences
        scope = " ".join(scopes)
        claims: dict[str, object]
        if self._rfc9068:
            claims = {
                "iss": self._issuer,
                "sub": record.client_id,
                "client_id": record.client_id,
                "aud": audience,
                "scope": scope,
                "iat": now,
                "nbf": now,
                "exp": now + lifetime,
                "jti": secrets.token_urlsafe(16),
            }
        else:
            # IdentityServer4 4.x and Duende: no subject for a client, and the scopes as a JSON
            # array (also one), which ASP.NET Core's JwtBearer maps to one claim per scope.
            claims = {
                "iss": self._issuer,
                "nbf": now,
                "iat": now,
                "exp": now + lifetime,
                "aud": audience,
                "scope": scopes,
                "client_id": record.client_id,
                "jti": secrets.token_urlsafe(16),
            }
        self.diagnostics.issued(record.id, scope)
        token = key.sign(claims)
        return TokenAnswer(access_token=token, token_type=BEARER, expires_in=lifetime, scope=scope)


def issuer(settings: Settings) -> str:
    return settings.portal.base_url.rstrip("/")
