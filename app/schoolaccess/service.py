"""School administrators grant applications access to their schools' data (manual §3.4).

An administrator may tick, per school they administer, only the APIs the application asked for
and they hold rights for. A new application needs an invitation: the link a partner mailed,
still valid. An application that already reaches one of their schools can be adjusted without
one. Every rule is checked here, whatever the form sent: a ticked box the administrator may not
tick refuses the whole save.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from uuid import UUID

import msgspec

from app.applications.service import Case, case, tell_partner
from app.applications.tables import APPROVED, ARCHIVED, Application
from app.config import Settings
from app.crypto import token_hash
from app.identity.tables import Client, ScopeGrant
from app.piccolo_conf import DB
from app.schoolaccess.tables import AccessRequest
from app.staff.service import CurrentStaff, NotAllowed, NotFound, require_school_admin
from app.staff.tables import StaffRight
from app.web.i18n import LOCAL_TIME, N_


@dataclass(frozen=True)
class AccessLinkProblem(Exception):
    """Why an access link cannot be used: unknown, expired, archived, not-approved, no-rights."""

    reason: str
    application: str = ""
    partner: str = ""


@dataclass
class GrantView:
    application: Case
    # (institution number, school name, APIs this administrator may grant there)
    schools: list[tuple[str, str, list[str]]]
    granted: set[tuple[str, str]] = field(default_factory=set)

    def allowed(self) -> set[tuple[str, str]]:
        return {(number, api) for number, _, apis in self.schools for api in apis}


async def _view(staff: CurrentStaff, application: Case) -> GrantView:
    rights = await Application.raw(
        """
        SELECT r.institution_number, s.name, array_agg(r.api ORDER BY r.api) AS apis
        FROM staff_right r JOIN school s USING (institution_number)
        WHERE r.staff = {} AND r.api = ANY({})
        GROUP BY r.institution_number, s.name ORDER BY s.name, r.institution_number
        """,
        staff.id,
        application.apis,
    )
    schools = [(row["institution_number"], row["name"], list(row["apis"])) for row in rights]
    granted: set[tuple[str, str]] = set()
    if application.client_pk and schools:
        rows = await ScopeGrant.raw(
            "SELECT institution_number, api FROM scope_grant WHERE client = {}"
            " AND institution_number = ANY({})",
            application.client_pk,
            [number for number, _, _ in schools],
        )
        granted = {(row["institution_number"], row["api"]) for row in rows}
    return GrantView(application, schools, granted)


async def _invited(token: str) -> tuple[Case, int]:
    """The application a partner's link is for, and the access request that sent it."""
    request = (
        await AccessRequest.select(
            AccessRequest.id, AccessRequest.application, AccessRequest.expires_at
        )
        .where(AccessRequest.token_hash == token_hash(token))
        .first()
    )
    if request is None:
        raise AccessLinkProblem("unknown")
    application = await case(request["application"])
    if application is None:
        raise AccessLinkProblem("unknown")
    names = {"application": application.name, "partner": application.partner_name}
    if request["expires_at"] <= dt.datetime.now(dt.UTC):
        raise AccessLinkProblem("expired", **names)
    if application.status == ARCHIVED:
        raise AccessLinkProblem("archived", **names)
    if application.status != APPROVED or not application.client_pk:
        raise AccessLinkProblem("not-approved", **names)
    return application, request["id"]


async def open_invitation(staff: CurrentStaff, token: str) -> GrantView:
    """The application a partner's link points at, as this administrator may grant it."""
    require_school_admin(staff)
    application, _ = await _invited(token)
    view = await _view(staff, application)
    if not view.schools:
        raise AccessLinkProblem(
            "no-rights", application=application.name, partner=application.partner_name
        )
    return view


async def open_application(staff: CurrentStaff, application_id: UUID) -> GrantView:
    """An application that already reaches one of this administrator's schools."""
    require_school_admin(staff)
    application = await case(application_id)
    if application is None or application.status != APPROVED:
        raise NotFound()
    view = await _view(staff, application)
    if not view.granted:
        raise NotFound()  # never invited to these schools: only a partner's link opens it
    return view


