"""Stap 3: Registreer je applicatie (manual §3.3) — both ways, API access, client secrets."""

from __future__ import annotations

import re
from typing import Any

import anyio
import pytest

from app.applications import service
from app.applications.service import ApplicationData
from app.applications.tables import Application
from app.config import get_settings
from app.helpdesk.service import approve
from app.identity.tables import Client, ClientSecret, ScopeGrant, SecretReveal
from app.mail.tables import OutboxMail
from tests.conftest import Browser, browser_for
from tests.factories import (
    PASSWORD,
    archive,
    make_account,
    make_client,
    make_partner,
    make_staff,
    submit_application,
    token_status,
)
from tests.integration.staff.helpers import as_staff

pytestmark = pytest.mark.anyio


def app_fields(**overrides: Any) -> dict[str, Any]:
    fields = {
        "name": "Roosterkoppeling",
        "description": "Haalt uurroosters op.",
        "contact_person": "Dev Eloper",
        "contact_email": "dev@partner.be",
        "apis": ["leerlingen"],
    }
    fields.update(overrides)
    return fields


async def partner_browser(app: Any) -> tuple[Browser, dict[str, Any]]:
    partner = await make_partner(listed=False)
    browser = browser_for(app)
    await browser.submit("/aanmelden", {"email": partner["account"].email, "password": PASSWORD})
    return browser, partner


async def test_requesting_a_new_client_waits_for_the_helpdesk(app: Any, transaction: None) -> None:
    browser, _partner = await partner_browser(app)
    choice = await browser.submit("/applicaties/toevoegen", {"way": "nieuw"})
    assert choice.headers["location"] == "/applicaties/nieuw"
    response = await browser.submit(
        "/applicaties/nieuw", app_fields(apis=["leerlingen", "personeel"])
    )
    assert response.status_code == 303
    page = await browser.get(response.headers["location"])
    assert "Nieuw" in page.text and "Roosterkoppeling" in page.text
    stored = await Application.objects().where(Application.name == "Roosterkoppeling").first()
    assert stored is not None and stored.status == "nieuw"
    mail = await OutboxMail.objects().where(OutboxMail.recipient == "helpdesk@informat.be").first()
    assert mail is not None and "Roosterkoppeling" in mail.subject


async def test_bad_application_input_is_explained(app: Any, transaction: None) -> None:
    browser, _partner = await partner_browser(app)
    response = await browser.submit(
        "/applicaties/nieuw", app_fields(name="", contact_email="geen", apis=[])
    )
    assert response.status_code == 422
    assert "Geef de naam van de applicatie in." in response.text
    assert "Geef een geldig e-mailadres in" in response.text
    assert "Kies minstens één API." in response.text
    assert 'value="Dev Eloper"' in response.text
    assert await Application.count() == 0


async def test_linking_an_existing_client_keeps_its_scopes(app: Any, transaction: None) -> None:
    browser, _partner = await partner_browser(app)
    existing = await make_client(scopes=[("leerlingen", "111111"), ("rekeningen", "111111")])
    wrong = await browser.submit(
        "/applicaties/koppelen", {"client_id": existing["client_id"], "client_secret": "fout"}
    )
    assert wrong.status_code == 422
    assert "De ingevoerde client/secret is ongeldig." in wrong.text
    step_two = await browser.submit(
        "/applicaties/koppelen",
        {"client_id": existing["client_id"], "client_secret": existing["secret"]},
    )
    assert step_two.status_code == 200
    assert step_two.headers["cache-control"] == "no-store"
    ticked = set(re.findall(r'name="apis" value="(\w+)" checked', step_two.text))
    assert ticked == {"leerlingen", "rekeningen"}, "API access follows the existing scopes"

    done = await browser.submit(
        "/applicaties/koppelen",
        {
            "step": "2",
            "client_id": existing["client_id"],
            "client_secret": existing["secret"],
            **app_fields(apis=["leerlingen"]),
        },
    )
    assert done.headers["location"].endswith("?melding=gekoppeld")
    application = await Application.objects().where(Application.name == "Roosterkoppeling").first()
    assert application is not None and application.status == "goedgekeurd"
    client = await Client.objects().where(Client.id == existing["id"]).first()
    assert client is not None and client.application == application.id
    assert await ScopeGrant.count().where(ScopeGrant.client == existing["id"]) == 2
    assert await token_status(browser, existing["client_id"], existing["secret"]) == 200

    other, _ = await partner_browser(app)
    taken = await other.submit(
        "/applicaties/koppelen",
        {"client_id": existing["client_id"], "client_secret": existing["secret"]},
    )
    assert taken.status_code == 409
    assert "Sorry! Deze client is al gekoppeld aan een andere applicatie." in taken.text


