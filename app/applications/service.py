"""Partner applications (manual §3.3): requesting a client, linking an existing one, API
access and client secrets.

Every function takes the signed-in account and only ever touches applications of the
account's own partner profile; another partner's application is "not found".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast
from uuid import UUID

import msgspec
from piccolo.columns import Column

from app import problems, throttle
from app.accounts.language import language_of
from app.accounts.tables import Account
from app.applications.tables import APPROVED, ARCHIVED, NEW, REJECTED, Application, ApplicationApi
from app.config import Settings
from app.crypto import Sealer
from app.identity.service import matching_secret, new_secret, secret_hash
from app.identity.tables import Client, ClientSecret, ScopeGrant, SecretReveal
from app.mail import service as mail
from app.partners.tables import Partner
from app.piccolo_conf import DB
from app.web.i18n import N_


@dataclass(frozen=True)
class ApplicationData:
    name: str
    description: str
    contact_person: str
    contact_email: str
    apis: list[str]


QUEUE_CHANNEL = "application_queue"
# An application's APIs as a sorted array, in a query on `application a`.
APIS = """coalesce((SELECT array_agg(x.api ORDER BY x.api) FROM application_api x
                   WHERE x.application = a.id), ARRAY[]::varchar[]) AS apis"""


class ApplicationError(Exception):
    pass


class NotFound(ApplicationError, problems.NotFound):
    pass


class InvalidClient(ApplicationError):
    """The client id and secret do not match a usable client (manual §4)."""


class ClientTaken(ApplicationError):
    """Sorry! Deze client is al gekoppeld aan een andere applicatie."""


class NotEditable(ApplicationError):
    pass


class NoClient(ApplicationError):
    pass


@dataclass(frozen=True)
class ClientCredentials:
    """A client from the old server, as the partner enters it to link it."""

    client_id: str
    secret: str


@dataclass(frozen=True)
class SecretChoice:
    """Genereer secret: its name, and for how many days the earlier secrets stay valid
    (None: until revoked); `confirmed` once the partner agreed to stop live secrets."""

    label: str
    overlap_days: int | None
    confirmed: bool


@dataclass(frozen=True)
class ExistingClient:
    id: int
    client_id: str
    apis: list[str]


class Listed(msgspec.Struct, frozen=True):
    id: UUID
    name: str
    status: str
    created_at: dt.datetime
    client_id: str | None
    apis: list[str]


class Secret(msgspec.Struct, frozen=True):
    id: int
    description: str
    hint: str
    label: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None
    valid: bool
    recently_used: bool


class Detail(msgspec.Struct, frozen=True):
    """One application as its partner sees it: with its client, secrets, and per API how
    many schools granted it."""

    id: UUID
    partner: UUID
    name: str
    status: str
    description: str
    contact_person: str
    contact_email: str
    rejection_reason: str
    created_at: dt.datetime
    updated_at: dt.datetime
    submitted_at: dt.datetime
    handled_at: dt.datetime | None
    client_pk: int | None
    client_id: str | None
    client_enabled: bool | None
    apis: list[str]
    secrets: list[Secret]
    schools: dict[str, int]


@dataclass(frozen=True)
class Progress:
    """How far the signed-in partner is along the manual's four steps (§3): the account is
    step 1; a profile, an application, and access asked for (or granted) the others."""

    profile: bool
    application: bool
    # An approved application of the profile, where step 4 is taken; None while none is.
    approved: UUID | None
    asked: bool

    @property
    def done(self) -> bool:
        return self.profile and self.application and self.asked


async def progress(account_id: UUID) -> Progress:
    rows = await Application.raw(
        """
        SELECT acc.partner IS NOT NULL AS profile,
            EXISTS (SELECT 1 FROM application a WHERE a.partner = acc.partner) AS application,
            (SELECT a.id FROM application a WHERE a.partner = acc.partner AND a.status = {}
             ORDER BY a.created_at LIMIT 1) AS approved,
            EXISTS (SELECT 1 FROM access_request r JOIN application a ON a.id = r.application
                    WHERE a.partner = acc.partner)
            OR EXISTS (SELECT 1 FROM scope_grant g JOIN client c ON c.id = g.client
                       JOIN application a ON a.id = c.application
                       WHERE a.partner = acc.partner) AS asked
        FROM account acc WHERE acc.id = {}
        """,
        APPROVED,
        account_id,
    )
    if not rows:
        return Progress(profile=False, application=False, approved=None, asked=False)
    row = rows[0]
    return Progress(row["profile"], row["application"], row["approved"], row["asked"])


async def _partner_of(account_id: UUID) -> UUID:
    row = await Account.select(Account.partner).where(Account.id == account_id).first()
    if row is None or row["partner"] is None:
        raise NotFound()
    partner_id: UUID = row["partner"]
    return partner_id


async def list_for(account_id: UUID) -> list[Listed]:
    partner_id = await _partner_of(account_id)
    rows = await Application.raw(
        f"""
        SELECT a.id, a.name, a.status, a.created_at, c.client_id, {APIS}
        FROM application a LEFT JOIN client c ON c.application = a.id
        WHERE a.partner = {{}} ORDER BY a.created_at DESC
        """,  # noqa: S608 - constants only; the values are bound parameters
        partner_id,
    )
    return msgspec.convert(rows, list[Listed])


async def get(account_id: UUID, application_id: UUID) -> Detail:
    """One application of the account's own partner, with its client and secrets."""
    partner_id = await _partner_of(account_id)
    rows = await Application.raw(
        """
        SELECT a.*, c.id AS client_pk, c.client_id, c.enabled AS client_enabled
        FROM application a LEFT JOIN client c ON c.application = a.id
        WHERE a.id = {} AND a.partner = {}
        """,
        application_id,
        partner_id,
    )
    if not rows:
        raise NotFound()
    application = {**rows[0], "apis": await _apis(application_id), "secrets": [], "schools": {}}
    if application["client_pk"]:
        application["secrets"] = await ClientSecret.raw(
            "SELECT id, description, hint, label, created_at, expires_at, revoked_at,"
            " last_used_at, revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"
            " AS valid, coalesce(last_used_at > now() - make_interval(days => {}), false)"
            " AS recently_used FROM client_secret WHERE client = {} ORDER BY created_at DESC",
            RECENT_USE_DAYS,
            application["client_pk"],
        )
        grants = await ScopeGrant.raw(
            "SELECT api, count(*) AS schools FROM scope_grant WHERE client = {} GROUP BY api",
            application["client_pk"],
        )
        application["schools"] = {row["api"]: row["schools"] for row in grants}
    return msgspec.convert(application, Detail)


