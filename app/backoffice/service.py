"""The back-office's rules (manual §1.2, §3.3.1): staff and their rights, staff sign-in, and
the helpdesk's approval queue.

Every action checks the acting staff member's role here, not only in the pages; each one is a
single transaction, and approving or rejecting an application that someone else handled in the
meantime changes nothing and says who did what.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from app import problems
from app.accounts import passwords
from app.accounts.language import language_of
from app.applications.service import QUEUE_CHANNEL
from app.applications.tables import APPROVED, ARCHIVED, NEW, REJECTED, Application
from app.backoffice.tables import HELPDESK, ROLES, AuditEvent, School, Staff, StaffRight
from app.config import Settings
from app.mail import service as mail
from app.piccolo_conf import DB
from app.web import throttle
from app.web.forms import plain_text
from app.web.i18n import N_

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,99}$")
MAX_REASON = 2000
STATUSES = (NEW, APPROVED, REJECTED, ARCHIVED)


class BackofficeError(Exception):
    pass


class StaffError(BackofficeError):
    """A staff account or school that cannot be created as asked (for the CLI)."""


class NotAllowed(BackofficeError):
    """The staff member's role does not allow this action."""


class NotFound(BackofficeError, problems.NotFound):
    pass


class ReasonRequired(BackofficeError):
    pass


@dataclass(frozen=True)
class AlreadyHandled(BackofficeError):
    """Another reviewer decided first."""

    by: str
    status: str
    at: dt.datetime | None


@dataclass(frozen=True)
class CurrentStaff:
    id: int
    username: str
    role: str
    session_hash: str

    @property
    def helpdesk(self) -> bool:
        return self.role == HELPDESK


# Staff management (the `portal staff` and `portal schools` commands).


def parse_right(text: str, settings: Settings) -> tuple[str, list[str]]:
    """`NR` (every API) or `NR:api,api` → (institution number, API keys)."""
    number, _, apis = text.partition(":")
    known = [api.key for api in settings.apis]
    keys = [key.strip() for key in apis.split(",") if key.strip()] if apis else known
    unknown = [key for key in keys if key not in known]
    if not number.strip() or unknown:
        raise StaffError(f"unknown API in {text!r}; known: {', '.join(known)}")
    return number.strip(), keys


async def add_staff(
    username: str,
    password: str,
    role: str,
    rights: Iterable[tuple[str, list[str]]],
) -> int:
    username = username.strip().lower()
    if not USERNAME.match(username):
        raise StaffError("a username is 2-100 characters: a-z, 0-9, '.', '_' or '-'")
    if role not in ROLES:
        raise StaffError(f"role must be one of {', '.join(ROLES)}")
    rights = list(rights)
    if role == HELPDESK and rights:
        raise StaffError("the helpdesk grants no school data: give schools to school admins only")
    problems = passwords.password_problems(password)
    if problems:
        raise StaffError(" ".join(str(problem) for problem in problems))
    password_hash = await passwords.hash_password(password)
    async with DB.transaction():
        if await Staff.exists().where(Staff.username == username):
            raise StaffError(f"{username} exists already")
        numbers = {number for number, _ in rights}
        known = (
            {
                row["institution_number"]
                for row in await School.select(School.institution_number).where(
                    School.institution_number.is_in(list(numbers))
                )
            }
            if numbers
            else set()
        )
        missing = sorted(numbers - known)
        if missing:
            raise StaffError(f"unknown school(s): {', '.join(missing)}; import them first")
        rows = await Staff.insert(Staff(username=username, password_hash=password_hash, role=role))
        staff_id: int = rows[0]["id"]
        for number, apis in rights:
            for api in apis:
                await StaffRight.raw(
                    "INSERT INTO staff_right (staff, institution_number, api) VALUES ({}, {}, {})"
                    " ON CONFLICT DO NOTHING",
                    staff_id,
                    number,
                    api,
                )
    return staff_id


