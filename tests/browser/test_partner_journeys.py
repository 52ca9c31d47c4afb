"""Stap 2 in a real browser: a profile with a logo, a colleague who joins, the directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.browser.conftest import PHONE, LiveServer
from tests.browser.steps import fill_profile, new_partner_user
from tests.factories import png_bytes

pytestmark = [pytest.mark.anyio, pytest.mark.browser]


async def approve_first_application(database_url: str, name: str) -> None:
    """What the helpdesk will do in the back-office: an approved app lists the partner."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            "INSERT INTO application (partner, name, status)"
            " SELECT id, 'Roosterkoppeling', 'goedgekeurd' FROM partner WHERE name = $1",
            name,
        )
    finally:
        await connection.close()


async def test_profile_colleague_and_directory(
    visitor_factory: Any, live_server: LiveServer, tmp_path: Path
) -> None:
    logo = tmp_path / "logo.png"
    logo.write_bytes(png_bytes(300, 200, "#f2b84b"))
    name = f"RoosterApp {tmp_path.name[-6:]}"

    owner = await visitor_factory("eigenaar")
    page = owner.page
    await new_partner_user(owner)
    await owner.check("profiel-kiezen")
    await page.get_by_role("link", name="Nieuw profiel toevoegen").click()
    await owner.check("profiel-toevoegen")

    await fill_profile(owner, name, logo)
    await page.get_by_label("Website (publiek)").fill("roosterapp")
    await page.get_by_role("button", name="Opslaan").click()
    await page.locator("#website-error").wait_for()
    assert await page.get_by_label("Contactpersoon").input_value() == "Sara Claes"
    assert await page.locator(".logo-preview img").count() == 1, "the logo is kept"
    await owner.check("profiel-fout")
    await page.get_by_label("Website (publiek)").fill("https://www.roosterapp.be")
    await page.get_by_role("button", name="Opslaan").click()
    await page.wait_for_url("**/profiel?melding=aangemaakt")
    await page.get_by_role("heading", name=name, exact=True).wait_for()
    await owner.check("mijn-profiel")

    await page.get_by_role("button", name="Gebruiker koppelen").click()
    code_element = page.locator("#invitation-code")
    await code_element.wait_for()
    code = (await code_element.inner_text()).strip()
    assert len(code) == 14
    await owner.check("uitnodigingscode")

    colleague = await visitor_factory("collega", viewport=PHONE)
    await new_partner_user(colleague)
    await colleague.page.get_by_role("link", name="Met bestaand profiel koppelen").click()
    await colleague.check("koppelen")
    await colleague.page.get_by_label("Uitnodigingscode").fill(code)
    await colleague.page.get_by_role("button", name="Koppelen").click()
    await colleague.page.wait_for_url("**/profiel?melding=gekoppeld")
    await colleague.page.get_by_role("heading", name=name, exact=True).wait_for()

    await colleague.page.get_by_role("link", name="Bewerken").click()
    await colleague.page.get_by_label("Contactpersoon").fill("Tom Claes")
    await colleague.page.get_by_role("button", name="Opslaan").click()
    await colleague.page.wait_for_url("**/profiel?melding=opgeslagen")
    await colleague.nothing_clipped()  # the users table, addresses and all
    await colleague.check("profiel-collega")

    await owner.goto("/profiel")
    history = page.locator(".history")
    await history.get_by_text("Sara Claes").wait_for()
    assert "Tom Claes" in await history.inner_text()

    await approve_first_application(live_server.database_url, name)
    visitor = await visitor_factory("bezoeker")
    await visitor.goto("/")
    await visitor.page.get_by_label("Zoek op naam of omschrijving").fill("roosterapp")
    await visitor.page.wait_for_url("**/?q=roosterapp*")  # the URL reflects the search
    await visitor.page.get_by_text("1 partner", exact=True).wait_for()
    card = visitor.page.locator(".partner-card").filter(has_text=name)
    await card.wait_for()
    await visitor.check("zoeken")
    await card.get_by_role("link", name=name).click()
    await visitor.page.get_by_role("heading", name=name, exact=True).wait_for()
    text = await visitor.page.locator("main").inner_text()
    assert "Sara Claes" not in text and "Tom Claes" not in text and "Kerkstraat" not in text
    await visitor.check("partnerpagina")
    await visitor.page.go_back()
    await visitor.page.locator(".partner-card").filter(has_text=name).wait_for()
    assert (
        await visitor.page.get_by_label("Zoek op naam of omschrijving").input_value()
        == "roosterapp"
    )


async def test_the_directory_works_without_javascript(visitor_factory: Any) -> None:
    visitor = await visitor_factory(javascript=False, viewport=PHONE)
    await visitor.goto("/")
    await visitor.page.get_by_label("Zoek op naam of omschrijving").fill("niets-te-vinden")
    await visitor.page.get_by_role("button", name="Zoeken").click()
    await visitor.page.get_by_text("Geen partners gevonden voor je zoekopdracht.").wait_for()
    assert "q=niets-te-vinden" in visitor.page.url
    await visitor.check("zoeken-zonder-javascript")