class Case(msgspec.Struct, frozen=True):
    """An application as the back-office handles it: with its partner, client and APIs."""

    id: UUID
    name: str
    description: str
    contact_person: str
    contact_email: str
    status: str
    submitted_at: dt.datetime
    handled_at: dt.datetime | None
    handled_by: str | None  # the staff member's username
    rejection_reason: str
    partner: UUID
    partner_name: str
    partner_email: str
    partner_website: str
    partner_slug: str
    client_pk: int | None
    client_id: str | None
    apis: list[str]


async def case(application_id: UUID) -> Case | None:
    """Any partner's application, for the back-office's rooms (which check the staff member's
    role themselves)."""
    rows = await Application.raw(
        f"""
        SELECT a.id, a.name, a.description, a.contact_person, a.contact_email, a.status,
            a.submitted_at, a.handled_at, s.username AS handled_by, a.rejection_reason,
            a.partner, p.name AS partner_name, p.email AS partner_email,
            p.website AS partner_website, p.slug AS partner_slug, c.id AS client_pk, c.client_id,
            {APIS}
        FROM application a JOIN partner p ON p.id = a.partner
        LEFT JOIN staff s ON s.id = a.handled_by
        LEFT JOIN client c ON c.application = a.id
        WHERE a.id = {{}}
        """,  # noqa: S608 - constants only; the values are bound parameters
        application_id,
    )
    return msgspec.convert(rows[0], Case) if rows else None


