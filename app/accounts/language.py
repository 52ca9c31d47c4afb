"""The language a mail to an address is written in: its account's, when it has one (a partner's
contact often does); Dutch otherwise, as for schools and the helpdesk. The callers hand it to
mail, which knows no accounts."""

from __future__ import annotations

from app.accounts.tables import Account


async def language_of(address: str) -> str:
    owner = await Account.select(Account.language).where(Account.email == address.lower()).first()
    return str(owner["language"]) if owner else "nl"
