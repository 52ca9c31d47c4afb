"""Partner profiles (manual §3.2): creating, linking colleagues, editing with a history.

Every function takes the signed-in account and checks itself that the account may do what
it asks: templates only hide what a user may not do, the rules live here.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, cast
from uuid import UUID

import asyncpg
import msgspec
from piccolo.columns import Column

from app import problems, throttle
from app.accounts.language import language_of
from app.accounts.tables import Account
from app.config import Settings
from app.crypto import token_hash
from app.mail import service as mail
from app.partners.logos import Logo
from app.partners.tables import Category, InvitationCode, Partner, PartnerCategory, PartnerChange
from app.piccolo_conf import DB
from app.web.i18n import N_, current_language


@dataclass(frozen=True)
class ProfileData:
    name: str
    enterprise_number: str | None
    description: str
    contact_person: str
    street: str
    house_number: str
    postcode: str
    municipality: str
    country: str
    public: bool
    categories: list[int]
    website: str
    extra_info: str
    logo: Logo | None


# The profile's own columns, as the form gives them and the service stores them (manual §3.2).
PROFILE_FIELDS = tuple(f.name for f in fields(ProfileData) if f.name not in ("categories", "logo"))


INVITATION_DAYS = 5
# Letters and digits that cannot be mistaken for one another when read aloud or retyped.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 12


class PartnerError(Exception):
    pass


@dataclass(frozen=True)
class NameTaken(PartnerError):
    name: str


class AlreadyLinked(PartnerError):
    pass


class NotFound(PartnerError, problems.NotFound):
    """Not one of the account's own profile's (invitation codes): nothing to say about it."""


class NoProfile(PartnerError):
    pass


@dataclass(frozen=True)
class InvitationProblem(PartnerError):
    """'unknown', 'expired' or 'revoked'."""

    reason: str


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:200] or "partner"


async def _free_slug(name: str) -> str:
    base = slugify(name)
    rows = await Partner.raw(
        "SELECT slug FROM partner WHERE slug = {} OR slug LIKE {}", base, f"{base}-%"
    )
    taken = {row["slug"] for row in rows}
    if base not in taken:
        return base
    return next(f"{base}-{n}" for n in range(2, len(taken) + 3) if f"{base}-{n}" not in taken)


async def linked_partner(account_id: UUID) -> UUID | None:
    row = await Account.select(Account.partner).where(Account.id == account_id).first()
    return row["partner"] if row else None


async def _require_partner(account_id: UUID) -> UUID:
    partner_id = await linked_partner(account_id)
    if partner_id is None:
        raise NoProfile()
    return partner_id


async def _name_taken(name: str, except_partner: UUID | None = None) -> bool:
    rows = await Partner.raw("SELECT id FROM partner WHERE name_key = lower(btrim({}))", name)
    return any(row["id"] != except_partner for row in rows)


async def create_profile(account_id: UUID, email: str, data: ProfileData) -> UUID:
    """Create a profile and link the creating account to it, in one transaction."""
    if data.logo is None:
        raise ValueError("a new profile needs a logo")
    async with DB.transaction() as transaction:
        rows = await Account.raw("SELECT partner FROM account WHERE id = {} FOR UPDATE", account_id)
        if not rows or rows[0]["partner"] is not None:
            raise AlreadyLinked()
        if await _name_taken(data.name):
            raise NameTaken(data.name)
        partner_id = await _insert_partner(transaction, account_id, email, data, data.logo)
        await _set_categories(partner_id, data.categories)
        await Account.raw(
            "UPDATE account SET partner = {}, partner_linked_at = now() WHERE id = {}",
            partner_id,
            account_id,
        )
    return partner_id


async def _insert_partner(
    transaction: Any, account_id: UUID, email: str, data: ProfileData, logo: Logo
) -> UUID:
    """Insert the profile row. A profile with the same name or address (slug) created at the
    same moment by someone else makes the insert fail; a savepoint keeps the transaction
    usable to find out which, so the user gets the manual's message or a free address."""
    for _attempt in range(3):
        savepoint = await transaction.savepoint()
        try:
            profile: dict[str, Any] = {f: getattr(data, f) for f in PROFILE_FIELDS}
            slug = await _free_slug(data.name)
            created = await Partner.insert(
                Partner(slug=slug, email=email, created_by=account_id, **profile, **_logo(logo))
            )
        except asyncpg.UniqueViolationError:
            await savepoint.rollback_to()
            if await _name_taken(data.name):
                raise NameTaken(data.name) from None
            continue
        await savepoint.release()
        partner_id: UUID = created[0]["id"]
        return partner_id
    raise RuntimeError("no free address for the profile after three attempts")