async def tell_partner(
    application: Case, kind: str, subject: str, settings: Settings, **context: Any
) -> None:
    """Mail the partner profile's address and the application's contact (once each, in their
    language) about the application; `subject` is a msgid."""
    addresses = (application.partner_email, application.contact_email)
    for recipient in dict.fromkeys(filter(None, addresses)):
        language = await language_of(recipient)
        path = f"/applicaties/{application.id}"
        names = {"application": application.name, "partner": application.partner_name}
        await mail.send(settings, kind, recipient, language, subject, path=path, **names, **context)


async def _apis(application_id: UUID) -> list[str]:
    rows = (
        await ApplicationApi.select(ApplicationApi.api)
        .where(ApplicationApi.application == application_id)
        .order_by(ApplicationApi.api)
    )
    return [row["api"] for row in rows]


async def _set_apis(application_id: UUID, apis: list[str]) -> None:
    await ApplicationApi.delete().where(ApplicationApi.application == application_id)
    if apis:
        await ApplicationApi.insert(
            *(ApplicationApi(application=application_id, api=api) for api in apis)
        )


def _columns(data: ApplicationData) -> Mapping[str, Any]:
    """The application table's columns the form sets."""
    names = ("name", "description", "contact_person", "contact_email")
    return {name: getattr(data, name) for name in names}


async def _insert(
    partner_id: UUID, account_id: UUID, data: ApplicationData, status: str, apis: list[str]
) -> UUID:
    created = await Application.insert(
        Application(partner=partner_id, status=status, created_by=account_id, **_columns(data))
    )
    application_id: UUID = created[0]["id"]
    await _set_apis(application_id, apis)
    return application_id


async def request_new_client(
    account_id: UUID, email: str, data: ApplicationData, settings: Settings
) -> UUID:
    """Nieuwe client ID aanvragen: the application waits for the helpdesk (status Nieuw)."""
    async with DB.transaction():
        partner_id = await _partner_of(account_id)
        application_id = await _insert(partner_id, account_id, data, NEW, data.apis)
        await _tell_helpdesk(application_id, data.name, partner_id, email, settings)
    return application_id


async def _tell_helpdesk(
    application_id: UUID,
    name: str,
    partner_id: UUID,
    by: str,
    settings: Settings,
    *,
    previous_reason: str | None = None,
) -> None:
    """Mail the helpdesk a link to the review; a resubmission says so, with the reason it was
    rejected for. A NOTIFY (delivered on commit) updates open approval queues."""
    partner = await Partner.select(Partner.name).where(Partner.id == partner_id).first()
    subject = (
        N_("%(brand)s Partnerportaal — Application to review: %(application)s")
        if previous_reason is None
        else N_("%(brand)s Partnerportaal — Application submitted again: %(application)s")
    )
    await mail.send(
        settings,
        "application_submitted",
        settings.portal.helpdesk_email,
        "nl",
        subject,
        application=name,
        partner=partner["name"] if partner else "",
        submitted_by=by,
        previous_reason=previous_reason,
        path=f"/backoffice/applicaties/{application_id}",
    )
    await Application.raw("SELECT pg_notify({}, {})", QUEUE_CHANNEL, str(application_id))


async def check_client(
    client_id: str, secret: str, settings: Settings, account_id: UUID, client_address: str
) -> ExistingClient:
    """A client that may be linked: the secret is valid and it has no application yet.

    Wrong secrets count against the account and the client address, as wrong invitation
    codes do, so the form cannot be used to guess an existing client's secret.
    """
    limits = (
        (throttle.CLIENT_LINK_ACCOUNT, str(account_id)),
        (throttle.SIGN_IN_ADDRESS, client_address),
    )
    await throttle.claim(*limits)
    try:
        linkable = await _linkable(client_id, secret, settings)
    except InvalidClient:
        raise  # the claimed attempt stays counted
    except Exception:
        await throttle.release(*limits)  # the secret was right
        raise
    await throttle.release(*limits)
    return linkable


