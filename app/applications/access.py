"""Stap 4: Vraag toegang tot schoolgegevens (manual §3.4).

A partner mails one or more school administrators a link to the application; it stays valid
for LINK_DAYS. Only the SHA-256 of the link's token is stored. An administrator may forward the
mail to a colleague (the manual says so), so the link is not single-use: whoever opens it must
still sign in to the back-office and hold rights for the school and the API.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from uuid import UUID

import msgspec

from app.applications.service import ApplicationError, get
from app.applications.tables import APPROVED, Application
from app.config import Settings
from app.crypto import new_token, token_hash
from app.mail import service as mail
from app.partners.tables import Partner
from app.piccolo_conf import DB
from app.schoolaccess.tables import AccessRequest
from app.staff.tables import AuditEvent
from app.web.forms import normalise_email
from app.web.i18n import N_

LINK_DAYS = 30
MOST_PER_REQUEST = 10
# What is parsed at most: a list longer than this is refused before any address is checked,
# so a huge post costs nothing (an address is at most 320 characters; repeats are allowed).
MOST_PARTS = 2 * MOST_PER_REQUEST
MOST_TEXT = MOST_PARTS * 321
MOST_PER_DAY = 50  # per application


class NotApproved(ApplicationError):
    """Only an approved application (with a client) can be granted data access."""


@dataclass(frozen=True)
class TooMany(ApplicationError):
    allowed: int


def too_long(text: str) -> bool:
    """More than a request may name, told without checking a single address."""
    return len(text) > MOST_TEXT or sum(1 for part in _parts(text) if part) > MOST_PARTS


def _parts(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ";").split(";")]


def parse_addresses(text: str) -> tuple[list[str], list[str]]:
    """(valid addresses, what was not an address) from a ';'-separated list, each once."""
    valid: dict[str, None] = {}  # an ordered set
    invalid: list[str] = []
    for candidate in _parts(text):
        if not candidate:
            continue
        address = normalise_email(candidate)
        if address is None:
            invalid.append(candidate)
        else:
            valid[address] = None
    return list(valid), invalid


async def request_access(
    account_id: UUID, application_id: UUID, addresses: list[str], settings: Settings
) -> None:
    """Mail each administrator the manual's message with a link to the application."""
    async with DB.transaction():
        application = await get(account_id, application_id)
        if application.status != APPROVED or not application.client_pk:
            raise NotApproved()
        # One request of an application at a time, so that parallel posts cannot each find
        # room left in the day's quota.
        await Application.select(Application.id).where(Application.id == application_id).lock_rows()
        today = await AccessRequest.raw(
            "SELECT count(*) AS n FROM access_request WHERE application = {}"
            " AND created_at > now() - interval '1 day'",
            application_id,
        )
        left = MOST_PER_DAY - int(today[0]["n"])
        if len(addresses) > left:
            raise TooMany(max(left, 0))
        partner = (
            await Partner.select(Partner.name).where(Partner.id == application.partner).first()
        )
        for address in addresses:
            token = new_token()
            await AccessRequest.raw(
                "INSERT INTO access_request (application, email, token_hash, requested_by,"
                " expires_at) VALUES ({}, {}, {}, {}, now() + make_interval(days => {}))",
                application_id,
                address,
                token_hash(token),
                account_id,
                LINK_DAYS,
            )
            await mail.send(
                settings,
                "access_request",
                address,
                "nl",
                N_("%(brand)s Partnerportaal - Data access for application %(application)s"),
                sender=settings.mail.noreply_sender,
                application=application.name,
                partner=partner["name"] if partner else "",
                path=f"/backoffice/toegang/{token}",
            )


class SentRequest(msgspec.Struct, frozen=True):
    email: str
    created_at: dt.datetime
    expires_at: dt.datetime
    used_at: dt.datetime | None
    state: str  # sent, used or expired


class AccessChange(msgspec.Struct, frozen=True):
    at: dt.datetime
    action: str  # granted or removed
    institution_number: str | None
    api: str | None
    school: str | None


async def sent_requests(account_id: UUID, application_id: UUID) -> list[SentRequest]:
    """The requests sent for an application, newest first, with their state."""
    await get(account_id, application_id)
    rows = await AccessRequest.raw(
        """
        SELECT email, created_at, expires_at, used_at,
            CASE WHEN used_at IS NOT NULL THEN 'used'
                 WHEN expires_at <= now() THEN 'expired' ELSE 'sent' END AS state
        FROM access_request WHERE application = {} ORDER BY created_at DESC, id DESC
        """,
        application_id,
    )
    return msgspec.convert(rows, list[SentRequest])


async def access_history(account_id: UUID, application_id: UUID) -> list[AccessChange]:
    """Grants and removals for the partner's own application, newest first."""
    await get(account_id, application_id)
    rows = await AuditEvent.raw(
        """
        SELECT e.at, e.action, e.institution_number, e.detail->>'api' AS api, s.name AS school
        FROM audit_event e LEFT JOIN school s ON s.institution_number = e.institution_number
        WHERE e.application = {} AND e.action IN ('granted', 'removed')
        ORDER BY e.at DESC, e.id DESC LIMIT 200
        """,
        application_id,
    )
    return msgspec.convert(rows, list[AccessChange])
