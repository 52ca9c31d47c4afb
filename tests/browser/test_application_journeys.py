"""Stap 3 in a real browser: request a client, link an existing one, generate a secret."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.identity.service import secret_hash
from tests.browser.conftest import DESKTOP, PHONE, LiveServer
from tests.browser.steps import fill_application, new_partner_with_profile
from tests.factories import png_bytes

pytestmark = [pytest.mark.anyio, pytest.mark.browser]


async def existing_client(database_url: str, client_id: str, secret: str) -> None:
    """A client brought along from the old identity server, with two schools' scopes."""
    connection = await asyncpg.connect(database_url)
    try:
        client_pk = await connection.fetchval(
            "INSERT INTO client (client_id) VALUES ($1) RETURNING id", client_id
        )
        await connection.execute(
            "INSERT INTO client_secret (client, value_hash) VALUES ($1, $2)",
            client_pk,
            secret_hash(secret),
        )
        await connection.executemany(
            "INSERT INTO scope_grant (client, api, institution_number) VALUES ($1, $2, $3)",
            [(client_pk, "leerlingen", "111111"), (client_pk, "leerlingen", "222222")],
        )
    finally:
        await connection.close()


async def test_request_link_and_generate_a_secret(
    visitor_factory: Any, live_server: LiveServer, tmp_path: Path
) -> None:
    logo = tmp_path / "logo.png"
    logo.write_bytes(png_bytes(200, 200, "#0e8a7b"))
    visitor = await visitor_factory("applicaties")
    page = visitor.page
    await new_partner_with_profile(visitor, f"Klaslijst {tmp_path.name[-6:]}", logo)

    await page.get_by_role("link", name="Applicaties").first.click()
    await visitor.check("applicaties-leeg")
    await page.get_by_role("link", name="Applicatie toevoegen").click()
    await visitor.check("toevoegen")
    await page.get_by_label("Ik vraag een nieuwe client ID aan").check()
    await page.get_by_role("button", name="Doorgaan").click()
    await fill_application(page, "Klaslijstsync")
    await page.get_by_label("Personeel").check()
    await visitor.check("nieuwe-applicatie")
    await page.get_by_role("button", name="Opslaan").click()
    await page.wait_for_url("**?melding=aangevraagd")
    await page.get_by_text("Nieuw", exact=True).wait_for()
    await visitor.check("aangevraagd")

    client_id = f"informat_customer_{tmp_path.name[-6:]}"
    await existing_client(live_server.database_url, client_id, "bestaand-geheim-0123456789")
    await visitor.goto("/applicaties/toevoegen")
    await page.get_by_label("Ik koppel mijn client ID & secret").check()
    await page.get_by_role("button", name="Doorgaan").click()
    await page.get_by_label("Client ID").fill(client_id)
    await page.get_by_label("Client Secret").fill("fout")
    await page.get_by_role("button", name="Doorgaan").click()
    await page.get_by_text("De ingevoerde client/secret is ongeldig.").first.wait_for()
    await visitor.check("koppelen-fout")
    await page.get_by_label("Client Secret").fill("bestaand-geheim-0123456789")
    await page.get_by_role("button", name="Doorgaan").click()
    await page.get_by_text(f"De client {client_id} is geldig.").wait_for()
    assert await page.get_by_label("Leerlingen").is_checked()
    await fill_application(page, "Bestaande koppeling")
    await page.get_by_role("button", name="Opslaan").click()
    await page.wait_for_url("**?melding=gekoppeld")
    await page.get_by_text("Goedgekeurd", exact=True).wait_for()
    assert "2 scholen" in await page.locator(".api-list").inner_text()
    application_url = page.url.split("?")[0]
    # Unticking an API says at once, beside it, what saving would cost; nothing is saved.
    await visitor.goto(application_url.removeprefix(visitor.base) + "/bewerken")
    await page.get_by_label("Leerlingen").uncheck()
    losses = page.locator("#api_losses")
    await losses.get_by_text("Leerlingen: 2 scholen verliezen toegang").wait_for()
    await visitor.check("api-uitvinken")
    await page.get_by_label("Leerlingen").check()
    await page.wait_for_function("!document.querySelector('#api_losses').textContent.trim()")
    await visitor.goto(application_url.removeprefix(visitor.base))
    assert "2 scholen" in await page.locator(".api-list").inner_text(), "nothing was saved"

    # The linked client's secret is in live use; the defaults keep it valid.
    async with httpx.AsyncClient(base_url=live_server.base) as software:

        async def token(secret: str) -> httpx.Response:
            return await software.post(
                "/connect/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": client_id,
                    "client_secret": secret,
                },
            )

        assert (await token("bestaand-geheim-0123456789")).status_code == 200
        await page.get_by_label("Naam").fill("productieserver")
        await page.get_by_role("button", name="Genereer secret").click()
        secret = (await page.locator("#new-secret").inner_text()).strip()
        await visitor.check("secret")
        rows = page.locator("#secrets tbody tr")
        assert await rows.count() == 2
        # F5 and Back never make another secret, and never show this one again.
        await page.reload()
        assert await page.locator("#new-secret").count() == 0
        assert await rows.count() == 2
        await page.go_back()
        await page.go_forward()
        assert await page.locator("#new-secret").count() == 0
        assert secret not in await page.content()
        assert await rows.count() == 2
        await visitor.check("secrets-lijst")
        for value in (secret, "bestaand-geheim-0123456789"):
            response = await token(value)
            assert response.status_code == 200
            assert response.json()["scope"] == (
                "api_informat_sas_leerlingen.leerlingen.111111"
                " api_informat_sas_leerlingen.leerlingen.222222"
            )
        # Revoking the secret used today asks first, and names its last use (written within
        # a few seconds of the token, beside the requests rather than in their way).
        imported = rows.filter(has_text="overgenomen secret")
        for _ in range(40):
            if "nooit" not in await imported.inner_text():
                break
            await asyncio.sleep(0.25)
            await page.reload()
        await page.get_by_role("button", name="Intrekken overgenomen secret").click()
        await page.get_by_role("heading", name="Deze secret is in gebruik").wait_for()
        assert "laatst gebruikt" in await page.locator("main").inner_text()
        await visitor.check("intrekken-bevestigen")
        assert (await token("bestaand-geheim-0123456789")).status_code == 200
        await page.get_by_role("button", name="Toch intrekken").click()
        await page.wait_for_url("**?melding=ingetrokken*")
        assert (await token("bestaand-geheim-0123456789")).status_code == 400
        assert (await token(secret)).status_code == 200
        # Tokenverkeer says why the old secret was refused, and counts what was issued.
        traffic = page.locator("#tokenverkeer")
        for _ in range(20):
            await page.reload()
            if "Ingetrokken secret" in await traffic.inner_text():
                break
            await asyncio.sleep(0.25)
        assert "Ingetrokken secret overgenomen secret" in await traffic.inner_text()
        await traffic.scroll_into_view_if_needed()
        await visitor.check("tokenverkeer")
    phone = await visitor_factory("applicaties-telefoon", viewport=PHONE)
    await phone.context.add_cookies(await visitor.context.cookies())
    await phone.page.goto(page.url.split("?")[0])
    await phone.page.locator("#tokenverkeer").wait_for()
    await phone.nothing_clipped()  # the secrets list and its Intrekken, the access requests
    await phone.check("applicatie-telefoon")


WIDE = {"width": 1440, "height": 900}
FULL_HD = {"width": 1920, "height": 1080}


@pytest.mark.parametrize("viewport", ["desktop", "wide", "full-hd", "phone"])
async def test_the_api_documentation_reads_well(visitor_factory: Any, viewport: str) -> None:
    sizes = {"desktop": DESKTOP, "wide": WIDE, "full-hd": FULL_HD, "phone": PHONE}
    visitor = await visitor_factory(viewport=sizes[viewport])
    await visitor.goto("/api-documentatie")
    await visitor.page.get_by_role("heading", name="API documentatie").wait_for()
    # Every answer in "Foutmeldingen" and "Problemen oplossen" is set in lines of words, not
    # a letter per line beside a long term.
    widths = await visitor.page.locator(".error-list dd").evaluate_all(
        "items => items.map(item => item.getBoundingClientRect().width)"
    )
    assert widths and min(widths) > 250, f"descriptions squeezed to {min(widths)} px"
    height = await visitor.page.evaluate("document.documentElement.scrollHeight")
    assert height < (4500 if viewport == "phone" else 3000), f"the page is {height} px tall"
    await visitor.check(f"api-documentatie-{viewport}")