async def _linkable(
    client_id: str | int, secret: str | None, settings: Settings, *, lock: bool = False
) -> ExistingClient:
    """The client (by client id, or by row id once its secret was checked) if it is usable, the
    secret is one of its valid ones and it has no application yet; its row stays locked to the
    end of the transaction with `lock`."""
    query = Client.select(Client.id, Client.client_id, Client.enabled, Client.application)
    by = Client.id == client_id if isinstance(client_id, int) else Client.client_id == client_id
    rows = await (query.where(by).lock_rows() if lock else query.where(by))
    row = rows[0] if rows else None
    if row is None or not row["enabled"]:
        raise InvalidClient()
    secrets = await ClientSecret.raw(
        "SELECT id, value_hash AS hash FROM client_secret WHERE client = {}"
        " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
        row["id"],
    )
    valid = [(row["id"], row["hash"]) for row in secrets]
    if not valid or (secret is not None and matching_secret(valid, secret) is None):
        raise InvalidClient()
    if row["application"] is not None:
        raise ClientTaken()
    grants = await ScopeGrant.raw(
        "SELECT DISTINCT api FROM scope_grant WHERE client = {}", row["id"]
    )
    known = [api.key for api in settings.apis]
    apis = [key for key in known if key in {grant["api"] for grant in grants}]
    return ExistingClient(row["id"], row["client_id"], apis)


async def linkable_client(client_pk: int, settings: Settings) -> ExistingClient | None:
    """The client a first step checked, if it can still be linked."""
    try:
        return await _linkable(client_pk, None, settings)
    except (InvalidClient, ClientTaken):
        return None


async def link_existing_client(
    account_id: UUID,
    client_id: str | int,
    secret: str | None,
    data: ApplicationData,
    settings: Settings,
) -> UUID:
    """Client ID & secret koppelen: approved at once, every existing scope stays valid. The
    client is named by its client id and secret, or, in the second step of the form, by the
    row id that the first step checked (secret None): the secret is never sent back and forth.

    The client row is locked while it is checked and linked, so of two partners linking the
    same client at the same moment exactly one succeeds.
    """
    async with DB.transaction():
        partner_id = await _partner_of(account_id)
        existing = await _linkable(client_id, secret, settings, lock=True)
        apis = sorted(set(existing.apis) | set(data.apis), key=[a.key for a in settings.apis].index)
        application_id = await _insert(partner_id, account_id, data, APPROVED, apis)
        await Client.update({Client.application: application_id}).where(Client.id == existing.id)
    return application_id


def scopes_lost(application: Detail, apis: list[str]) -> dict[str, int]:
    """For each API that would be unticked: how many schools lose access (`update` checks
    again inside its transaction)."""
    return {api: count for api, count in application.schools.items() if api not in apis}


async def update(
    account_id: UUID, application_id: UUID, data: ApplicationData, settings: Settings
) -> None:
    """Save an application. Editing a rejected one sends it back to the helpdesk; unticking
    an API deletes that API's scopes and tells the application's contact."""
    async with DB.transaction():
        application = await get(account_id, application_id)
        if application.status == ARCHIVED:
            raise NotEditable()
        status = NEW if application.status == REJECTED else application.status
        now = dt.datetime.now(dt.UTC)
        values = {**_columns(data), "status": status, "updated_at": now}
        await Application.update(cast(dict[Column | str, Any], values)).where(
            Application.id == application_id
        )
        await _set_apis(application_id, data.apis)
        removed = [api for api in application.schools if api not in data.apis]
        if removed and application.client_pk:
            await ScopeGrant.delete().where(
                (ScopeGrant.client == application.client_pk) & ScopeGrant.api.is_in(removed)
            )
            await mail.send(
                settings,
                "scopes_removed",
                data.contact_email,
                await language_of(data.contact_email),
                N_("%(brand)s Partnerportaal — Data access removed for %(application)s"),
                application=data.name,
                apis=removed,
                path=f"/applicaties/{application_id}",
            )
        if application.status == REJECTED:
            # Back in the helpdesk's queue, in its place: the wait counts from the first
            # submission (submitted_at stays), and the queue shows the reason it was rejected for.
            await Application.update(
                {Application.handled_by: None, Application.handled_at: None}
            ).where(Application.id == application_id)
            partner_id = await _partner_of(account_id)
            email = await Account.select(Account.email).where(Account.id == account_id).first()
            by = email["email"] if email else ""
            await _tell_helpdesk(
                application_id,
                data.name,
                partner_id,
                by,
                settings,
                previous_reason=application.rejection_reason,
            )