async def reset_second_factor(username: str) -> bool:
    """Forget a staff member's authenticator (they lost it); their sessions end too."""
    async with DB.transaction():
        rows = await Staff.raw(
            "UPDATE staff SET totp_secret = NULL, totp_enrolled_at = NULL WHERE username = {}"
            " RETURNING id",
            username.strip().lower(),
        )
        if not rows:
            return False
        await Staff.raw("DELETE FROM staff_session WHERE staff = {}", rows[0]["id"])
        await audit("portal staff reset-code", "second-factor-reset", detail_user=username)
    return True


async def import_schools(text: str) -> tuple[int, int]:
    """CSV `institution_number,name` (a header line is optional): (added, renamed)."""
    added = renamed = 0
    async with DB.transaction():
        for row in csv.reader(io.StringIO(text)):
            if not row or row[0].strip().lower() in {"institution_number", "instellingsnummer"}:
                continue
            if len(row) < 2 or not row[0].strip().isdigit() or not row[1].strip():
                raise StaffError(f"expected 'institution_number,name', got {','.join(row)!r}")
            number, name = row[0].strip(), row[1].strip()
            result = await School.raw(
                "INSERT INTO school AS s (institution_number, name) VALUES ({}, {})"
                " ON CONFLICT (institution_number) DO UPDATE SET name = excluded.name"
                " WHERE s.name <> excluded.name RETURNING (xmax = 0) AS inserted",
                number,
                name,
            )
            if result:
                added += 1 if result[0]["inserted"] else 0
                renamed += 0 if result[0]["inserted"] else 1
    return added, renamed


async def staff_overview() -> list[dict[str, Any]]:
    """Every staff member with their rights, for the read-only back-office page."""
    rows: list[dict[str, Any]] = await Staff.raw(
        """
        SELECT s.username, s.role, s.active,
            coalesce((SELECT json_agg(json_build_object('school', r.institution_number,
                                                        'name', sc.name, 'api', r.api)
                                      ORDER BY r.institution_number, r.api)
                      FROM staff_right r JOIN school sc USING (institution_number)
                      WHERE r.staff = s.id), '[]') AS rights
        FROM staff s ORDER BY s.role, s.username
        """
    )
    for row in rows:
        row["rights"] = json.loads(row["rights"])
    return rows


# Sign-in.


STAFF_SIGN_IN = throttle.Policy(
    "staff-sign-in:account",
    free=5,
    window=throttle.SIGN_IN_ACCOUNT.window,
    first_block=throttle.SIGN_IN_ACCOUNT.first_block,
    longest=throttle.SIGN_IN_ACCOUNT.longest,
)


class InvalidCredentials(BackofficeError):
    pass


async def sign_in(username: str, password: str, client_address: str) -> int:
    """The staff member's id; failures are slowed down per username and per address."""
    username = username.strip().lower()
    limits = (STAFF_SIGN_IN, username), (throttle.SIGN_IN_ADDRESS, client_address)
    await throttle.claim(*limits)
    staff = (
        await Staff.select(Staff.id, Staff.password_hash)
        .where((Staff.username == username) & (Staff.active == True))  # noqa: E712
        .first()
    )
    ok = await passwords.verify_password(staff["password_hash"] if staff else None, password)
    if not ok or staff is None:
        raise InvalidCredentials()  # the claimed attempt stays counted
    await throttle.release(*limits)
    await throttle.clear(STAFF_SIGN_IN, username)
    await audit(username, "sign-in")
    return int(staff["id"])


# The approval queue.


def _require_helpdesk(staff: CurrentStaff) -> None:
    if not staff.helpdesk:
        raise NotAllowed()


QUEUE_SHOWN = 50


async def queue(staff: CurrentStaff) -> tuple[list[dict[str, Any]], int]:
    """The QUEUE_SHOWN applications waiting longest for a decision, oldest first, and how
    many wait in all."""
    _require_helpdesk(staff)
    rows: list[dict[str, Any]] = await Application.raw(
        """
        SELECT a.id, a.name, a.submitted_at, p.name AS partner,
            extract(epoch FROM now() - a.submitted_at)::bigint AS waiting_seconds,
            coalesce((SELECT array_agg(x.api ORDER BY x.api) FROM application_api x
                      WHERE x.application = a.id), ARRAY[]::varchar[]) AS apis,
            count(*) OVER () AS total
        FROM application a JOIN partner p ON p.id = a.partner
        WHERE a.status = {}
        ORDER BY a.submitted_at, a.id
        LIMIT {}
        """,
        NEW,
        QUEUE_SHOWN,
    )
    return rows, int(rows[0]["total"]) if rows else 0


