"""What a person sees before reading: contrast, and a header that keeps to one line.

Colours are measured from the computed styles (WCAG 2.1 relative luminance): text 4.5:1 against
its background, a button 3:1 against what surrounds it, every colour stop of a gradient
included.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import DESKTOP, PHONE, LiveServer
from tests.browser.steps import new_partner_with_profile
from tests.factories import PASSWORD, png_bytes

pytestmark = pytest.mark.anyio
WIDE = {"width": 1440, "height": 900}
FULL_HD = {"width": 1920, "height": 1080}


def colours(css: str) -> list[tuple[int, int, int]]:
    return [
        (int(r), int(g), int(b)) for r, g, b in re.findall(r"rgba?\((\d+),\s*(\d+),\s*(\d+)", css)
    ]


def contrast(one: tuple[int, int, int], other: tuple[int, int, int]) -> float:
    def luminance(colour: tuple[int, int, int]) -> float:
        channels = [c / 255 for c in colour]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(one), luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


async def style(page: Any, selector: str, *properties: str) -> list[str]:
    return [
        await page.locator(selector).first.evaluate(
            f"element => getComputedStyle(element).getPropertyValue('{name}')"
        )
        for name in properties
    ]


async def test_the_hero_button_and_the_back_offices_partner_link_stand_out(
    visitor_factory: Any,
) -> None:
    visitor = await visitor_factory(viewport=DESKTOP)
    await visitor.goto("/")
    [button] = await style(visitor.page, ".hero .button-primary", "background-color")
    [text] = await style(visitor.page, ".hero .button-primary", "color")
    [hero] = await style(visitor.page, ".hero", "background-image")
    for stop in colours(hero):
        assert contrast(colours(button)[0], stop) >= 3, f"'Word partner' against the hero {stop}"
    assert contrast(colours(text)[0], colours(button)[0]) >= 4.5
    await visitor.check("landing-knop")

    await visitor.goto("/backoffice/aanmelden")
    link = visitor.page.get_by_role("link", name="Aanmelden als partner")
    await link.wait_for()
    [colour] = await style(visitor.page, ".auth-aside a", "color")
    [panel] = await style(visitor.page, ".auth-aside", "background-image")
    for stop in colours(panel):
        assert contrast(colours(colour)[0], stop) >= 4.5, f"the partner link against {stop}"
    await visitor.check("backoffice-aanmelden")


async def test_a_signed_in_partners_header_keeps_to_one_line(
    visitor_factory: Any, tmp_path: Path
) -> None:
    logo = tmp_path / "logo.png"
    logo.write_bytes(png_bytes(300, 200, "#0e8a7b"))
    visitor = await visitor_factory("kop", viewport=WIDE)
    # An ordinary address, as long as many are.
    email = f"sara.claes-{os.getpid()}@roosterapp-voorbeeld.be"
    await new_partner_with_profile(visitor, "Kopregel Partner", logo, email)
    for size in (WIDE, FULL_HD):
        await visitor.page.set_viewport_size(size)
        await visitor.goto("/applicaties")
        header = visitor.page.locator(".site-header")
        tops = await visitor.page.locator(".header-inner > *").evaluate_all(
            "items => items.map(item => Math.round(item.getBoundingClientRect().top))"
        )
        assert max(tops) - min(tops) < 20, f"the header wraps at {size['width']} px: {tops}"
        links = await visitor.page.locator(".main-nav a").evaluate_all(
            "items => items.map(item => Math.round(item.getBoundingClientRect().top))"
        )
        assert len(set(links)) == 1, f"the navigation wraps at {size['width']} px"
        assert email in await header.inner_text(), "the address shows where there is room"
        box = await header.bounding_box()
        assert box and box["height"] < 80
    await visitor.check("kop-breed")
    await visitor.page.set_viewport_size(PHONE)
    await visitor.goto("/applicaties")
    box = await visitor.page.locator(".site-header").bounding_box()
    assert box and box["height"] <= 0.14 * PHONE["height"], f"{box['height']} px on a phone"
    for name in ("Mijn profiel", "Applicaties", "Afmelden"):
        target = visitor.page.get_by_role("link", name=name).or_(
            visitor.page.get_by_role("button", name=name)
        )
        await target.first.scroll_into_view_if_needed()
        assert await target.first.is_visible(), f"{name} is reachable on a phone"
    await visitor.check("kop-telefoon")


async def test_what_needs_javascript_shows_only_with_it(
    visitor_factory: Any, live_server: LiveServer
) -> None:
    from tests.browser.test_backoffice_journeys import portal, staff_sign_in

    username = f"helpdesk.look.{os.getpid()}"
    portal(live_server.database_url, "staff", "add", username, "--role", "helpdesk", stdin=PASSWORD)
    plain = await visitor_factory("zonder-script", javascript=False)
    await staff_sign_in(plain, username)
    lead = plain.page.locator(".lead").first
    assert "werkt zichzelf bij" not in await lead.inner_text(), "no live updates without it"
    assert "Laad de pagina opnieuw" in await lead.inner_text()
    # A hidden button stays hidden, although buttons are laid out as flex boxes.
    await plain.goto("/aanmelden")
    assert await plain.page.locator("button[data-copy]").count() == 0 or not (
        await plain.page.locator("button[data-copy]").first.is_visible()
    )
    scripted = await visitor_factory("met-script")
    await staff_sign_in(scripted, username)
    assert "werkt zichzelf bij" in await scripted.page.locator(".lead").first.inner_text()
    hidden_button = await scripted.page.evaluate(
        """() => {
            const button = document.createElement("button");
            button.className = "button button-secondary";
            button.hidden = true;
            button.textContent = "Kopiëren";
            document.body.append(button);
            return getComputedStyle(button).display;
        }"""
    )
    assert hidden_button == "none", "a hidden copy button is not shown"


async def test_after_an_htmx_error_the_summary_has_the_focus(visitor_factory: Any) -> None:
    visitor = await visitor_factory("focus")
    await visitor.goto("/registreren")
    page = visitor.page
    await page.get_by_label("E-mail").fill("geen-adres")
    await page.get_by_role("button", name="Registreren").click()
    summary = page.locator(".error-summary")
    await summary.wait_for()
    focused = await page.evaluate("document.activeElement.classList.contains('error-summary')")
    assert focused, "the keyboard is where the errors are"
    await visitor.check("registreren-fout-focus")
