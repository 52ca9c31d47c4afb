"""The back-office in a real browser: two helpdesk users on the live approval queue, served by
two app processes on one database (as two instances behind a load balancer), and the partner
who hears of the decisions (manual §3.3.1)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pyotp
import pytest

from tests.browser.conftest import DESKTOP, PHONE, LiveServer
from tests.browser.steps import new_partner_with_profile, request_new_client
from tests.factories import PASSWORD, png_bytes
from tests.serving import PORTAL, free_port, portal_serve

pytestmark = [pytest.mark.anyio, pytest.mark.browser]
LIVE = 2000  # ms: the queue's promise to every open browser


def portal(database_url: str, *arguments: str, stdin: str = "") -> str:
    done = subprocess.run(
        [str(PORTAL), *arguments],
        env={**os.environ, "DATABASE_URL": database_url},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def second_instance(live_server: LiveServer) -> Iterator[str]:
    """Another `portal serve` on the same database."""
    port = free_port()
    env = {
        "DATABASE_URL": live_server.database_url,
        "PORTAL_MAIL_BACKEND": "mailbox",
        "PORTAL_MAIL_WORKER_IN_PROCESS": "false",
        "PORTAL_PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
    }
    with portal_serve(port, env=env) as base:
        yield base


@pytest.fixture(scope="module")
def helpdesk(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Two helpdesk users and a school administrator, made with the portal's own commands."""
    schools = tmp_path_factory.mktemp("schools") / "scholen.csv"
    schools.write_text("instellingsnummer,naam\n123456,Sint-Jozefscollege\n654321,Atheneum\n")
    assert "2 school(s) added" in portal(
        live_server.database_url, "schools", "import", str(schools)
    )
    names = [f"helpdesk.{os.getpid()}.{n}" for n in (1, 2)]
    for name in names:
        portal(live_server.database_url, "staff", "add", name, "--role", "helpdesk", stdin=PASSWORD)
    portal(
        live_server.database_url,
        "staff",
        "add",
        f"beheerder.{os.getpid()}",
        "--role",
        "school-admin",
        "--school",
        "123456:leerlingen",
        stdin=PASSWORD,
    )
    return names


async def staff_sign_in(visitor: Any, username: str) -> None:
    page = visitor.page
    await visitor.goto("/backoffice/wachtrij")
    await page.wait_for_url("**/backoffice/aanmelden?next=*")
    await visitor.check("aanmelden")
    await page.get_by_label("Gebruikersnaam").fill(username)
    await page.get_by_label("Wachtwoord").fill(PASSWORD)
    await page.get_by_role("button", name="Aanmelden").click()
    await page.wait_for_url("**/backoffice/wachtrij")


