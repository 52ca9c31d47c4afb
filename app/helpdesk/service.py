"""The helpdesk's work (manual §3.3.1): the approval queue, reviewing, archiving, partners,
search and the audit log.

Every action checks the acting staff member's role here, not only in the pages; each one is a
single transaction, and approving or rejecting an application that someone else handled in the
meantime changes nothing and says who did what.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import msgspec

from app.applications.service import APIS, QUEUE_CHANNEL, Case, case, tell_partner
from app.applications.tables import APPROVED, ARCHIVED, NEW, REJECTED, Application
from app.config import Settings
from app.identity.tables import Client
from app.partners.tables import Partner
from app.piccolo_conf import DB
from app.staff.service import BackofficeError, CurrentStaff, NotFound, audit, require_helpdesk
from app.staff.service import NotAllowed as NotAllowed  # the helpdesk's actions raise it
from app.staff.tables import AuditEvent
from app.web.forms import most, plain_text
from app.web.i18n import N_

MAX_REASON = most(Application.rejection_reason)
STATUSES = (NEW, APPROVED, REJECTED, ARCHIVED)
QUEUE_SHOWN = 50
SEARCH_LIMIT = 50


class ReasonRequired(BackofficeError):
    pass


@dataclass(frozen=True)
class AlreadyHandled(BackofficeError):
    """Another reviewer decided first."""

    by: str
    status: str
    at: dt.datetime | None


class Waiting(msgspec.Struct, frozen=True):
    id: UUID
    name: str
    submitted_at: dt.datetime
    partner: str
    waiting_seconds: int
    apis: list[str]
    # A rejected application submitted again: the reason it was rejected for; else "".
    previous_reason: str


class PartnerApplication(msgspec.Struct, frozen=True):
    id: UUID
    name: str
    status: str
    client_id: str | None
    grants: int


class PartnerDetail(msgspec.Struct, frozen=True):
    id: UUID
    name: str
    slug: str
    email: str
    website: str
    active: bool
    public: bool
    listed: bool
    enterprise_number: str | None
    created_at: dt.datetime
    contact_person: str
    street: str
    house_number: str
    postcode: str
    municipality: str
    country: str
    applications: list[PartnerApplication] = []
    accounts: list[str] = []


@dataclass(frozen=True)
class Reviewed:
    """An application as the helpdesk reviews it, with its partner's context."""

    application: Case
    partner: PartnerDetail


class PartnerHit(msgspec.Struct, frozen=True):
    id: UUID
    name: str
    active: bool
    listed: bool


class ApplicationHit(msgspec.Struct, frozen=True):
    id: UUID
    name: str
    status: str
    partner_id: UUID
    partner: str
    client_id: str | None


class Found(msgspec.Struct, frozen=True):
    partners: list[PartnerHit] = []
    applications: list[ApplicationHit] = []


class Event(msgspec.Struct, frozen=True):
    at: dt.datetime
    actor: str
    action: str
    institution_number: str | None
    detail: dict[str, Any]
    application: str | None
    partner: str | None


async def queue(staff: CurrentStaff) -> tuple[list[Waiting], int]:
    """The QUEUE_SHOWN applications waiting longest for a decision, oldest first, and how
    many wait in all."""
    require_helpdesk(staff)
    rows = await Application.raw(
        f"""
        SELECT a.id, a.name, a.submitted_at, p.name AS partner,
            a.rejection_reason AS previous_reason,
            extract(epoch FROM now() - a.submitted_at)::bigint AS waiting_seconds, {APIS},
            count(*) OVER () AS total
        FROM application a JOIN partner p ON p.id = a.partner
        WHERE a.status = {{}}
        ORDER BY a.submitted_at, a.id
        LIMIT {{}}
        """,  # noqa: S608 - constants only; the values are bound parameters
        NEW,
        QUEUE_SHOWN,
    )
    return msgspec.convert(rows, list[Waiting]), int(rows[0]["total"]) if rows else 0


