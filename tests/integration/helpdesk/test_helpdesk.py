"""The helpdesk's other work: archiving, deactivating partners, search, and the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from app.applications.tables import Application
from app.config import get_settings
from app.helpdesk import service
from app.identity.tables import Client, ScopeGrant
from app.partners.tables import Partner
from tests.conftest import browser_for
from tests.factories import (
    PASSWORD,
    generate_secret,
    make_partner,
    make_staff,
    submit_application,
    token_status,
)
from tests.integration.staff.helpers import as_staff, staff_browser

pytestmark = pytest.mark.anyio


async def serving_client(partner: dict[str, Any]) -> tuple[Any, str, str]:
    """An approved application whose client has a secret and one school's scope."""
    application_id = await submit_application(partner)
    helpdesk = await as_staff(await make_staff())
    client_id = await service.approve(helpdesk, application_id, get_settings())  # type: ignore[arg-type]
    client = await Client.select(Client.id).where(Client.client_id == client_id).first()
    assert client is not None
    await ScopeGrant.insert(
        ScopeGrant(client=client["id"], api="leerlingen", institution_number="111111")
    )
    secret = await generate_secret(partner["account"].id, application_id, 0)  # type: ignore[arg-type]
    return application_id, client_id, secret


async def test_archiving_disables_the_client(app: Any, transaction: None) -> None:
    partner = await make_partner(listed=False)
    application_id, client_id, secret = await serving_client(partner)
    browser = await staff_browser(app, await make_staff())
    assert await token_status(browser, client_id, secret) == 200
    review = await browser.get(f"/backoffice/applicaties/{application_id}")
    assert "Applicatie archiveren" in review.text
    done = await browser.submit(f"/backoffice/applicaties/{application_id}/archiveren")
    assert done.status_code == 303
    client = await Client.select(Client.enabled).where(Client.client_id == client_id).first()
    assert client is not None and client["enabled"] is False
    assert await token_status(browser, client_id, secret) == 400
    page = await browser.get(f"/backoffice/applicaties/{application_id}")
    assert "Gearchiveerd" in page.text and "Applicatie archiveren" not in page.text
    admin = await make_staff("school-admin", [("111111", ["leerlingen"])])
    with pytest.raises(service.NotAllowed):
        await service.archive_application(await as_staff(admin), application_id)  # type: ignore[arg-type]


async def test_a_deactivated_partner_leaves_the_directory_and_gets_no_tokens(
    app: Any, transaction: None
) -> None:
    partner = await make_partner(listed=True, name="Uitschakelbaar")
    _, client_id, secret = await serving_client(partner)
    browser = await staff_browser(app, await make_staff())
    assert "Uitschakelbaar" in (await browser_for(app).get("/")).text
    page = await browser.get(f"/backoffice/partners/{partner['id']}")
    assert "Partner deactiveren" in page.text and client_id in page.text
    await browser.submit(f"/backoffice/partners/{partner['id']}/deactiveren")
    stored = (
        await Partner.select(Partner.active, Partner.listed)
        .where(Partner.id == partner["id"])
        .first()
    )
    assert stored == {"active": False, "listed": False}
    assert "Uitschakelbaar" not in (await browser_for(app).get("/")).text
    assert await token_status(browser, client_id, secret) == 400
    introspect = await browser.get(f"/backoffice/partners/{partner['id']}")
    assert "Partner opnieuw activeren" in introspect.text
    await browser.submit(f"/backoffice/partners/{partner['id']}/heractiveren")
    assert await token_status(browser, client_id, secret) == 200
    assert "Uitschakelbaar" in (await browser_for(app).get("/")).text


async def test_search_finds_partners_applications_clients_and_schools(
    app: Any, transaction: None
) -> None:
    partner = await make_partner(listed=False, name="Zoekbare Partner")
    application_id, client_id, _ = await serving_client(partner)
    waiting = await submit_application(partner, "Nog te beoordelen")
    browser = await staff_browser(app, await make_staff())
    by_name = await browser.get("/backoffice/zoeken", params={"q": "zoekbare"})
    assert "Zoekbare Partner" in by_name.text and "Roosterkoppeling" in by_name.text
    by_client = await browser.get("/backoffice/zoeken", params={"q": client_id})
    assert f"/backoffice/applicaties/{application_id}" in by_client.text
    by_school = await browser.get("/backoffice/zoeken", params={"q": "111111"})
    assert client_id in by_school.text
    by_status = await browser.get("/backoffice/zoeken", params={"status": "nieuw"})
    assert "Nog te beoordelen" in by_status.text and "Roosterkoppeling" not in by_status.text
    fragment = await browser.get(
        "/backoffice/zoeken",
        params={"q": "%"},
        headers={"HX-Request": "true", "HX-Target": "results"},
    )
    assert fragment.text.lstrip().startswith('<section id="results"')
    assert "Zoekbare Partner" not in fragment.text, "% is a character, not a wildcard"
    assert waiting
    admin = await make_staff("school-admin", [("111111", ["leerlingen"])])
    assert (await (await staff_browser(app, admin)).get("/backoffice/zoeken")).status_code == 403


async def test_each_role_sees_its_part_of_the_audit_log(app: Any, transaction: None) -> None:
    partner = await make_partner(listed=False, name="Logboekpartner")
    application_id, _, _ = await serving_client(partner)
    helpdesk = await make_staff()
    await service.reject(
        await as_staff(helpdesk),
        await submit_application(partner, "Afgewezen app"),  # type: ignore[arg-type]
        "Te vaag",
        get_settings(),
    )
    await service.audit(
        "beheerder.a", "granted", partner["id"], application_id, "111111", api="leerlingen"
    )  # type: ignore[arg-type]
    await service.audit(
        "beheerder.b", "granted", partner["id"], application_id, "222222", api="leerlingen"
    )  # type: ignore[arg-type]

    desk = await (await staff_browser(app, helpdesk)).get("/backoffice/logboek")
    assert "Geweigerd" in desk.text and "Te vaag" in desk.text and "222222" in desk.text
    admin = await make_staff("school-admin", [("111111", ["leerlingen"])])
    own = await (await staff_browser(app, admin)).get("/backoffice/logboek")
    assert "111111" in own.text and "222222" not in own.text and "Te vaag" not in own.text

    partner_browser = browser_for(app)
    await partner_browser.submit(
        "/aanmelden", {"email": partner["account"].email, "password": PASSWORD}
    )
    history = await partner_browser.get(f"/applicaties/{application_id}")
    assert "Historiek van de datatoegang" in history.text and "222222" in history.text


async def test_times_are_shown_in_belgian_time(app: Any, transaction: None) -> None:
    partner = await make_partner(listed=False)
    summer = await submit_application(partner, name="Zomer")
    winter = await submit_application(partner, name="Winter")
    for application_id, moment in (
        (summer, dt.datetime(2026, 7, 1, 10, tzinfo=dt.UTC)),
        (winter, dt.datetime(2026, 1, 15, 10, tzinfo=dt.UTC)),
    ):
        await Application.raw(
            "UPDATE application SET submitted_at = {} WHERE id = {}",
            moment,
            application_id,
        )
    browser = await staff_browser(app, await make_staff())
    # Stored in UTC; shown as the helpdesk's clock said: summer time +2, winter time +1.
    assert "01/07/2026 12:00" in (await browser.get(f"/backoffice/applicaties/{summer}")).text
    assert "15/01/2026 11:00" in (await browser.get(f"/backoffice/applicaties/{winter}")).text