async def save(
    staff: CurrentStaff,
    application_id: UUID,
    chosen: set[tuple[str, str]],
    token: str | None,
    settings: Settings,
) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """Make this administrator's schools' access exactly `chosen`: (added, removed)."""
    require_school_admin(staff)
    async with DB.transaction():
        request_id = None
        if token is not None:
            application, request_id = await _invited(token)
            if application.id != application_id:
                raise NotAllowed()
        else:
            found = await case(application_id)
            if found is None or found.status != APPROVED:
                raise NotFound()
            application = found
        # The client's row is locked, so two administrators saving at once take turns.
        await Client.select(Client.id).where(Client.id == application.client_pk).lock_rows()
        view = await _view(staff, application)
        if token is None and not view.granted:
            raise NotFound()  # never invited to these schools: only a partner's link opens it
        if not chosen <= view.allowed():
            raise NotAllowed()
        added = chosen - view.granted
        removed = (view.granted & view.allowed()) - chosen
        if added:
            await ScopeGrant.raw(
                GRANT,
                application.client_pk,
                staff.username,
                *_columns(added),
            )
        if removed:
            await ScopeGrant.raw(
                REMOVE,
                *_columns(removed),
                application.client_pk,
            )
        for action, changes in (("granted", added), ("removed", removed)):
            if changes:
                await _audit_changes(staff, action, application, changes)
        if token is not None:
            await AccessRequest.update(
                {AccessRequest.used_at: dt.datetime.now(dt.UTC), AccessRequest.used_by: staff.id}
            ).where((AccessRequest.id == request_id) & AccessRequest.used_at.is_null())
        if added or removed:
            await _tell_partner(application, view, added, removed, settings)
    return added, removed


# The (institution number, api) pairs of one save come as two arrays, unnested into a table
# c(number, api, n): one statement for all of them, however many schools are ticked at once.
GRANT = """
    INSERT INTO scope_grant (client, api, institution_number, granted_by)
    SELECT {}, c.api, c.number, {}
    FROM unnest({}::text[], {}::text[]) WITH ORDINALITY AS c(number, api, n)
    ON CONFLICT DO NOTHING
"""
REMOVE = """
    DELETE FROM scope_grant g
    USING unnest({}::text[], {}::text[]) WITH ORDINALITY AS c(number, api, n)
    WHERE g.client = {} AND g.api = c.api AND g.institution_number = c.number
"""
AUDIT_CHANGES = """
    INSERT INTO audit_event (actor, action, partner, application, institution_number, detail)
    SELECT {}, {}, {}, {}, c.number, jsonb_build_object('api', c.api)
    FROM unnest({}::text[], {}::text[]) WITH ORDINALITY AS c(number, api, n)
    ORDER BY c.n
"""


def _columns(changes: set[tuple[str, str]]) -> tuple[list[str], list[str]]:
    ordered = sorted(changes)
    return [number for number, _ in ordered], [api for _, api in ordered]


async def _audit_changes(
    staff: CurrentStaff, action: str, application: Case, changes: set[tuple[str, str]]
) -> None:
    """One audit event per school and API, as `audit` writes them, in one statement."""
    await ScopeGrant.raw(
        AUDIT_CHANGES,
        staff.username,
        action,
        application.partner,
        application.id,
        *_columns(changes),
    )


async def _tell_partner(
    application: Case,
    view: GrantView,
    added: set[tuple[str, str]],
    removed: set[tuple[str, str]],
    settings: Settings,
) -> None:
    """The partner profile's address and the application's contact hear what changed."""
    labels = settings.api_labels
    names = {number: name for number, name, _ in view.schools}

    def lines(changes: set[tuple[str, str]]) -> list[str]:
        return [
            f"{names.get(number, number)} ({number}): {labels.get(api, api)}"
            for number, api in sorted(changes)
        ]

    subject = N_("%(brand)s Partnerportaal - Data access changed for %(application)s")
    granted = {"granted": lines(added), "removed": lines(removed)}
    await tell_partner(application, "access_changed", subject, settings, **granted)


PER_PAGE = 50
MY_SCHOOLS = "SELECT DISTINCT institution_number FROM staff_right WHERE staff = {}"


@dataclass(frozen=True)
class ReachedClient:
    """A client with access at some of this administrator's schools."""

    id: int
    client_id: str
    application: UUID | None
    name: str
    partner: str
    # (institution number, school name) -> the APIs granted there
    schools: dict[tuple[str, str], list[str]]


@dataclass(frozen=True)
class OverviewPage:
    applications: list[ReachedClient]
    total: int
    page: int
    pages: int