async def _decide(staff: CurrentStaff, application_id: UUID, status: str, reason: str) -> Case:
    """Set the decision if the application is still Nieuw; else say who decided first."""
    now = dt.datetime.now(dt.UTC)
    decided = (
        await Application.update(
            {
                Application.status: status,
                Application.rejection_reason: reason,
                Application.handled_by: staff.id,
                Application.handled_at: now,
                Application.updated_at: now,
            }
        )
        .where((Application.id == application_id) & (Application.status == NEW))
        .returning(Application.id)
    )
    if decided and (application := await case(application_id)):
        return application
    current = await Application.raw(
        "SELECT a.status, a.handled_at, s.username FROM application a"
        " LEFT JOIN staff s ON s.id = a.handled_by WHERE a.id = {}",
        application_id,
    )
    if not current:
        raise NotFound()
    row = current[0]
    raise AlreadyHandled(row["username"] or "", row["status"], row["handled_at"])


async def review(staff: CurrentStaff, application_id: UUID) -> Reviewed:
    """One application as the helpdesk reviews it, and who asks: the partner's details and
    its other applications."""
    require_helpdesk(staff)
    application = await case(application_id)
    if application is None:
        raise NotFound()
    return Reviewed(application, await partner_detail(staff, application.partner))


def _client_id(slug: str) -> str:
    """Generated, never chosen by the partner: the profile's slug and 48 random bits."""
    return f"{slug[:40].replace('-', '_')}_{secrets.token_hex(6)}"


async def _queue_changed(application_id: UUID) -> None:
    await Application.raw("SELECT pg_notify({}, {})", QUEUE_CHANNEL, str(application_id))


async def approve(staff: CurrentStaff, application_id: UUID, settings: Settings) -> str:
    """Goedkeuren: the application gets its client; partner and contact are told they can
    generate a secret now. Returns the new client id."""
    require_helpdesk(staff)
    async with DB.transaction():
        application = await _decide(staff, application_id, APPROVED, "")
        client_id = _client_id(application.partner_slug)
        await Client.insert(
            Client(client_id=client_id, application=application_id, description=application.name)
        )
        subject = N_("%(brand)s Partnerportaal — Application approved: %(application)s")
        await tell_partner(
            application, "application_approved", subject, settings, reason="", client_id=client_id
        )
        await audit(staff.username, "approved", application.partner, application_id)
        await _queue_changed(application_id)
    return client_id


async def reject(
    staff: CurrentStaff, application_id: UUID, reason: str, settings: Settings
) -> None:
    """Weigeren: with a reason, which is mailed and shown to the partner."""
    require_helpdesk(staff)
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise ReasonRequired()
    async with DB.transaction():
        application = await _decide(staff, application_id, REJECTED, reason)
        subject = N_("%(brand)s Partnerportaal — Application not approved: %(application)s")
        await tell_partner(application, "application_rejected", subject, settings, reason=reason)
        await audit(staff.username, "rejected", application.partner, application_id, reason=reason)
        await _queue_changed(application_id)


async def archive_application(staff: CurrentStaff, application_id: UUID) -> None:
    """Archiveren: the application is out of use and its client is disabled."""
    require_helpdesk(staff)
    async with DB.transaction():
        rows = (
            await Application.update(
                {
                    Application.status: ARCHIVED,
                    Application.handled_by: staff.id,
                    Application.handled_at: dt.datetime.now(dt.UTC),
                    Application.updated_at: dt.datetime.now(dt.UTC),
                }
            )
            .where((Application.id == application_id) & (Application.status != ARCHIVED))
            .returning(Application.partner)
        )
        if not rows:
            raise NotFound()
        await Client.update({Client.enabled: False}).where(Client.application == application_id)
        await audit(staff.username, "archived", rows[0]["partner"], application_id)
        await _queue_changed(application_id)


async def set_partner_active(staff: CurrentStaff, partner_id: UUID, active: bool) -> None:
    """A deactivated partner leaves the directory and its applications get no tokens."""
    require_helpdesk(staff)
    async with DB.transaction():
        rows = (
            await Partner.update({Partner.active: active})
            .where(Partner.id == partner_id)
            .returning(Partner.id)
        )
        if not rows:
            raise NotFound()
        await audit(staff.username, "reactivated" if active else "deactivated", partner_id)