# A secret used this recently is in live use: shortening or revoking it needs a confirmation.
RECENT_USE_DAYS = 30
# A new secret waits this long for the page view that shows it.
REVEAL_MINUTES = 10


@dataclass(frozen=True)
class RecentlyUsed(Exception):
    """These secrets were used lately; the partner must confirm before they stop."""

    secrets: list[Secret]


def _reveal_context(session_hash: str, application_id: UUID) -> str:
    return f"secret-reveal:{session_hash}:{application_id}"


async def generate_secret(
    account_id: UUID,
    application_id: UUID,
    choice: SecretChoice,
    *,
    session_hash: str,
    sealer: Sealer,
    settings: Settings,
) -> None:
    """A new client secret, kept sealed for the one page view that shows it. Earlier secrets
    stay valid until revoked, or for `overlap_days`; shortening one that live software used
    in the last 30 days raises RecentlyUsed unless `confirmed`."""
    label, overlap_days, confirmed = choice.label, choice.overlap_days, choice.confirmed
    async with DB.transaction():
        application = await get(account_id, application_id)
        if application.status != APPROVED or not application.client_pk:
            raise NoClient()
        if overlap_days is not None and not confirmed:
            ends = dt.datetime.now(dt.UTC) + dt.timedelta(days=overlap_days)
            shortened = [
                secret
                for secret in application.secrets
                if secret.valid
                and secret.recently_used
                and (secret.expires_at is None or secret.expires_at > ends)
            ]
            if shortened:
                raise RecentlyUsed(shortened)
        secret = new_secret()
        if overlap_days is not None:
            await ClientSecret.raw(
                "UPDATE client_secret SET expires_at = least(coalesce(expires_at, 'infinity'),"
                " now() + make_interval(days => {})) WHERE client = {} AND revoked_at IS NULL",
                overlap_days,
                application.client_pk,
            )
        rows = await ClientSecret.raw(
            "INSERT INTO client_secret (client, value_hash, description, hint, label, expires_at)"
            " VALUES ({}, {}, 'portal', {}, {}, now() + make_interval(months => {})) RETURNING id",
            application.client_pk,
            secret_hash(secret),
            secret[-4:],
            label,
            settings.identity.secret_lifetime_months,
        )
        await SecretReveal.raw(
            "INSERT INTO secret_reveal (session_hash, application, client_secret, sealed)"
            " VALUES ({}, {}, {}, {}) ON CONFLICT (session_hash, application) DO UPDATE SET"
            " client_secret = excluded.client_secret, sealed = excluded.sealed,"
            " created_at = now()",
            session_hash,
            application_id,
            rows[0]["id"],
            sealer.seal(secret, _reveal_context(session_hash, application_id)),
        )


async def take_new_secret(application_id: UUID, session_hash: str, sealer: Sealer) -> str | None:
    """The secret this session just made for the application, once: the view deletes it. Only
    the session that made it (for an application it owned then) can take it."""
    rows = await SecretReveal.raw(
        "DELETE FROM secret_reveal WHERE session_hash = {} AND application = {}"
        " AND created_at > now() - make_interval(mins => {}) RETURNING sealed",
        session_hash,
        application_id,
        REVEAL_MINUTES,
    )
    if not rows:
        return None
    return sealer.open(rows[0]["sealed"], _reveal_context(session_hash, application_id))


async def revoke_secret(
    account_id: UUID, application_id: UUID, secret_id: int, *, confirmed: bool = False
) -> None:
    """Revoke one secret of the account's application; one used in the last 30 days raises
    RecentlyUsed unless `confirmed`."""
    async with DB.transaction():
        application = await get(account_id, application_id)
        if not application.client_pk:
            raise NotFound()
        chosen = [secret for secret in application.secrets if secret.id == secret_id]
        if not chosen:
            raise NotFound()
        if chosen[0].recently_used and chosen[0].revoked_at is None and not confirmed:
            raise RecentlyUsed(chosen)
        await ClientSecret.update({ClientSecret.revoked_at: dt.datetime.now(dt.UTC)}).where(
            (ClientSecret.id == secret_id)
            & (ClientSecret.client == application.client_pk)
            & ClientSecret.revoked_at.is_null()
        )