async def test_the_live_queue_across_two_app_processes(
    visitor_factory: Any,
    live_server: LiveServer,
    second_instance: str,
    helpdesk: list[str],
    tmp_path: Path,
) -> None:
    first = await visitor_factory("wachtrij-1")
    second = await visitor_factory("wachtrij-2", viewport=PHONE)
    second.base = second_instance
    await staff_sign_in(first, helpdesk[0])
    await staff_sign_in(second, helpdesk[1])
    await first.check("wachtrij")

    logo = tmp_path / "logo.png"
    logo.write_bytes(png_bytes(200, 200, "#2b6cb0"))
    partner = await visitor_factory("partner")
    suffix = tmp_path.name[-6:]
    await new_partner_with_profile(partner, f"Live Partner {suffix}", logo)
    approved, rejected = f"Roosterlink {suffix}", f"Schoolbus {suffix}"
    await request_new_client(partner, approved)
    for visitor in (first, second):
        # Submitted on one instance, it appears on both within two seconds.
        await visitor.page.get_by_role("link", name=approved, exact=True).wait_for(timeout=LIVE)
    await first.check("wachtrij-nieuw")
    await second.check("wachtrij-nieuw-gsm")
    # On the phone the queue is a list of cards: nothing to scroll sideways to reach a button.
    assert await second.page.evaluate(
        "(() => { const box = document.querySelector('#queue .table-wrap');"
        " return box.scrollWidth <= box.clientWidth; })()"
    )

    await first.page.get_by_role("button", name=f"Goedkeuren {approved}").click()
    await first.page.wait_for_url("**?melding=goedgekeurd")
    await first.page.get_by_text("Goedgekeurd. De partner kan nu").wait_for()
    await second.page.get_by_role("link", name=approved, exact=True).wait_for(
        state="detached", timeout=LIVE
    )
    await first.check("goedgekeurd")

    await request_new_client(partner, rejected)
    await second.page.get_by_role("link", name=rejected, exact=True).wait_for(timeout=LIVE)
    await second.page.get_by_role("link", name=f"Weigeren {rejected}").click()
    await second.page.get_by_role("button", name="Weigeren").click()
    await second.page.get_by_text(
        "Geef aan waarom de applicatie niet wordt goedgekeurd."
    ).first.wait_for()
    await second.check("weigeren-zonder-reden")
    await second.page.get_by_label("Reden").fill(
        "Beschrijf welke leerlingengegevens je nodig hebt."
    )
    await second.page.get_by_role("button", name="Weigeren").click()
    await second.page.wait_for_url("**?melding=geweigerd")
    await first.page.get_by_role("link", name=rejected, exact=True).wait_for(
        state="detached", timeout=LIVE
    )

    await partner.goto("/applicaties")
    await (
        partner.page.get_by_role("row")
        .filter(has_text=approved)
        .get_by_text("Goedgekeurd")
        .wait_for()
    )
    await partner.page.get_by_role("link", name=rejected, exact=True).click()
    await partner.page.get_by_text("Beschrijf welke leerlingengegevens je nodig hebt.").wait_for()
    await partner.check("geweigerd-met-reden")


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
async def test_staff_and_rights_read_only(
    visitor_factory: Any, helpdesk: list[str], viewport: str
) -> None:
    visitor = await visitor_factory(viewport=PHONE if viewport == "phone" else DESKTOP)
    await staff_sign_in(visitor, helpdesk[0])
    await visitor.page.get_by_role("link", name="Medewerkers", exact=True).click()
    await visitor.page.get_by_text("Sint-Jozefscollege").wait_for()
    await visitor.check(f"medewerkers-{viewport}")
    await visitor.page.get_by_role("link", name="Zoeken").click()
    await visitor.page.get_by_label("Naam, client ID, instellingsnummer of e-mail").fill("Partner")
    await visitor.page.get_by_role("heading", name="Partners").wait_for()
    await visitor.check(f"zoeken-{viewport}")
    await visitor.page.get_by_role("link", name="Logboek").click()
    await visitor.page.get_by_role("heading", name="Logboek").wait_for()
    await visitor.check(f"logboek-{viewport}")
    await visitor.page.get_by_role("link", name=helpdesk[0]).click()
    await visitor.page.get_by_role("img", name="QR-code").wait_for()
    await visitor.check(f"tweestapsverificatie-{viewport}")
    await visitor.page.get_by_role("button", name="Afmelden").click()
    await visitor.page.wait_for_url("**/backoffice/aanmelden?melding=afgemeld")
    await visitor.check("afgemeld")