async def partner_detail(staff: CurrentStaff, partner_id: UUID) -> PartnerDetail:
    require_helpdesk(staff)
    partner = (
        await Partner.select(
            Partner.id,
            Partner.name,
            Partner.slug,
            Partner.email,
            Partner.website,
            Partner.active,
            Partner.public,
            Partner.listed,
            Partner.enterprise_number,
            Partner.created_at,
            Partner.contact_person,
            Partner.street,
            Partner.house_number,
            Partner.postcode,
            Partner.municipality,
            Partner.country,
        )
        .where(Partner.id == partner_id)
        .first()
    )
    if partner is None:
        raise NotFound()
    partner["applications"] = await Application.raw(
        """
        SELECT a.id, a.name, a.status, c.client_id,
            (SELECT count(*) FROM scope_grant g WHERE g.client = c.id) AS grants
        FROM application a LEFT JOIN client c ON c.application = a.id
        WHERE a.partner = {} ORDER BY lower(a.name)
        """,
        partner_id,
    )
    partner["accounts"] = await Application.raw(
        "SELECT array_agg(email ORDER BY email) AS e FROM account WHERE partner = {}", partner_id
    )
    partner["accounts"] = partner["accounts"][0]["e"] or []
    return msgspec.convert(partner, PartnerDetail)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search(staff: CurrentStaff, query: str, status: str = "") -> Found:
    """Partners, applications and clients by name, client id, institution number or status."""
    require_helpdesk(staff)
    query = plain_text(query).strip()[:200]
    if status not in STATUSES:
        status = ""
    if not query and not status:
        return Found()
    pattern = _like(query)
    partners: list[dict[str, Any]] = []
    if query:
        partners = await Partner.raw(
            "SELECT id, name, active, listed FROM partner"
            " WHERE name ILIKE {} OR email ILIKE {} OR enterprise_number = {}"
            " ORDER BY lower(name) LIMIT {}",
            pattern,
            pattern,
            query,
            SEARCH_LIMIT,
        )
    # Each way of matching finds application ids through its own index; then one join.
    if not query:
        hits = "SELECT id FROM application WHERE status = {}"
        arguments: list[Any] = [status]
    elif query.isdigit():
        hits = (
            "SELECT c.application AS id FROM scope_grant g JOIN client c ON c.id = g.client"
            " WHERE g.institution_number = {} AND c.application IS NOT NULL"
            " UNION SELECT id FROM application WHERE name ILIKE {}"
        )
        arguments = [query, pattern]
    else:
        hits = (
            "SELECT id FROM application WHERE name ILIKE {}"
            " UNION SELECT a.id FROM application a JOIN partner p ON p.id = a.partner"
            " WHERE p.name ILIKE {}"
            " UNION SELECT application FROM client"
            " WHERE client_id ILIKE {} AND application IS NOT NULL"
        )
        arguments = [pattern, pattern, pattern]
    applications = await Application.raw(
        f"""
        SELECT a.id, a.name, a.status, p.id AS partner_id, p.name AS partner, c.client_id
        FROM ({hits}) h
        JOIN application a ON a.id = h.id
        JOIN partner p ON p.id = a.partner
        LEFT JOIN client c ON c.application = a.id
        WHERE ({{}} = '' OR a.status = {{}})
        ORDER BY a.submitted_at DESC LIMIT {{}}
        """,  # noqa: S608 - `hits` is one of the constants above; values are parameters
        *arguments,
        status,
        status,
        SEARCH_LIMIT,
    )
    return msgspec.convert({"partners": partners, "applications": applications}, Found)


AUDIT = """
    SELECT e.at, e.actor, e.action, e.institution_number, e.detail,
        a.name AS application, p.name AS partner
    FROM audit_event e
    LEFT JOIN application a ON a.id = e.application
    LEFT JOIN partner p ON p.id = e.partner
"""
NEWEST_FIRST = " ORDER BY e.at DESC, e.id DESC LIMIT {}"
MY_SCHOOLS = (
    " WHERE e.institution_number IN (SELECT institution_number FROM staff_right WHERE staff = {})"
)


async def audit_log(staff: CurrentStaff, limit: int = 200) -> list[Event]:
    """The helpdesk sees everything; a school administrator what concerns their schools."""
    if staff.helpdesk:
        rows = await AuditEvent.raw(AUDIT + NEWEST_FIRST, limit)
    else:
        # Constants only; the values are bound parameters.
        rows = await AuditEvent.raw(AUDIT + MY_SCHOOLS + NEWEST_FIRST, staff.id, limit)
    for row in rows:
        if isinstance(row["detail"], str):
            row["detail"] = msgspec.json.decode(row["detail"])
    return msgspec.convert(rows, list[Event])
