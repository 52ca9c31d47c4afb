"""Stap 3: Registreer je applicatie (manual §3.3) — both ways, API access, client secrets."""

from __future__ import annotations

import re
from typing import Any

import anyio
import pytest

from app.applications import service
from app.applications.forms import ApplicationData
from app.applications.tables import Application
from app.identity.tables import Client, ClientSecret, ScopeGrant
from app.mail.tables import OutboxMail
from tests.conftest import Browser, browser_for
from tests.factories import PASSWORD, make_client, make_partner, token_status

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


async def test_secrets_are_shown_once_overlap_and_can_be_revoked(
    app: Any, transaction: None
) -> None:
    browser, existing, application = await linked_application(app)
    response = await browser.submit(f"/applicaties/{application.id}/secrets", {"overlap": "1"})
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    secret = re.search(r'<code id="new-secret" class="code secret">([^<]+)</code>', response.text)
    assert secret
    new = secret.group(1)
    stored = await ClientSecret.select(ClientSecret.value_hash).where(
        ClientSecret.client == existing["id"]
    )
    assert all(new not in row["value_hash"] for row in stored), "only a hash is kept"
    assert new not in (await browser.get(f"/applicaties/{application.id}")).text

    assert await token_status(browser, existing["client_id"], existing["secret"]) == 200
    assert await token_status(browser, existing["client_id"], new) == 200
    old = await ClientSecret.objects().where(ClientSecret.id == existing["secret_id"]).first()
    assert old is not None and old.expires_at is not None, "the old one now has an end"

    await browser.submit(f"/applicaties/{application.id}/secrets/{existing['secret_id']}/intrekken")
    assert await token_status(browser, existing["client_id"], existing["secret"]) == 400
    assert await token_status(browser, existing["client_id"], new) == 200


async def test_an_archived_application_gets_no_tokens(app: Any, transaction: None) -> None:
    browser, existing, application = await linked_application(app)
    await service.archive(application.id)
    assert await token_status(browser, existing["client_id"], existing["secret"]) == 400


async def test_the_api_documentation_is_public(client: Browser) -> None:
    page = await client.get("/api-documentatie")
    assert page.status_code == 200
    assert "/connect/token" in page.text
    assert "api_informat_sas_leerlingen.leerlingen" in page.text
    assert "invalid_client" in page.text