async def test_two_partners_linking_one_client_at_once(committed: None, settings: Any) -> None:
    existing = await make_client()
    partners = [await make_partner(listed=False), await make_partner(listed=False)]
    outcomes: list[str] = []

    async def link(partner: dict[str, Any]) -> None:
        data = ApplicationData("App", "Omschrijving", "Iemand", "a@b.be", ["leerlingen"])
        try:
            await service.link_existing_client(
                partner["account"].id, existing["client_id"], existing["secret"], data, settings
            )
            outcomes.append("linked")
        except service.ClientTaken:
            outcomes.append("taken")

    async with anyio.create_task_group() as group:
        for partner in partners:
            group.start_soon(link, partner)
    assert sorted(outcomes) == ["linked", "taken"]
    assert await Application.count().where(Application.status == "goedgekeurd") == 1


async def test_a_partner_never_reaches_another_partners_application(
    app: Any, transaction: None
) -> None:
    owner, _ = await partner_browser(app)
    await owner.submit("/applicaties/nieuw", app_fields())
    application = await Application.objects().first()
    assert application is not None
    intruder, _ = await partner_browser(app)
    base = f"/applicaties/{application.id}"
    assert (await intruder.get(base)).status_code == 404
    assert (await intruder.get(f"{base}/bewerken")).status_code == 404
    assert (
        await intruder.submit(f"{base}/bewerken", app_fields(name="Gekaapt"))
    ).status_code == 404
    assert (await intruder.submit(f"{base}/secrets", {"overlap": "0"})).status_code == 404
    assert (await intruder.submit(f"{base}/secrets/1/intrekken")).status_code == 404
    assert "Roosterkoppeling" not in (await intruder.get("/applicaties")).text
    unchanged = await Application.objects().first()
    assert unchanged is not None and unchanged.name == "Roosterkoppeling"


async def test_editing_a_rejected_application_sends_it_back(app: Any, transaction: None) -> None:
    browser, _ = await partner_browser(app)
    await browser.submit("/applicaties/nieuw", app_fields())
    application = await Application.objects().first()
    assert application is not None
    await Application.raw(
        "UPDATE application SET status = 'geweigerd',"
        " rejection_reason = 'Omschrijving te vaag' WHERE id = {}",
        application.id,
    )
    page = await browser.get(f"/applicaties/{application.id}")
    assert "Omschrijving te vaag" in page.text
    await browser.submit(
        f"/applicaties/{application.id}/bewerken",
        app_fields(description="Haalt uurroosters op voor de ouderapp."),
    )
    again = await Application.objects().first()
    assert again is not None and again.status == "nieuw"


async def test_the_second_step_of_linking_never_carries_the_secret(
    app: Any, transaction: None
) -> None:
    browser, _partner = await partner_browser(app)
    existing = await make_client(scopes=[("leerlingen", "111111")])
    step_two = await browser.submit(
        "/applicaties/koppelen",
        {"client_id": existing["client_id"], "client_secret": existing["secret"]},
    )
    assert step_two.status_code == 200
    assert existing["secret"] not in step_two.text, "the secret is not sent back"
    assert 'action="/applicaties/koppelen/applicatie"' in step_two.text
    stranger, _ = await partner_browser(app)
    elsewhere = await stranger.submit("/applicaties/koppelen/applicatie", app_fields())
    assert elsewhere.headers["location"] == "/applicaties/koppelen?melding=opnieuw", "per session"
    done = await browser.submit("/applicaties/koppelen/applicatie", app_fields(apis=[]))
    assert done.headers["location"].endswith("?melding=gekoppeld")
    client = await Client.objects().where(Client.id == existing["id"]).first()
    assert client is not None and client.application is not None
    assert await ScopeGrant.count().where(ScopeGrant.client == existing["id"]) == 1
    again = await browser.submit("/applicaties/koppelen/applicatie", app_fields())
    assert again.headers["location"] == "/applicaties/koppelen?melding=opnieuw", "used once"
    assert await Application.count() == 1


