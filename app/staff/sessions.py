"""Back-office sessions: separate from partners' (own table, own cookie) and shorter.

A partner's session never opens a back-office page and a staff session never opens a
partner page: each side's guard looks only at its own cookie.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from app.config import Settings
from app.crypto import new_token, token_hash
from app.staff.service import CurrentStaff
from app.staff.tables import HELPDESK, SCHOOL_ADMIN, StaffSession
from app.web.sessions import SignInRequired, put_cookie, touch


class StaffSignInRequired(SignInRequired):
    """Handled by sending the visitor to the back-office sign-in page."""

    sign_in_path = "/backoffice/aanmelden"


# Between the password and the second factor: time enough to open the authenticator app.
CODE_MINUTES = 5


def cookie_name(settings: Settings) -> str:
    return "__Host-portal_staff" if settings.production else "portal_staff"


async def load(
    token: str, settings: Settings, *, waiting_for_code: bool = False, touch_it: bool = True
) -> CurrentStaff | None:
    """The session's staff member; `waiting_for_code` asks for a session that has passed the
    password but not yet the second factor (only the code page does). `touch_it=False` checks
    without counting as activity (an open live stream is not someone at work)."""
    digest = token_hash(token)
    idle = dt.timedelta(minutes=settings.accounts.staff_session_idle_minutes)
    rows = await StaffSession.raw(
        """
        SELECT st.id, st.username, st.role, s.last_seen_at, now() AS now
        FROM staff_session s JOIN staff st ON st.id = s.staff
        WHERE s.id_hash = {} AND s.expires_at > now() AND s.last_seen_at > now() - {}::interval
            AND st.active AND s.verified = {}
        """,
        digest,
        idle,
        not waiting_for_code,
    )
    if not rows:
        return None
    row = rows[0]
    if touch_it:
        await touch(StaffSession, digest, row)
    return CurrentStaff(row["id"], row["username"], row["role"], digest)


async def start(
    settings: Settings,
    response: Response[Any],
    staff_id: int,
    previous: str | None,
    *,
    verified: bool = True,
) -> None:
    """A fresh session id for every sign-in, and again after the second factor."""
    if previous:
        await StaffSession.delete().where(StaffSession.id_hash == token_hash(previous))
    token = new_token()
    hours = settings.accounts.staff_session_absolute_hours
    await StaffSession.raw(
        "INSERT INTO staff_session (id_hash, staff, expires_at, verified)"
        " VALUES ({}, {}, now() + make_interval(mins => {}), {})",
        token_hash(token),
        staff_id,
        hours * 60 if verified else CODE_MINUTES,
        verified,
    )
    put_cookie(response, cookie_name(settings), token, settings)


async def end(settings: Settings, request: Request[Any, Any, Any], response: Response[Any]) -> None:
    token = request.cookies.get(cookie_name(settings))
    if token:
        await StaffSession.delete().where(StaffSession.id_hash == token_hash(token))
    response.delete_cookie(cookie_name(settings), path="/")


async def requires_staff(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard for back-office pages: a valid staff session (sets scope["staff"])."""
    settings: Settings = connection.app.state.settings
    token = connection.cookies.get(cookie_name(settings))
    staff = await load(token, settings) if token else None
    if staff is None:
        raise StaffSignInRequired()
    connection.scope["staff"] = staff  # type: ignore[typeddict-unknown-key]


def _requires_role(role: str) -> Guard:
    async def guard(
        connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        await requires_staff(connection, handler)
        if connection.scope["staff"].role != role:  # type: ignore[typeddict-item]
            raise PermissionDeniedException()

    return guard


requires_helpdesk = _requires_role(HELPDESK)
requires_school_admin = _requires_role(SCHOOL_ADMIN)


def current(request: Request[Any, Any, Any]) -> CurrentStaff:
    staff = request.scope.get("staff")
    if not isinstance(staff, CurrentStaff):
        raise StaffSignInRequired()
    return staff
