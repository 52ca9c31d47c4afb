"""Test data, built the way the product builds it."""

from __future__ import annotations

import datetime as dt
import itertools
from urllib.parse import urlsplit

from app.accounts import passwords
from app.accounts.tables import Account
from app.mail.tables import OutboxMail

PASSWORD = "Sterk!Wachtwoord9"
_numbers = itertools.count(1)


def unique_email(prefix: str = "partner") -> str:
    return f"{prefix}{next(_numbers)}@voorbeeld.be"


async def make_account(
    email: str | None = None, password: str = PASSWORD, active: bool = True, language: str = "nl"
) -> Account:
    account = Account(
        email=email or unique_email(),
        password_hash=await passwords.hash_password(password),
        language=language,
        activated_at=dt.datetime.now(dt.UTC) if active else None,
    )
    await account.save()
    return account


async def mails_to(recipient: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = (
        await OutboxMail.select().where(OutboxMail.recipient == recipient).order_by(OutboxMail.id)
    )
    return rows


async def last_mail(recipient: str) -> dict[str, object]:
    mails = await mails_to(recipient)
    assert mails, f"no mail to {recipient}"
    return mails[-1]


def path_of(url: str) -> str:
    return urlsplit(url).path