async def linked_application(app: Any) -> tuple[Browser, dict[str, Any], Any]:
    browser, _ = await partner_browser(app)
    existing = await make_client(
        scopes=[("leerlingen", "111111"), ("leerlingen", "222222"), ("personeel", "111111")]
    )
    await browser.submit(
        "/applicaties/koppelen",
        {
            "step": "2",
            "client_id": existing["client_id"],
            "client_secret": existing["secret"],
            **app_fields(apis=["leerlingen", "personeel"]),
        },
    )
    application = await Application.objects().first()
    return browser, existing, application


async def test_unticking_an_api_asks_first_then_removes_its_scopes(
    app: Any, transaction: None
) -> None:
    browser, existing, application = await linked_application(app)
    url = f"/applicaties/{application.id}/bewerken"
    warning = await browser.submit(url, app_fields(apis=["personeel"]))
    assert warning.status_code == 409
    assert "2 scholen verliezen toegang" in warning.text
    assert await ScopeGrant.count().where(ScopeGrant.client == existing["id"]) == 3
    done = await browser.submit(url, app_fields(apis=["personeel"], confirm_removal="yes"))
    assert done.status_code == 303
    remaining = await ScopeGrant.select(ScopeGrant.api).where(ScopeGrant.client == existing["id"])
    assert [row["api"] for row in remaining] == ["personeel"]
    mail = await OutboxMail.objects().where(OutboxMail.recipient == "dev@partner.be").first()
    assert mail is not None and "leerlingen" in mail.text


async def test_unticking_an_api_shows_its_cost_at_once(app: Any, transaction: None) -> None:
    browser, existing, application = await linked_application(app)
    url = f"/applicaties/{application.id}/bewerken"
    form = await browser.get(url)
    assert 'hx-target="#api_losses"' in form.text and '<div id="api_losses">' in form.text
    fragment = await browser.get(
        url,
        params={"verlies": "1", "apis": ["personeel"]},
        headers={"HX-Request": "true", "HX-Target": "api_losses"},
    )
    assert fragment.text.lstrip().startswith('<div id="api_losses">'), "only the block"
    assert "Leerlingen: 2 scholen verliezen toegang" in fragment.text
    assert "Personeel" not in fragment.text.split("<ul>")[1], "what stays ticked costs nothing"
    kept = await browser.get(
        url,
        params={"verlies": "1", "apis": ["leerlingen", "personeel"]},
        headers={"HX-Request": "true", "HX-Target": "api_losses"},
    )
    assert "verliezen toegang" not in kept.text and "verliest toegang" not in kept.text
    assert await ScopeGrant.count().where(ScopeGrant.client == existing["id"]) == 3, "unsaved"


NEW_SECRET = re.compile(r'<code id="new-secret" class="code secret">([^<]+)</code>')


async def test_a_new_secret_is_shown_once_after_a_redirect(app: Any, transaction: None) -> None:
    browser, existing, application = await linked_application(app)
    base = f"/applicaties/{application.id}"
    made = await browser.submit(f"{base}/secrets", {"label": "productie"})
    assert made.status_code == 303 and made.headers["location"].startswith(base)
    shown = await browser.get(made.headers["location"])
    assert shown.headers["cache-control"] == "no-store"
    found = NEW_SECRET.search(shown.text)
    assert found
    new = found.group(1)
    assert f"…{new[-4:]}" in shown.text and "productie" in shown.text, "recognisable in the list"
    stored = await ClientSecret.select(ClientSecret.value_hash, ClientSecret.expires_at).where(
        ClientSecret.client == existing["id"]
    )
    assert all(new not in str(row) for row in stored), "only a hash is kept"
    assert await SecretReveal.count() == 0, "the view took it"

    # Reloading, Back or a bookmark: no second secret, and the first is not shown again.
    again = await browser.get(made.headers["location"])
    assert new not in again.text and NEW_SECRET.search(again.text) is None
    back = await browser.get(f"{base}/secrets")
    assert back.status_code == 303 and back.headers["location"] == f"{base}#secrets"
    assert await ClientSecret.count().where(ClientSecret.client == existing["id"]) == 2

    # The defaults keep the linked client's secret working, and the new one works too.
    assert await token_status(browser, existing["client_id"], existing["secret"]) == 200
    assert await token_status(browser, existing["client_id"], new) == 200
    old = await ClientSecret.objects().where(ClientSecret.id == existing["secret_id"]).first()
    assert old is not None and old.expires_at is None, "valid until revoked"
    newest = await ClientSecret.objects().where(ClientSecret.hint == new[-4:]).first()
    assert newest is not None and newest.expires_at is not None, "a generated secret has a lifetime"