async def test_the_whole_process_across_three_roles(
    visitor_factory: Any, live_server: LiveServer, helpdesk: list[str], tmp_path: Path
) -> None:
    """Manual §2.1: register, profile, application; approval; secret and access request;
    the administrator grants two schools; the software gets exactly those scopes."""
    admin = f"directie.{os.getpid()}"
    portal(
        live_server.database_url,
        "staff",
        "add",
        admin,
        "--role",
        "school-admin",
        "--school",
        "123456:leerlingen",
        "--school",
        "654321:leerlingen,personeel",
        stdin=PASSWORD,
    )
    logo = tmp_path / "logo.png"
    logo.write_bytes(png_bytes(200, 200, "#7b3fa0"))
    partner = await visitor_factory("proces-partner")
    suffix = tmp_path.name[-6:]
    await new_partner_with_profile(partner, f"Proces Partner {suffix}", logo)
    name = f"Leerlingensync {suffix}"
    await request_new_client(partner, name)

    desk = await visitor_factory("proces-helpdesk")
    await staff_sign_in(desk, helpdesk[0])
    await desk.page.get_by_role("button", name=f"Goedkeuren {name}").click()
    await desk.page.wait_for_url("**?melding=goedgekeurd")

    page = partner.page
    await partner.goto("/applicaties")
    await page.get_by_role("link", name=name).click()
    await page.get_by_text("Goedgekeurd", exact=True).wait_for()
    client_id = (await page.locator("dd code").first.inner_text()).strip()
    await page.get_by_role("button", name="Genereer secret").click()
    secret = (await page.locator("#new-secret").inner_text()).strip()
    await page.get_by_role("link", name="Toegang aanvragen").click()
    await partner.check("toegang-aanvragen")
    # A pasted list far beyond what the form takes is refused before it is read, with a page
    # that says what to do.
    pasted = "\n".join(f"beheerder{n}@school{n}.be" for n in range(5_000))
    field = page.get_by_label("E-mailadres Informatbeheerder(s)")
    await field.evaluate("(element, text) => { element.value = text; }", pasted)  # a paste
    await page.get_by_role("button", name="Versturen").click()
    await page.get_by_role("heading", name="Te veel verstuurd").wait_for()
    await partner.check("te-veel-verstuurd")
    await page.go_back()
    administrator_address = f"directie-{suffix}@school.be"
    await page.get_by_label("E-mailadres Informatbeheerder(s)").fill(administrator_address)
    await page.get_by_role("button", name="Versturen").click()
    await page.wait_for_url("**melding=toegang-aangevraagd*")
    await page.get_by_text(administrator_address).wait_for()
    await partner.check("toegang-aangevraagd")

    school = await visitor_factory("proces-schoolbeheerder")
    link = await school.mail_link(administrator_address, "/backoffice/toegang/")
    await school.page.goto(link)
    await school.page.wait_for_url("**/backoffice/aanmelden?next=*")
    await school.page.get_by_label("Gebruikersnaam").fill(admin)
    await school.page.get_by_label("Wachtwoord").fill(PASSWORD)
    await school.page.get_by_role("button", name="Aanmelden").click()
    await school.page.get_by_role("heading", name=name).wait_for()
    await school.check("toegang-verlenen")
    on_phone = await visitor_factory("proces-schoolbeheerder-telefoon", viewport=PHONE)
    await on_phone.context.add_cookies(await school.context.cookies())
    await on_phone.page.goto(school.page.url)
    await on_phone.page.get_by_role("heading", name=name).wait_for()
    await on_phone.nothing_clipped()  # every school's every API box in view
    await on_phone.check("toegang-verlenen-telefoon")
    # One API for all schools at once; saving swaps the grid with exactly what changed.
    await school.page.get_by_role("button", name="Alle scholen — Leerlingen").click()
    assert await school.page.get_by_label("Leerlingen — Sint-Jozefscollege").is_checked()
    assert await school.page.get_by_label("Leerlingen — Atheneum").is_checked()
    await school.page.get_by_role("button", name="Opslaan").click()
    confirmation = school.page.locator("#grant_grid .notice")
    await confirmation.get_by_text("Toegang verleend:").wait_for()
    assert "Leerlingen — Sint-Jozefscollege" in await confirmation.inner_text()
    await school.check("toegang-bewaard")
    await school.page.get_by_role("link", name="Applicaties met toegang").first.click()
    await school.page.wait_for_url("**/backoffice/toegang")
    await school.page.get_by_text(client_id).wait_for()
    await school.check("applicaties-met-toegang")
    await school.page.get_by_role("link", name="Logboek").click()
    await school.page.get_by_text("Toegang verleend: Leerlingen").first.wait_for()
    await school.check("logboek-schoolbeheerder")

    scopes = "api_informat_sas_leerlingen.leerlingen"
    async with httpx.AsyncClient(base_url=live_server.base) as software:
        credentials = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
        }
        issued = await software.post("/connect/token", data=credentials)
        assert issued.status_code == 200
        assert issued.json()["scope"] == f"{scopes}.123456 {scopes}.654321"
        for other in (f"{scopes}.111111", "api_informat_sas_leerlingen.personeel.654321"):
            refused = await software.post("/connect/token", data={**credentials, "scope": other})
            assert refused.json() == {"error": "invalid_scope"}