async def _decide(
    staff: CurrentStaff, application_id: UUID, status: str, reason: str
) -> dict[str, Any]:
    """Set the decision if the application is still Nieuw; else say who decided first."""
    rows = await Application.raw(
        """
        UPDATE application a SET status = {}, rejection_reason = {}, handled_by = {},
            handled_at = now(), updated_at = now()
        FROM partner p
        WHERE a.id = {} AND a.status = {} AND p.id = a.partner
        RETURNING a.id, a.name, a.partner, a.contact_email, p.name AS partner_name,
            p.email AS partner_email, p.slug
        """,
        status,
        reason,
        staff.id,
        application_id,
        NEW,
    )
    if rows:
        decided: dict[str, Any] = rows[0]
        return decided
    current = await Application.raw(
        "SELECT a.status, a.handled_at, s.username FROM application a"
        " LEFT JOIN staff s ON s.id = a.handled_by WHERE a.id = {}",
        application_id,
    )
    if not current:
        raise NotFound()
    row = current[0]
    raise AlreadyHandled(row["username"] or "", row["status"], row["handled_at"])


async def review(staff: CurrentStaff, application_id: UUID) -> dict[str, Any]:
    """One application as the helpdesk reviews it."""
    _require_helpdesk(staff)
    rows = await Application.raw(
        """
        SELECT a.id, a.name, a.description, a.contact_person, a.contact_email, a.status,
            a.submitted_at, a.handled_at, a.rejection_reason, s.username AS handled_by,
            p.name AS partner, p.email AS partner_email, p.website AS partner_website,
            c.client_id, c.id AS client_pk,
            coalesce((SELECT array_agg(x.api ORDER BY x.api) FROM application_api x
                      WHERE x.application = a.id), ARRAY[]::varchar[]) AS apis
        FROM application a JOIN partner p ON p.id = a.partner
        LEFT JOIN staff s ON s.id = a.handled_by
        LEFT JOIN client c ON c.application = a.id
        WHERE a.id = {}
        """,
        application_id,
    )
    if not rows:
        raise NotFound()
    application: dict[str, Any] = rows[0]
    return application


def _client_id(slug: str) -> str:
    """Generated, never chosen by the partner: the profile's slug and 48 random bits."""
    return f"{slug[:40].replace('-', '_')}_{secrets.token_hex(6)}"


async def approve(staff: CurrentStaff, application_id: UUID) -> str:
    """Goedkeuren: the application gets its client; partner and contact are told they can
    generate a secret now. Returns the new client id."""
    _require_helpdesk(staff)
    async with DB.transaction():
        application = await _decide(staff, application_id, APPROVED, "")
        client_id = _client_id(application["slug"])
        await Application.raw(
            "INSERT INTO client (client_id, application, description) VALUES ({}, {}, {})",
            client_id,
            application_id,
            application["name"][:200],
        )
        await _tell_partner(
            application,
            "application_approved",
            N_("%(brand)s Partnerportaal — Application approved: %(application)s"),
            "",
        )
        await audit(staff.username, "approved", application["partner"], application_id)
        await Application.raw("SELECT pg_notify({}, {})", QUEUE_CHANNEL, str(application_id))
    return client_id


async def reject(staff: CurrentStaff, application_id: UUID, reason: str) -> None:
    """Weigeren: with a reason, which is mailed and shown to the partner."""
    _require_helpdesk(staff)
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise ReasonRequired()
    async with DB.transaction():
        application = await _decide(staff, application_id, REJECTED, reason)
        await _tell_partner(
            application,
            "application_rejected",
            N_("%(brand)s Partnerportaal — Application not approved: %(application)s"),
            reason,
        )
        await audit(
            staff.username, "rejected", application["partner"], application_id, reason=reason
        )
        await Application.raw("SELECT pg_notify({}, {})", QUEUE_CHANNEL, str(application_id))