async def test_stopping_a_secret_in_use_asks_first(app: Any, transaction: None) -> None:
    browser, existing, application = await linked_application(app)
    base = f"/applicaties/{application.id}"
    assert await token_status(browser, existing["client_id"], existing["secret"]) == 200
    await ClientSecret.update({ClientSecret.last_used_at: ClientSecret.created_at}).where(
        ClientSecret.id == existing["secret_id"]
    )
    asked = await browser.submit(f"{base}/secrets/{existing['secret_id']}/intrekken")
    assert asked.status_code == 409
    assert "Deze secret is in gebruik" in asked.text and "laatst gebruikt" in asked.text
    assert await token_status(browser, existing["client_id"], existing["secret"]) == 200

    shortening = await browser.submit(f"{base}/secrets", {"overlap": "1"})
    assert shortening.status_code == 409, "a shorter life for a secret in use is asked too"
    assert await ClientSecret.count().where(ClientSecret.client == existing["id"]) == 1
    confirmed = await browser.submit(f"{base}/secrets", {"overlap": "1", "confirm": "yes"})
    assert confirmed.status_code == 303
    old = await ClientSecret.objects().where(ClientSecret.id == existing["secret_id"]).first()
    assert old is not None and old.expires_at is not None, "the old one now has an end"

    revoked = await browser.submit(
        f"{base}/secrets/{existing['secret_id']}/intrekken", {"confirm": "yes"}
    )
    assert revoked.status_code == 303
    assert await token_status(browser, existing["client_id"], existing["secret"]) == 400
    page = await browser.get(f"{base}")
    assert "Ingetrokken" in page.text and "Vervalt op" in page.text


async def test_a_secret_name_that_is_too_long_is_explained(app: Any, transaction: None) -> None:
    browser, existing, application = await linked_application(app)
    answer = await browser.submit(f"/applicaties/{application.id}/secrets", {"label": "n" * 61})
    assert answer.status_code == 422
    assert "Gebruik max. 60 karakters." in answer.text
    assert 'value="' + "n" * 61 + '"' in answer.text, "what was typed stays"
    assert await ClientSecret.count().where(ClientSecret.client == existing["id"]) == 1


async def test_an_archived_application_gets_no_tokens(app: Any, transaction: None) -> None:
    browser, existing, application = await linked_application(app)
    await archive(application.id)
    assert await token_status(browser, existing["client_id"], existing["secret"]) == 400


async def test_the_api_documentation_is_public(client: Browser) -> None:
    page = await client.get("/api-documentatie")
    assert page.status_code == 200
    assert "/connect/token" in page.text
    assert "api_informat_sas_leerlingen.leerlingen" in page.text
    assert "invalid_client" in page.text


def current_step(html: str) -> str:
    found = re.search(r'<li class="current" aria-current="step">.*?<span>(.*?)</span>', html, re.S)
    return found.group(1) if found else ""


async def test_the_four_steps_lead_from_one_to_the_next(app: Any, transaction: None) -> None:
    account = await make_account()
    browser = browser_for(app)
    await browser.submit("/aanmelden", {"email": account.email, "password": PASSWORD})
    choice = await browser.get("/profiel/kiezen")
    assert current_step(choice.text) == "Stap 2: Koppel een partnerprofiel"
    assert "Stap 1: Registreer een partneraccount" in choice.text and "(gedaan)" in choice.text

    browser, partner = await partner_browser(app)
    listing = await browser.get("/applicaties")
    assert current_step(listing.text) == "Stap 3: Registreer je applicatie"
    assert 'href="/applicaties/toevoegen">Volgende stap: Stap 3' in listing.text
    application_id = await submit_application(partner)
    waiting = await browser.get("/profiel")
    assert current_step(waiting.text) == "Stap 4: Vraag toegang tot schoolgegevens"
    assert "zodra Informat je applicatie heeft goedgekeurd" in waiting.text
    staff = await as_staff(await make_staff())
    await approve(staff, application_id, get_settings())  # type: ignore[arg-type]
    ready = await browser.get(f"/applicaties/{application_id}")
    assert f'href="/applicaties/{application_id}/toegang-aanvragen">Volgende stap' in ready.text
    await browser.submit(
        f"/applicaties/{application_id}/toegang-aanvragen", {"addresses": "beheer@school.be"}
    )
    done = await browser.get("/applicaties")
    assert 'aria-current="step"' not in done.text and "Aan de slag" not in done.text