async def test_two_step_verification_and_the_pages_that_say_no(
    visitor_factory: Any, live_server: LiveServer, helpdesk: list[str]
) -> None:
    username = f"tweestaps.{os.getpid()}"
    portal(live_server.database_url, "staff", "add", username, "--role", "helpdesk", stdin=PASSWORD)
    visitor = await visitor_factory("tweestaps", viewport=PHONE)
    page = visitor.page
    await staff_sign_in(visitor, username)
    await page.get_by_role("link", name=username).click()
    secret = (await page.locator("code.secret").inner_text()).strip()
    await page.get_by_label("Code").fill(pyotp.TOTP(secret).now())
    await page.get_by_role("button", name="Aanzetten").click()
    await page.get_by_text("Bij elke aanmelding wordt na je wachtwoord een code").wait_for()
    await visitor.check("tweestaps-aan")
    await page.get_by_role("button", name="Afmelden").click()

    await page.get_by_label("Gebruikersnaam").fill(username)
    await page.get_by_label("Wachtwoord").fill(PASSWORD)
    await page.get_by_role("button", name="Aanmelden").click()
    await page.wait_for_url("**/backoffice/aanmelden/code*")
    await page.get_by_label("Code").fill("000000")
    await page.get_by_role("button", name="Aanmelden").click()
    await page.get_by_text("Deze code is niet juist").first.wait_for()
    await visitor.check("code-fout")
    await page.get_by_label("Code").fill(pyotp.TOTP(secret).at(time.time() + 30))
    await page.get_by_role("button", name="Aanmelden").click()
    await page.wait_for_url("**/backoffice/wachtrij")

    partner = f"Zoekpartner {os.getpid()}"
    connection = await asyncpg.connect(live_server.database_url)
    try:
        await connection.execute(
            "INSERT INTO partner (slug, name, description, email, contact_person, street,"
            " house_number, postcode, municipality, country, website, logo, logo_type,"
            " logo_etag) VALUES ($1, $2, 'Een partner.', 'info@zoek.example', 'Contact',"
            " 'Straat', '1', '9000', 'Gent', 'België', 'https://zoek.example', $3,"
            " 'image/png', 'x')",
            f"zoekpartner-{os.getpid()}",
            partner,
            png_bytes(),
        )
    finally:
        await connection.close()
    await page.get_by_role("link", name="Zoeken").click()
    await page.get_by_label("Naam, client ID, instellingsnummer of e-mail").fill("Zoekpartner")
    await page.get_by_role("link", name=partner).click()
    await page.get_by_role("heading", name="Activering").wait_for()
    await visitor.check("partner-in-backoffice")

    admin = await visitor_factory("verkeerde-link")
    await staff_sign_in(admin, f"beheerder.{os.getpid()}")
    await admin.goto("/backoffice/toegang/geen-echte-link")
    await admin.page.get_by_role("heading", name="Deze link kan niet gebruikt worden").wait_for()
    await admin.check("link-ongeldig")
