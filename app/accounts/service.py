"""Partner accounts: registering, activating, signing in, resetting a password.

Nothing here tells a visitor whether an address has an account: registering an address that
exists, or asking a reset for one that does not, answers exactly like the normal case, and
the owner of an existing address is told by mail instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from app import throttle
from app.accounts import passwords
from app.accounts.tables import Account, AccountToken
from app.config import Settings
from app.crypto import new_token, token_hash
from app.mail import service as mail
from app.piccolo_conf import DB
from app.throttle import Blocked
from app.web.i18n import N_
from app.web.sessions import end_all_sessions

ACTIVATION = "activation"
PASSWORD_RESET = "password_reset"  # noqa: S105 - a purpose, not a password


class AccountError(Exception):
    """A domain error; the controller shows it in the form."""


class InvalidCredentials(AccountError):
    pass


class NotActivated(AccountError):
    pass


@dataclass(frozen=True)
class LinkProblem(AccountError):
    """An e-mailed link that cannot be used: 'unknown', 'used' or 'expired'."""

    reason: str


@dataclass(frozen=True)
class Credentials:
    """What the registration and sign-in forms give the service."""

    email: str
    password: str


@dataclass(frozen=True)
class SignedIn:
    account_id: UUID
    email: str
    language: str


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _limit_mail_requests(client_address: str) -> None:
    """Refuse a client that has asked for too many mails (registrations, links) lately."""
    await throttle.claim((throttle.MAIL_REQUESTS_ADDRESS, client_address))


async def _may_mail(recipient: str) -> bool:
    """Whether this mailbox may get another requested mail; beyond the limit it is skipped
    silently, so the answer stays the same for every address."""
    try:
        await throttle.claim((throttle.MAIL_REQUESTS_RECIPIENT, recipient))
    except Blocked:
        return False
    return True


async def register(
    email: str, password: str, language: str, client_address: str, settings: Settings
) -> None:
    """Create an inactive account and mail its activation link, in one transaction.

    For an address that already has an account the password is hashed all the same (so the
    answer takes as long) and the owner is mailed that someone tried to register.
    """
    await _limit_mail_requests(client_address)
    password_hash = await passwords.hash_password(password)
    async with DB.transaction():
        inserted = await Account.raw(
            "INSERT INTO account (email, password_hash, language) VALUES ({}, {}, {})"
            " ON CONFLICT (email) DO NOTHING RETURNING id",
            email,
            password_hash,
            language,
        )
        if not await _may_mail(email):
            return
        if inserted:
            await _send_link(inserted[0]["id"], email, language, ACTIVATION, settings)
            return
        existing = await Account.select(Account.language).where(Account.email == email).first()
        await mail.send(
            settings,
            "registration_attempt",
            email,
            existing["language"] if existing else language,
            N_("%(brand)s — Someone tried to register with your e-mail address"),
            sign_in_url=mail.link(settings, "/aanmelden"),
            reset_url=mail.link(settings, "/wachtwoord-vergeten"),
        )


async def _send_link(
    account_id: UUID, email: str, language: str, purpose: str, settings: Settings
) -> None:
    hours, minutes = settings.accounts.activation_hours, settings.accounts.reset_minutes
    lifetime = dt.timedelta(hours=hours) if purpose == ACTIVATION else dt.timedelta(minutes=minutes)
    token = new_token()
    await AccountToken.insert(
        AccountToken(
            account=account_id,
            purpose=purpose,
            token_hash=token_hash(token),
            expires_at=_now() + lifetime,
        )
    )
    if purpose == ACTIVATION:
        subject = N_("%(brand)s — Activate your partner account")
        await mail.send(
            settings,
            "activation",
            email,
            language,
            subject,
            path=f"/activeren/{token}",
            hours=hours,
        )
    else:
        subject = N_("%(brand)s — Choose a new password")
        path = f"/wachtwoord-herstellen/{token}"
        await mail.send(
            settings, "password_reset", email, language, subject, path=path, minutes=minutes
        )


async def resend_activation(email: str, client_address: str, settings: Settings) -> None:
    """A new activation link for an address that has an inactive account; else nothing."""
    await _limit_mail_requests(client_address)
    async with DB.transaction():
        account = (
            await Account.select(Account.id, Account.language)
            .where((Account.email == email) & Account.activated_at.is_null())
            .first()
        )
        if account and await _may_mail(email):
            await _send_link(account["id"], email, account["language"], ACTIVATION, settings)


async def check_link(token: str, purpose: str) -> str:
    """The e-mail address a link belongs to, if the link can still be used."""
    row = (
        await AccountToken.select(
            AccountToken.used_at, AccountToken.expires_at, AccountToken.account.email
        )
        .where((AccountToken.token_hash == token_hash(token)) & (AccountToken.purpose == purpose))
        .first()
    )
    email: str = _usable(row)["account.email"]
    return email


def _usable(row: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The token row, if the link can still be used; else the reason why not."""
    if row is None:
        raise LinkProblem("unknown")
    if row["used_at"] is not None:
        raise LinkProblem("used")
    expires_at = row["expires_at"]
    if not isinstance(expires_at, dt.datetime) or expires_at <= _now():
        raise LinkProblem("expired")
    return row


