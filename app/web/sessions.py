"""Server-side sessions of signed-in partners, stored in PostgreSQL.

The cookie holds a random token and the table only its SHA-256. Anonymous visitors get no
session at all; signing in always creates a new one (so a planted session id is worthless),
and signing out or a password reset deletes it. A session ends after a period without
activity (idle timeout) and, whatever the activity, a fixed time after sign-in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import msgspec
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from app.config import Settings
from app.crypto import new_token, token_hash
from app.web.tables import WebSession

# Writing last_seen_at on every request would turn every page view into a write.
TOUCH_AFTER = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class CurrentAccount:
    id: UUID
    email: str
    language: str
    session_hash: str
    partner_id: UUID | None = None


def cookie_name(settings: Settings) -> str:
    # The __Host- prefix makes browsers refuse the cookie unless Secure, host-only and Path=/.
    return "__Host-portal_session" if settings.production else "portal_session"


class SessionMiddleware(ASGIMiddleware):
    # Routes that never read a session (the identity server's) skip the cookie lookup.
    exclude_opt_key = "no_session"

    def __init__(self, settings: Settings) -> None:
        self.cookie = cookie_name(settings)
        self.idle = dt.timedelta(minutes=settings.accounts.session_idle_minutes)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        await self.identify(scope)
        await next_app(scope, receive, send)

    async def identify(self, scope: Scope) -> None:
        """Put the signed-in account, or None, in the scope (also for the error pages of
        addresses no route serves, which no route middleware sees)."""
        scope["user"] = None
        scope["auth"] = None
        token = Request(scope).cookies.get(self.cookie)
        if token:
            account = await load_session(token, self.idle)
            scope["user"] = account
            scope["auth"] = account.session_hash if account else None


async def load_session(token: str, idle: dt.timedelta) -> CurrentAccount | None:
    digest = token_hash(token)
    rows = await WebSession.raw(
        """
        SELECT a.id, a.email, a.language, a.partner, s.last_seen_at, now() AS now
        FROM web_session s JOIN account a ON a.id = s.account_id
        WHERE s.id_hash = {} AND s.expires_at > now() AND s.last_seen_at > now() - {}::interval
        """,
        digest,
        idle,
    )
    if not rows:
        return None
    row = rows[0]
    await touch(WebSession, digest, row)
    return CurrentAccount(row["id"], row["email"], row["language"], digest, row["partner"])


async def start_session(
    settings: Settings, response: Response[Any], account_id: UUID, previous: str | None
) -> None:
    """Create a fresh session for a sign-in and put its cookie on the response."""
    if previous:
        await WebSession.delete().where(WebSession.id_hash == token_hash(previous))
    token = new_token()
    now = dt.datetime.now(dt.UTC)
    await WebSession.insert(
        WebSession(
            id_hash=token_hash(token),
            account_id=account_id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + dt.timedelta(hours=settings.accounts.session_absolute_hours),
        )
    )
    put_cookie(response, cookie_name(settings), token, settings)


async def touch(table: type[WebSession] | Any, digest: str, row: dict[str, Any]) -> None:
    """Record activity at most once a minute (a session table with id_hash, last_seen_at)."""
    if row["now"] - row["last_seen_at"] > TOUCH_AFTER:
        await table.update({table.last_seen_at: row["now"]}).where(table.id_hash == digest)


async def keep(session_hash: str, key: str, value: object, minutes: int) -> None:
    """Keep a value with the session for a few minutes: the state of a form that takes two
    pages, on the server instead of in a hidden field."""
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)).timestamp()
    await WebSession.raw(
        "UPDATE web_session SET data = data || jsonb_build_object({}::text, {}::jsonb)"
        " WHERE id_hash = {}",
        key,
        msgspec.json.encode({"value": value, "until": until}).decode(),
        session_hash,
    )


async def kept(session_hash: str, key: str) -> object | None:
    """What `keep` kept, while it lasts."""
    row = await WebSession.select(WebSession.data).where(WebSession.id_hash == session_hash).first()
    data = row["data"] if row else None
    entry = (msgspec.json.decode(data) if isinstance(data, str) else data or {}).get(key)
    if not entry or entry["until"] < dt.datetime.now(dt.UTC).timestamp():
        return None
    value: object = entry["value"]
    return value


async def forget(session_hash: str, key: str) -> None:
    await WebSession.raw(
        "UPDATE web_session SET data = data - {}::text WHERE id_hash = {}", key, session_hash
    )


def put_cookie(response: Response[Any], name: str, token: str, settings: Settings) -> None:
    """A session cookie: HttpOnly, SameSite=Lax, whole site, Secure in production."""
    response.set_cookie(
        name, token, httponly=True, secure=settings.production, samesite="lax", path="/"
    )


async def end_session(
    settings: Settings, request: Request[Any, Any, Any], response: Response[Any]
) -> None:
    token = request.cookies.get(cookie_name(settings))
    if token:
        await WebSession.delete().where(WebSession.id_hash == token_hash(token))
    response.delete_cookie(cookie_name(settings), path="/")


async def end_all_sessions(account_id: UUID) -> None:
    await WebSession.delete().where(WebSession.account_id == account_id)


def requires_account(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard for partner pages; the error handler sends the visitor to Aanmelden."""
    if connection.scope.get("user") is None:
        raise SignInRequired()


class SignInRequired(NotAuthorizedException):
    """Handled by sending the visitor to `sign_in_path`, and back to the page afterwards.
    Each side of the portal (partners, the back-office) names its own sign-in page."""

    sign_in_path = "/aanmelden"


class ProfileRequired(NotAuthorizedException):
    """A signed-in account without a partner profile asked for a page that needs one."""


def requires_profile(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard for partner pages: signed in, and linked to a profile (manual §3.2)."""
    user: CurrentAccount | None = connection.scope.get("user")
    if user is None:
        raise SignInRequired()
    if user.partner_id is None:
        raise ProfileRequired()


def signed_in(request: Request[Any, Any, Any]) -> CurrentAccount:
    """The account of a request that passed the requires_account guard."""
    user: CurrentAccount | None = request.scope.get("user")
    if user is None:
        raise SignInRequired()
    return user


def current_account(request: Request[Any, Any, Any]) -> CurrentAccount | None:
    user: CurrentAccount | None = request.scope.get("user")
    return user
