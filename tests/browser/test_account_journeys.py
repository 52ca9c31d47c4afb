"""The manual's step 1 in a real browser: register, activate, sign in and out, reset."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import PHONE
from tests.browser.steps import new_address, register, sign_in
from tests.factories import PASSWORD

pytestmark = [pytest.mark.anyio, pytest.mark.browser]
NEW_PASSWORD = "Nieuw#Wachtwoord42"


async def test_register_activate_sign_in_and_out(visitor_factory: Any) -> None:
    visitor = await visitor_factory()
    page = visitor.page
    email = new_address()
    await register(visitor, email)

    link = await visitor.mail_link(email, "/activeren/")
    await page.goto(link)
    await visitor.check("activeren")
    await page.get_by_role("button", name="Activeer mijn account").click()
    await page.wait_for_url("**/aanmelden?melding=geactiveerd")
    await page.get_by_text("Je account is geactiveerd.").wait_for()
    await visitor.check("aanmelden-na-activatie")

    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Wachtwoord").fill(PASSWORD)
    await page.get_by_role("button", name="Aanmelden").click()
    await page.wait_for_url("**/profiel/kiezen")
    await page.get_by_text("Je account is nog niet gekoppeld aan een partnerprofiel.").wait_for()
    assert email in await page.locator(".account-email").inner_text()
    await visitor.check("profiel-kiezen")

    await page.get_by_role("button", name="Afmelden").click()
    await page.wait_for_url("**/aanmelden?melding=afgemeld")
    await visitor.check("afgemeld")
    await visitor.goto("/partnerzone")
    assert "/aanmelden" in page.url

    await page.goto(link)
    await page.get_by_text("Deze link werd al gebruikt.").wait_for()
    await visitor.check("link-gebruikt")


async def test_forgotten_password_signs_out_the_other_browser(visitor_factory: Any) -> None:
    email = new_address()
    first = await visitor_factory("reset-a")
    await register(first, email)
    await first.page.goto(await first.mail_link(email, "/activeren/"))
    await first.page.get_by_role("button", name="Activeer mijn account").click()
    await first.page.wait_for_url("**/aanmelden?**")
    await sign_in(first, email)

    second = await visitor_factory("reset-b", viewport=PHONE)
    page = second.page
    await second.goto("/aanmelden")
    await page.get_by_role("link", name="Wachtwoord vergeten?").click()
    await second.check("wachtwoord-vergeten")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_role("button", name="Link versturen").click()
    await page.wait_for_url("**/wachtwoord-vergeten/verstuurd")
    await second.check("reset-verstuurd")

    await page.goto(await second.mail_link(email, "/wachtwoord-herstellen/"))
    await second.check("nieuw-wachtwoord")
    await page.get_by_label("Nieuw wachtwoord").fill(NEW_PASSWORD)
    await page.get_by_label("Wachtwoord herhalen").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Wachtwoord opslaan").click()
    await page.wait_for_url("**/aanmelden?melding=wachtwoord-gewijzigd")
    await sign_in(second, email, NEW_PASSWORD)
    await second.check("partnerzone-telefoon")

    await first.goto("/profiel/kiezen")
    assert "/aanmelden" in first.page.url, "the reset signed the other browser out"


@pytest.mark.parametrize("javascript", [True, False], ids=["htmx", "no-javascript"])
async def test_bad_input_is_explained_next_to_each_field(
    visitor_factory: Any, javascript: bool
) -> None:
    visitor = await visitor_factory(javascript=javascript)
    page = visitor.page
    await visitor.goto("/registreren")
    await page.get_by_label("E-mail").fill("geen-adres")
    await page.get_by_label("Wachtwoord", exact=True).fill("kort")
    await page.get_by_label("Wachtwoord herhalen").fill("anders")
    await page.get_by_role("button", name="Registreren").click()

    await page.locator("#password-error").wait_for()
    assert "Gebruik minstens 8 karakters." in await page.locator("#password-error").inner_text()
    assert "Geef een geldig e-mailadres in" in await page.locator("#email-error").inner_text()
    assert (
        "De wachtwoorden komen niet overeen."
        in await page.locator("#password_repeat-error").inner_text()
    )
    assert "akkoord gaan" in await page.locator("#terms-error").inner_text()
    assert await page.get_by_label("E-mail").input_value() == "geen-adres"
    assert await page.get_by_label("Wachtwoord", exact=True).input_value() == ""
    assert await page.get_by_label("E-mail").get_attribute("aria-invalid") == "true"
    assert page.url.endswith("/registreren")
    await visitor.check("formulierfouten")


async def test_the_portal_speaks_english_on_request(visitor_factory: Any) -> None:
    visitor = await visitor_factory(viewport=PHONE)
    page = visitor.page
    await visitor.goto("/registreren")
    await page.get_by_role("button", name="English").click()
    await page.get_by_role("heading", name="Register").wait_for()
    assert await page.locator("html").get_attribute("lang") == "en"
    await page.get_by_role("button", name="Register").click()
    await page.locator("#email-error").wait_for()
    assert "Enter your e-mail address." in await page.locator("#email-error").inner_text()
    await visitor.check("english-errors")
    await page.get_by_role("button", name="Nederlands").click()
    await page.get_by_role("heading", name="Registreren").wait_for()


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/aanmelden",
        "/wachtwoord-vergeten",
        "/voorwaarden",
        "/privacybeleid",
        "/bestaat-niet",
        "/activeren/onbekend",
        "/wachtwoord-herstellen/onbekend",
        "/dev/mailbox",
    ],
)
async def test_every_page_is_accessible(visitor_factory: Any, path: str, viewport: str) -> None:
    from tests.browser.conftest import DESKTOP

    visitor = await visitor_factory(viewport=PHONE if viewport == "phone" else DESKTOP)
    await visitor.goto(path)
    await visitor.check(f"{viewport}{path.replace('/', '-')}")
    overflow = await visitor.page.evaluate(
        "document.documentElement.scrollWidth > document.documentElement.clientWidth"
    )
    assert not overflow, "no sideways scrolling"