async def _claim_link(token: str, purpose: str) -> UUID:
    """Mark a link used, under a row lock, so two clicks at once cannot both use it."""
    rows = await AccountToken.raw(
        "SELECT id, account, used_at, expires_at FROM account_token"
        " WHERE token_hash = {} AND purpose = {} FOR UPDATE",
        token_hash(token),
        purpose,
    )
    row = _usable(rows[0] if rows else None)
    await AccountToken.raw("UPDATE account_token SET used_at = now() WHERE id = {}", row["id"])
    account_id: UUID = row["account"]
    return account_id


async def activate(token: str) -> None:
    async with DB.transaction():
        account_id = await _claim_link(token, ACTIVATION)
        await Account.raw(
            "UPDATE account SET activated_at = coalesce(activated_at, now()) WHERE id = {}",
            account_id,
        )


async def sign_in(email: str, password: str, client_address: str) -> SignedIn:
    """Check the credentials, slowing down repeated failures per account and per address."""
    limits = (throttle.SIGN_IN_ACCOUNT, email), (throttle.SIGN_IN_ADDRESS, client_address)
    await throttle.claim(*limits)
    account = (
        await Account.select(
            Account.id, Account.email, Account.password_hash, Account.language, Account.activated_at
        )
        .where(Account.email == email)
        .first()
    )
    ok = await passwords.verify_password(account["password_hash"] if account else None, password)
    if not ok or account is None:
        raise InvalidCredentials()  # the claimed attempt stays counted
    await throttle.release(*limits)
    if account["activated_at"] is None:
        raise NotActivated()
    await throttle.clear(throttle.SIGN_IN_ACCOUNT, email)
    if passwords.needs_rehash(account["password_hash"]):
        new_hash = await passwords.hash_password(password)
        await Account.update({Account.password_hash: new_hash}).where(Account.id == account["id"])
    return SignedIn(account["id"], account["email"], account["language"])


async def request_password_reset(email: str, client_address: str, settings: Settings) -> None:
    await _limit_mail_requests(client_address)
    async with DB.transaction():
        account = (
            await Account.select(Account.id, Account.language).where(Account.email == email).first()
        )
        if account and await _may_mail(email):
            await _send_link(account["id"], email, account["language"], PASSWORD_RESET, settings)


async def reset_password(token: str, password: str) -> None:
    """Set the new password, use up every reset link, and sign out every session.

    Following a reset link proves the address, so it also activates an account that was
    never activated (the manual's tip for a lost activation mail).
    """
    password_hash = await passwords.hash_password(password)
    async with DB.transaction():
        account_id = await _claim_link(token, PASSWORD_RESET)
        await Account.raw(
            "UPDATE account SET password_hash = {}, password_changed_at = now(),"
            " activated_at = coalesce(activated_at, now()) WHERE id = {}",
            password_hash,
            account_id,
        )
        await AccountToken.update({AccountToken.used_at: _now()}).where(
            (AccountToken.account == account_id) & AccountToken.used_at.is_null()
        )
        await end_all_sessions(account_id)


async def set_language(account_id: UUID, language: str) -> None:
    await Account.update({Account.language: language}).where(Account.id == account_id)
