"""Steps that several browser journeys share, worded like the manual."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
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


async def fill_profile(visitor: Any, name: str, logo: Path) -> None:
    page = visitor.page
    await page.get_by_label("Naam (publiek)").fill(name)
    await page.get_by_label("Omschrijving (publiek)").fill(
        "Wij tonen uurroosters van leerlingen in onze app.\nOuders zien wijzigingen meteen."
    )
    await page.get_by_label("Planning en uurroosters").check()
    await page.get_by_label("Website (publiek)").fill("https://www.roosterapp.be")
    await page.get_by_label("Logo (publiek)").set_input_files(str(logo))
    await page.get_by_label("Contactpersoon").fill("Sara Claes")
    await page.get_by_label("Straat", exact=True).fill("Kerkstraat")
    await page.get_by_label("Nummer", exact=True).fill("5")
    await page.get_by_label("Postcode").fill("2000")
    await page.get_by_label("Gemeente").fill("Antwerpen")
    await page.get_by_label("Land").fill("België")
    await page.get_by_label("Publiek: toon dit profiel").check()


async def new_partner_with_profile(
    visitor: Any, name: str, logo: Path, email: str | None = None
) -> str:
    """A signed-in partner user whose profile exists; returns the e-mail address."""
    email = await new_partner_user(visitor, email)
    await visitor.page.get_by_role("link", name="Nieuw profiel toevoegen").click()
    await fill_profile(visitor, name, logo)
    await visitor.page.get_by_role("button", name="Opslaan").click()
    await visitor.page.wait_for_url("**/profiel?melding=aangemaakt")
    return email


async def fill_application(page: Any, name: str) -> None:
    await page.get_by_label("Naam", exact=True).fill(name)
    await page.get_by_label("Omschrijving").fill("Synchroniseert klaslijsten met ons platform.")
    await page.get_by_label("Contactpersoon").fill("Dev Eloper")
    await page.get_by_label("E-mailadres").fill("dev@partner.be")


async def request_new_client(visitor: Any, name: str) -> None:
    """Applicatie toevoegen → Ik vraag een nieuwe client ID aan → Opslaan (status Nieuw)."""
    page = visitor.page
    await visitor.goto("/applicaties/toevoegen")
    await page.get_by_label("Ik vraag een nieuwe client ID aan").check()
    await page.get_by_role("button", name="Doorgaan").click()
    await fill_application(page, name)
    await page.get_by_label("Leerlingen").check()
    await page.get_by_role("button", name="Opslaan").click()
    await page.wait_for_url("**?melding=aangevraagd")