def _logo(logo: Logo) -> Mapping[str, Any]:
    return {"logo": logo.data, "logo_type": logo.content_type, "logo_etag": logo.etag}


async def _set_categories(partner_id: UUID, category_ids: list[int]) -> None:
    await PartnerCategory.delete().where(PartnerCategory.partner == partner_id)
    if category_ids:
        await PartnerCategory.raw(
            "INSERT INTO partner_category (partner, category)"
            " SELECT {}, id FROM category WHERE id = ANY({})",
            partner_id,
            category_ids,
        )


async def category_names(category_ids: list[int]) -> list[str]:
    rows = (
        await Category.select(Category.name_nl, Category.name_en)
        .where(Category.id.is_in(category_ids or [0]))
        .order_by(Category.position)
    )
    column = "name_en" if current_language() == "en" else "name_nl"
    return [row[column] for row in rows]


# What a profile change changed: each field with its old and new value.
Changes = dict[str, list[object]]


async def update_profile(
    account_id: UUID, email: str, data: ProfileData, settings: Settings
) -> Changes:
    """Save changes to the account's own profile; log and mail which fields changed."""
    async with DB.transaction():
        partner_id = await _require_partner(account_id)
        rows = await Partner.raw("SELECT * FROM partner WHERE id = {} FOR UPDATE", partner_id)
        old = rows[0]
        if data.name != old["name"] and await _name_taken(data.name, partner_id):
            raise NameTaken(data.name)
        old_categories = await _category_ids(partner_id)
        new_values = {field: getattr(data, field) for field in PROFILE_FIELDS}
        changes: Changes = {
            field: [old[field], value] for field, value in new_values.items() if old[field] != value
        }
        if sorted(old_categories) != data.categories:
            changes["categories"] = [
                await category_names(old_categories),
                await category_names(data.categories),
            ]
        if data.logo is not None and data.logo.etag != old["logo_etag"]:
            changes["logo"] = [None, None]
        if not changes:
            return changes
        logo = _logo(data.logo) if data.logo is not None and "logo" in changes else {}
        values = {"updated_at": dt.datetime.now(dt.UTC), **new_values, **logo}
        try:
            await Partner.update(cast(dict[Column | str, Any], values)).where(
                Partner.id == partner_id
            )
        except asyncpg.UniqueViolationError:
            raise NameTaken(data.name) from None
        if "categories" in changes:
            await _set_categories(partner_id, data.categories)
        await PartnerChange.insert(
            PartnerChange(
                partner=partner_id, account=account_id, account_email=email, changes=changes
            )
        )
        await _notify_change(old["email"], old["name"], email, list(changes), settings)
    return changes


async def _category_ids(partner_id: UUID) -> list[int]:
    rows = await PartnerCategory.select(PartnerCategory.category).where(
        PartnerCategory.partner == partner_id
    )
    return [row["category"] for row in rows]