async def _tell_partner(application: dict[str, Any], kind: str, subject: str, reason: str) -> None:
    """The partner profile's address and the application's contact, once each."""
    recipients = dict.fromkeys(
        address
        for address in (application["partner_email"], application["contact_email"])
        if address
    )
    for recipient in recipients:
        await mail.enqueue(
            mail.compose(
                kind,
                recipient,
                await language_of(recipient),
                subject,
                application=application["name"],
                partner=application["partner_name"],
                reason=reason,
                url=mail.link(f"/applicaties/{application['id']}"),
            )
        )


async def audit(
    actor: str,
    action: str,
    partner: UUID | None = None,
    application: UUID | None = None,
    institution_number: str | None = None,
    **detail: Any,
) -> None:
    await AuditEvent.insert(
        AuditEvent(
            actor=actor,
            action=action,
            partner=partner,
            application=application,
            institution_number=institution_number,
            detail=detail,
        )
    )


# The helpdesk's other work: archiving, partners, search, the audit log.


async def archive_application(staff: CurrentStaff, application_id: UUID) -> None:
    """Archiveren: the application is out of use and its client is disabled."""
    _require_helpdesk(staff)
    async with DB.transaction():
        rows = await Application.raw(
            "UPDATE application SET status = {}, handled_by = {}, handled_at = now(),"
            " updated_at = now() WHERE id = {} AND status <> {} RETURNING partner",
            ARCHIVED,
            staff.id,
            application_id,
            ARCHIVED,
        )
        if not rows:
            raise NotFound()
        await Application.raw(
            "UPDATE client SET enabled = false WHERE application = {}", application_id
        )
        await audit(staff.username, "archived", rows[0]["partner"], application_id)
        await Application.raw("SELECT pg_notify({}, {})", QUEUE_CHANNEL, str(application_id))


async def set_partner_active(staff: CurrentStaff, partner_id: UUID, active: bool) -> None:
    """A deactivated partner leaves the directory and its applications get no tokens."""
    _require_helpdesk(staff)
    async with DB.transaction():
        rows = await Application.raw(
            "UPDATE partner SET active = {} WHERE id = {} RETURNING id", active, partner_id
        )
        if not rows:
            raise NotFound()
        await audit(staff.username, "reactivated" if active else "deactivated", partner_id)


async def partner_detail(staff: CurrentStaff, partner_id: UUID) -> dict[str, Any]:
    _require_helpdesk(staff)
    rows = await Application.raw(
        "SELECT id, name, slug, email, website, active, public, listed, enterprise_number,"
        " created_at FROM partner WHERE id = {}",
        partner_id,
    )
    if not rows:
        raise NotFound()
    partner: dict[str, Any] = rows[0]
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
        "SELECT email FROM account WHERE partner = {} ORDER BY email", partner_id
    )
    return partner


SEARCH_LIMIT = 50


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search(
    staff: CurrentStaff, query: str, status: str = ""
) -> dict[str, list[dict[str, Any]]]:
    """Partners, applications and clients by name, client id, institution number or status."""
    _require_helpdesk(staff)
    query = plain_text(query).strip()[:200]
    if status not in STATUSES:
        status = ""
    if not query and not status:
        return {"partners": [], "applications": []}
    pattern = _like(query)
    partners: list[dict[str, Any]] = []
    if query:
        partners = await Application.raw(
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
    applications: list[dict[str, Any]] = await Application.raw(
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
    return {"partners": partners, "applications": applications}


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


async def audit_log(staff: CurrentStaff, limit: int = 200) -> list[dict[str, Any]]:
    """The helpdesk sees everything; a school administrator what concerns their schools."""
    if staff.helpdesk:
        rows: list[dict[str, Any]] = await AuditEvent.raw(AUDIT + NEWEST_FIRST, limit)
    else:
        # Constants only; the values are bound parameters.
        query = AUDIT + MY_SCHOOLS + NEWEST_FIRST
        rows = await AuditEvent.raw(query, staff.id, limit)
    for row in rows:
        if isinstance(row["detail"], str):
            row["detail"] = json.loads(row["detail"])
    return rows