async def overview_page(staff: CurrentStaff, page: int = 1) -> OverviewPage:
    """Applicaties met toegang, PER_PAGE clients at a time, each with what it may read at
    this administrator's schools."""
    require_school_admin(staff)
    mine = [row["institution_number"] for row in await ScopeGrant.raw(MY_SCHOOLS, staff.id)]
    page = max(page, 1)
    # The schools as an array (not a subquery) let the planner see how many grants match.
    clients = await ScopeGrant.raw(
        """
        WITH reached AS (
            SELECT DISTINCT client FROM scope_grant WHERE institution_number = ANY({}))
        SELECT c.id, c.client_id, a.id AS application, coalesce(a.name, c.client_id) AS name,
            coalesce(p.name, '') AS partner, count(*) OVER () AS total
        FROM reached r
        JOIN client c ON c.id = r.client
        LEFT JOIN application a ON a.id = c.application
        LEFT JOIN partner p ON p.id = a.partner
        ORDER BY lower(coalesce(p.name, '')), lower(coalesce(a.name, c.client_id)), c.id
        LIMIT {} OFFSET {}
        """,
        mine,
        PER_PAGE,
        (page - 1) * PER_PAGE,
    )
    if not clients:
        return OverviewPage([], 0, 1, 1) if page == 1 else await overview_page(staff, 1)
    total = int(clients[0]["total"])
    grants = await ScopeGrant.raw(
        """
        SELECT g.client, g.institution_number, s.name AS school, g.api
        FROM scope_grant g JOIN school s ON s.institution_number = g.institution_number
        WHERE g.client = ANY({}) AND g.institution_number = ANY({})
        ORDER BY s.name, g.institution_number, g.api
        """,
        [client["id"] for client in clients],
        mine,
    )
    by_client: dict[int, dict[tuple[str, str], list[str]]] = {}
    for grant in grants:
        schools = by_client.setdefault(grant["client"], {})
        schools.setdefault((grant["institution_number"], grant["school"]), []).append(grant["api"])
    reached = [
        ReachedClient(
            c["id"],
            c["client_id"],
            c["application"],
            c["name"],
            c["partner"],
            by_client.get(c["id"], {}),
        )
        for c in clients
    ]
    return OverviewPage(reached, total, page, max(1, -(-total // PER_PAGE)))


class Grant(msgspec.Struct, frozen=True):
    application: UUID | None
    name: str
    partner: str
    client_id: str
    institution_number: str
    school: str
    api: str
    granted_at: dt.datetime
    granted_by: str
    scope: str


async def my_schools(staff: CurrentStaff) -> list[tuple[str, str]]:
    """The schools this administrator manages: (institution number, name), by name."""
    require_school_admin(staff)
    rows = await StaffRight.raw(
        "SELECT DISTINCT r.institution_number, s.name FROM staff_right r"
        " JOIN school s USING (institution_number) WHERE r.staff = {} ORDER BY s.name",
        staff.id,
    )
    return [(row["institution_number"], row["name"]) for row in rows]


async def overview(staff: CurrentStaff, settings: Settings, school: str = "") -> list[Grant]:
    """Every grant at this administrator's schools, or at one of them, for the CSV export (a
    school's register of who processes its data)."""
    require_school_admin(staff)
    rows = await ScopeGrant.raw(
        f"""
        SELECT a.id AS application, coalesce(a.name, c.client_id) AS name,
            coalesce(p.name, '') AS partner, c.client_id, g.institution_number,
            s.name AS school, g.api, g.granted_at, g.granted_by
        FROM scope_grant g
        JOIN client c ON c.id = g.client
        LEFT JOIN application a ON a.id = c.application
        LEFT JOIN partner p ON p.id = a.partner
        JOIN school s ON s.institution_number = g.institution_number
        WHERE g.institution_number IN ({MY_SCHOOLS}) AND ({{}} = '' OR g.institution_number = {{}})
        ORDER BY lower(coalesce(p.name, '')), lower(coalesce(a.name, c.client_id)),
            s.name, g.api
        """,  # noqa: S608 - constants only; the values are bound parameters
        staff.id,
        school,
        school,
    )
    prefixes = {api.key: api.scope_prefix for api in settings.apis}
    for row in rows:
        row["scope"] = f"{prefixes.get(row['api'], row['api'])}.{row['institution_number']}"
    return msgspec.convert(rows, list[Grant])


CSV_HEADER = (
    "instellingsnummer;school;partner;applicatie;client_id;api;scope;verleend_op;verleend_door"
)


def overview_csv(rows: list[Grant], settings: Settings) -> str:
    """Semicolons and a byte order mark, so that a spreadsheet opens it with its accents."""
    labels = settings.api_labels
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(CSV_HEADER.split(";"))
    for row in rows:
        writer.writerow(
            [
                row.institution_number,
                _cell(row.school),
                _cell(row.partner),
                _cell(row.name),
                row.client_id,
                labels.get(row.api, row.api),
                row.scope,
                row.granted_at.astimezone(LOCAL_TIME).isoformat(timespec="seconds"),
                _cell(row.granted_by),
            ]
        )
    return "\ufeff" + out.getvalue()


def _cell(value: str) -> str:
    """Text a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
