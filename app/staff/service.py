"""The back-office's people (manual §1.2): staff accounts and their rights, staff sign-in,
and the audit trail every room of the back-office writes to.

Every action checks the acting staff member's role in its service, not only in the pages, and
each one is a single transaction.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import msgspec

from app import problems, throttle
from app.accounts import passwords
from app.config import Settings
from app.piccolo_conf import DB
from app.staff.tables import HELPDESK, ROLES, SCHOOL_ADMIN, AuditEvent, School, Staff, StaffRight

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,99}$")


class BackofficeError(Exception):
    pass


class StaffError(BackofficeError):
    """A staff account or school that cannot be created as asked (for the CLI)."""


class NotAllowed(BackofficeError):
    """The staff member's role does not allow this action."""


class NotFound(BackofficeError, problems.NotFound):
    pass


@dataclass(frozen=True)
class Credentials:
    """What the sign-in form gives `sign_in`."""

    username: str
    password: str


@dataclass(frozen=True)
class CurrentStaff:
    id: int
    username: str
    role: str
    session_hash: str

    @property
    def helpdesk(self) -> bool:
        return self.role == HELPDESK


def require_helpdesk(staff: CurrentStaff) -> None:
    if not staff.helpdesk:
        raise NotAllowed()


def require_school_admin(staff: CurrentStaff) -> None:
    if staff.role != SCHOOL_ADMIN:
        raise NotAllowed()


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


class Right(msgspec.Struct, frozen=True):
    school: str
    name: str
    api: str


class StaffMember(msgspec.Struct, frozen=True):
    username: str
    role: str
    active: bool
    rights: list[Right]


async def staff_overview(staff: CurrentStaff) -> list[StaffMember]:
    """The staff and their rights, for the read-only page: the helpdesk sees everyone, a
    school administrator themselves."""
    rows = await Staff.raw(
        """
        SELECT s.username, s.role, s.active,
            coalesce((SELECT json_agg(json_build_object('school', r.institution_number,
                                                        'name', sc.name, 'api', r.api)
                                      ORDER BY r.institution_number, r.api)
                      FROM staff_right r JOIN school sc USING (institution_number)
                      WHERE r.staff = s.id), '[]') AS rights
        FROM staff s WHERE {} OR s.id = {} ORDER BY s.role, s.username
        """,
        staff.helpdesk,
        staff.id,
    )
    for row in rows:
        row["rights"] = msgspec.json.decode(row["rights"])
    return msgspec.convert(rows, list[StaffMember])


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
