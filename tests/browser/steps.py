"""Steps that several browser journeys share, worded like the manual."""

from __future__ import annotations

import itertools
import os
from typing import Any

from tests.factories import PASSWORD

_numbers = itertools.count(1)


def new_address() -> str:
    return f"browser{next(_numbers)}-{os.getpid()}@voorbeeld.be"


async def register(visitor: Any, email: str, password: str = PASSWORD) -> None:
    page = visitor.page
    await visitor.goto("/")
    await visitor.check("landing")
    await page.get_by_role("link", name="Word partner").click()
    await visitor.check("registreren")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Wachtwoord", exact=True).fill(password)
    await page.get_by_label("Wachtwoord herhalen").fill(password)
    await page.get_by_label("Ik ga akkoord").check()
    await page.get_by_role("button", name="Registreren").click()
    await page.wait_for_url("**/registreren/controleer-je-mailbox")
    await visitor.check("controleer-je-mailbox")


async def sign_in(visitor: Any, email: str, password: str = PASSWORD) -> None:
    page = visitor.page
    await visitor.goto("/aanmelden")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Wachtwoord").fill(password)
    await page.get_by_role("button", name="Aanmelden").click()
    await page.wait_for_url(lambda url: "/aanmelden" not in url)


async def activate(visitor: Any, email: str) -> None:
    """Click the link in the activation mail and confirm."""
    page = visitor.page
    await page.goto(await visitor.mail_link(email, "/activeren/"))
    await page.get_by_role("button", name="Activeer mijn account").click()
    await page.wait_for_url("**/aanmelden?melding=geactiveerd")


async def new_partner_user(visitor: Any, email: str | None = None) -> str:
    """Register, activate and sign in; returns the e-mail address."""
    email = email or new_address()
    await register(visitor, email)
    await activate(visitor, email)
    await sign_in(visitor, email)
    return email