async def _notify_change(
    address: str, partner: str, changed_by: str, fields: list[str], settings: Settings
) -> None:
    """The profile's e-mail address hears of every change, in its owner's language."""
    await mail.send(
        settings,
        "profile_changed",
        address,
        await language_of(address),
        N_("%(brand)s — Your partner profile was changed"),
        partner=partner,
        changed_by=changed_by,
        fields=fields,
        path="/profiel",
    )


def _new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(code: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", code.upper())


def format_code(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


async def create_invitation(account_id: UUID) -> str:
    """A new invitation code for the account's profile, valid five days; shown once."""
    partner_id = await _require_partner(account_id)
    code = _new_code()
    await InvitationCode.insert(
        InvitationCode(
            partner=partner_id,
            code_hash=token_hash(code),
            hint=code[-4:],
            created_by=account_id,
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=INVITATION_DAYS),
        )
    )
    return format_code(code)


async def revoke_invitation(account_id: UUID, code_id: int) -> None:
    partner_id = await _require_partner(account_id)
    own = await InvitationCode.raw(
        "UPDATE invitation_code SET revoked_at = coalesce(revoked_at, now())"
        " WHERE id = {} AND partner = {} RETURNING id",
        code_id,
        partner_id,
    )
    if not own:
        raise NotFound()


async def link_with_code(
    account_id: UUID, code: str, client_address: str, settings: Settings
) -> UUID:
    """Link an account that has no profile yet, with a colleague's invitation code; the
    profile's address hears who joined."""
    limits = (
        (throttle.INVITATION_ACCOUNT, str(account_id)),
        (throttle.SIGN_IN_ADDRESS, client_address),
    )
    await throttle.claim(*limits)
    async with DB.transaction():
        rows = await Account.raw("SELECT partner FROM account WHERE id = {} FOR UPDATE", account_id)
        if not rows or rows[0]["partner"] is not None:
            await throttle.release(*limits)  # not a guess
            raise AlreadyLinked()
        found = (
            await InvitationCode.select(
                InvitationCode.partner, InvitationCode.expires_at, InvitationCode.revoked_at
            )
            .where(InvitationCode.code_hash == token_hash(normalise_code(code)))
            .first()
        )
        problem = _code_problem(found)
        if found is not None and problem is None:
            partner_id: UUID = found["partner"]
            await Account.raw(
                "UPDATE account SET partner = {}, partner_linked_at = now() WHERE id = {}",
                partner_id,
                account_id,
            )
            await _tell_profile_of_colleague(partner_id, account_id, settings)
            await throttle.release(*limits)
            return partner_id
    raise InvitationProblem(problem or "unknown")  # the claimed attempt stays counted


async def _tell_profile_of_colleague(
    partner_id: UUID, account_id: UUID, settings: Settings
) -> None:
    partner = (
        await Partner.select(Partner.name, Partner.email).where(Partner.id == partner_id).first()
    )
    joined = await Account.select(Account.email).where(Account.id == account_id).first()
    if partner is None or joined is None:
        return
    await mail.send(
        settings,
        "colleague_joined",
        partner["email"],
        await language_of(partner["email"]),
        N_("%(brand)s — A colleague joined your partner profile"),
        partner=partner["name"],
        colleague=joined["email"],
        path="/profiel",
    )


def _code_problem(code: Mapping[str, dt.datetime | None] | None) -> str | None:
    if code is None:
        return "unknown"
    expires_at = code["expires_at"]
    if code["revoked_at"] is not None:
        return "revoked"
    if expires_at is None or expires_at <= dt.datetime.now(dt.UTC):
        return "expired"
    return None


class Profile(msgspec.Struct, frozen=True):
    """The account's own profile, every field Mijn profiel shows and edits."""

    id: UUID
    slug: str
    email: str
    active: bool
    logo_etag: str
    created_at: dt.datetime
    updated_at: dt.datetime
    name: str
    enterprise_number: str | None
    description: str
    contact_person: str
    street: str
    house_number: str
    postcode: str
    municipality: str
    country: str
    public: bool
    website: str
    extra_info: str


class Colleague(msgspec.Struct, frozen=True):
    email: str
    partner_linked_at: dt.datetime | None


class Invitation(msgspec.Struct, frozen=True):
    id: int
    hint: str
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    valid: bool


class Change(msgspec.Struct, frozen=True):
    account_email: str
    changed_at: dt.datetime
    changes: dict[str, list[object]]


@dataclass(frozen=True)
class ProfileView:
    profile: Profile
    categories: list[int]
    category_names: list[str]
    users: list[Colleague]
    invitations: list[Invitation]
    history: list[Change]


async def my_profile(account_id: UUID) -> ProfileView:
    """Everything Mijn profiel shows, for the account's own profile only."""
    partner_id = await _require_partner(account_id)
    profile = (
        await Partner.select(
            *[
                getattr(Partner, f)
                for f in (
                    "id",
                    "slug",
                    "email",
                    "active",
                    "logo_etag",
                    "created_at",
                    "updated_at",
                    *PROFILE_FIELDS,
                )
            ]
        )
        .where(Partner.id == partner_id)
        .first()
    )
    categories = await _category_ids(partner_id)
    users = (
        await Account.select(Account.email, Account.partner_linked_at)
        .where(Account.partner == partner_id)
        .order_by(Account.partner_linked_at)
    )
    invitations = await InvitationCode.raw(
        "SELECT id, hint, created_at, expires_at, revoked_at, expires_at > now() AS valid"
        " FROM invitation_code WHERE partner = {} AND expires_at > now() - interval '30 days'"
        " ORDER BY created_at DESC",
        partner_id,
    )
    history = (
        await PartnerChange.select(
            PartnerChange.account_email, PartnerChange.changed_at, PartnerChange.changes
        )
        .where(PartnerChange.partner == partner_id)
        .order_by(PartnerChange.changed_at, ascending=False)
        .limit(50)
        .output(load_json=True)
    )
    if profile is None:
        raise NoProfile()
    return ProfileView(
        msgspec.convert(profile, Profile),
        categories,
        await category_names(categories),
        msgspec.convert(users, list[Colleague]),
        msgspec.convert(invitations, list[Invitation]),
        msgspec.convert(history, list[Change]),
    )


class CategoryChoice(msgspec.Struct, frozen=True):
    id: int
    key: str
    name: str  # in the current language


_categories: tuple[float, list[dict[str, Any]]] = (0.0, [])
CATEGORIES_TTL = 60.0


async def all_categories() -> list[CategoryChoice]:
    """The category list, in the current language. It changes only through migrations or
    the back-office, so each process keeps it for a minute instead of asking every page."""
    global _categories
    fetched_at, rows = _categories
    if time.monotonic() - fetched_at > CATEGORIES_TTL:
        rows = await Category.select().order_by(Category.position)
        _categories = (time.monotonic(), rows)
    column = "name_en" if current_language() == "en" else "name_nl"
    return [CategoryChoice(row["id"], row["key"], row[column]) for row in rows]


class StoredLogo(msgspec.Struct, frozen=True):
    logo: bytes
    logo_type: str
    logo_etag: str
    listed: bool


async def logo_for(slug: str, account_id: UUID | None) -> StoredLogo | None:
    """A logo is public for listed partners, and visible to the profile's own users."""
    rows = await Partner.raw(
        f"""
        SELECT p.logo, p.logo_type, p.logo_etag, ({LISTED}) AS listed FROM partner p
        WHERE p.slug = {{}} AND (({LISTED}) OR p.id = (SELECT partner FROM account WHERE id = {{}}))
        """,  # noqa: S608 - LISTED is a constant
        slug,
        account_id,
    )
    return msgspec.convert(rows[0], StoredLogo) if rows else None


# The directory's rule (manual §3): active, public, and at least one approved application;
# the database keeps it in partner.listed (see the migration that creates the table).
LISTED = "p.listed"
