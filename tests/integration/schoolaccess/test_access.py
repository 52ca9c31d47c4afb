"""Stap 4 (manual §3.4): a partner asks school administrators for access; an administrator
grants it per school and per API, only within their rights; partners hear of every change."""

from __future__ import annotations

import re
from typing import Any

import pytest

from app.config import get_settings
from app.helpdesk import service
from app.identity.tables import Client, ScopeGrant
from app.mail.tables import OutboxMail
from app.schoolaccess import service as grants
from app.schoolaccess.tables import AccessRequest
from app.staff.tables import AuditEvent
from tests.conftest import Browser, browser_for
from tests.factories import (
    PASSWORD,
    archive,
    generate_secret,
    make_partner,
    make_school,
    make_staff,
    submit_application,
)
from tests.integration.staff.helpers import as_staff, staff_browser

pytestmark = pytest.mark.anyio
LEERLINGEN = "api_informat_sas_leerlingen.leerlingen"


async def partner_browser(app: Any, partner: dict[str, Any]) -> Browser:
    browser = browser_for(app)
    await browser.submit("/aanmelden", {"email": partner["account"].email, "password": PASSWORD})
    return browser


async def approved(partner: dict[str, Any]) -> tuple[Any, str]:
    """An application through the helpdesk: (application id, client id)."""
    application_id = await submit_application(partner)
    helpdesk = await as_staff(await make_staff())
    client_id = await service.approve(helpdesk, application_id, get_settings())  # type: ignore[arg-type]
    return application_id, client_id


async def invitation_token(address: str) -> str:
    mail = (
        await OutboxMail.select(OutboxMail.text)
        .where((OutboxMail.recipient == address) & (OutboxMail.kind == "access_request"))
        .first()
    )
    assert mail is not None
    found = re.search(r"/backoffice/toegang/([A-Za-z0-9_-]+)", mail["text"])
    assert found
    return found.group(1)


async def test_a_partner_mails_administrators_the_manuals_request(
    app: Any, transaction: None
) -> None:
    partner = await make_partner(listed=False, name="Roosterbouwers")
    application_id, _ = await approved(partner)
    browser = await partner_browser(app, partner)
    detail = await browser.get(f"/applicaties/{application_id}")
    assert "Toegang aanvragen" in detail.text

    bad = await browser.submit(
        f"/applicaties/{application_id}/toegang-aanvragen",
        {"addresses": "beheer@school.be; geen-adres"},
    )
    assert bad.status_code == 422
    assert "Geen geldig e-mailadres: geen-adres" in bad.text
    assert "beheer@school.be; geen-adres" in bad.text, "what was typed stays"
    too_many = "; ".join(f"b{n}@school.be" for n in range(11))
    many = await browser.submit(
        f"/applicaties/{application_id}/toegang-aanvragen", {"addresses": too_many}
    )
    assert "hoogstens 10 adressen" in many.text
    assert await AccessRequest.count() == 0, "nothing sent for a form with errors"

    sent = await browser.submit(
        f"/applicaties/{application_id}/toegang-aanvragen",
        {"addresses": "Beheer@School.be; ict@atheneum.be ;beheer@school.be"},
    )
    assert sent.headers["location"].endswith("?melding=toegang-aangevraagd#toegang")
    mails = await OutboxMail.select().where(OutboxMail.kind == "access_request")
    assert sorted(mail["recipient"] for mail in mails) == ["beheer@school.be", "ict@atheneum.be"]
    mail = mails[0]
    assert (
        mail["subject"] == "Informat Partnerportaal - Datatoegang voor applicatie Roosterkoppeling"
    )
    assert "Beste Informatbeheerder" in mail["text"]
    assert (
        "Roosterbouwers vraagt voor applicatie Roosterkoppeling toegang tot schoolgegevens"
        in (mail["text"])
    )
    assert (
        "Heb je onvoldoende rechten, stuur dit bericht dan naar de Informatbeheerder"
        in (mail["text"])
    )
    token = await invitation_token("beheer@school.be")
    stored = await AccessRequest.select().where(AccessRequest.email == "beheer@school.be").first()
    assert stored is not None and token not in str(stored), "only the token's hash is kept"
    assert (stored["expires_at"] - stored["created_at"]).days == 30
    page = await browser.get(f"/applicaties/{application_id}")
    assert "ict@atheneum.be" in page.text and "Verstuurd" in page.text


async def test_only_an_approved_application_of_ones_own_can_ask(
    app: Any, transaction: None
) -> None:
    partner = await make_partner(listed=False)
    waiting = await submit_application(partner)
    browser = await partner_browser(app, partner)
    refused = await browser.submit(
        f"/applicaties/{waiting}/toegang-aanvragen", {"addresses": "a@school.be"}
    )
    assert refused.headers["location"] == f"/applicaties/{waiting}"
    other_partner = await make_partner(listed=False)
    others, _ = await approved(other_partner)
    stranger = await browser.submit(
        f"/applicaties/{others}/toegang-aanvragen", {"addresses": "a@school.be"}
    )
    assert stranger.status_code == 404
    assert await AccessRequest.count() == 0


async def ask(app: Any, partner: dict[str, Any], application_id: Any, address: str) -> str:
    browser = await partner_browser(app, partner)
    await browser.submit(f"/applicaties/{application_id}/toegang-aanvragen", {"addresses": address})
    return await invitation_token(address)


async def test_an_administrator_grants_two_schools_and_the_client_gets_exactly_those(
    app: Any, transaction: None
) -> None:
    partner = await make_partner(listed=False)
    application_id, client_id = await approved(partner)
    token = await ask(app, partner, application_id, "beheer@school.be")
    admin = await make_staff(
        "school-admin",
        [
            ("111111", ["leerlingen", "personeel"]),
            ("222222", ["leerlingen"]),
            ("333333", ["internen"]),
        ],
    )
    browser = browser_for(app)
    first = await browser.get(f"/backoffice/toegang/{token}")
    assert first.status_code == 303
    assert first.headers["location"].startswith("/backoffice/aanmelden?next=")
    browser = await staff_browser(app, admin)
    page = await browser.get(f"/backoffice/toegang/{token}")
    assert page.status_code == 200
    assert "Haalt uurroosters op." in page.text and partner["name"] in page.text
    assert 'value="111111:leerlingen"' in page.text and 'value="111111:personeel"' in page.text
    assert "333333" not in page.text, "a school whose rights do not match the app is not offered"

    saved = await browser.submit(
        f"/backoffice/toegang/{token}", {"grant": ["111111:leerlingen", "222222:leerlingen"]}
    )
    assert saved.headers["location"] == "/backoffice/toegang?melding=opgeslagen"
    client = await Client.select(Client.id).where(Client.client_id == client_id).first()
    grants_now = await ScopeGrant.select(ScopeGrant.api, ScopeGrant.institution_number).where(
        ScopeGrant.client == client["id"]
    )
    assert sorted((g["institution_number"], g["api"]) for g in grants_now) == [
        ("111111", "leerlingen"),
        ("222222", "leerlingen"),
    ]
    told = await OutboxMail.select(OutboxMail.recipient, OutboxMail.text).where(
        OutboxMail.kind == "access_changed"
    )
    assert len(told) == 2 and "School 111111 (111111): Leerlingen" in told[0]["text"]
    actions = await AuditEvent.select(AuditEvent.action).where(
        AuditEvent.application == application_id
    )
    assert [row["action"] for row in actions].count("granted") == 2
    used = await AccessRequest.select(AccessRequest.used_at).first()
    assert used is not None and used["used_at"] is not None

    secret = await generate_secret(partner["account"].id, application_id, 0)
    token_response = await browser.post(
        "/connect/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert token_response.json()["scope"] == f"{LEERLINGEN}.111111 {LEERLINGEN}.222222"
    other = await browser.post(
        "/connect/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "scope": f"{LEERLINGEN}.333333",
        },
    )
    assert other.json() == {"error": "invalid_scope"}


async def test_no_grant_outside_ones_rights_even_with_a_forged_form(
    app: Any, transaction: None
) -> None:
    partner = await make_partner(listed=False)
    application_id, _ = await approved(partner)
    token = await ask(app, partner, application_id, "beheer@school.be")
    await make_school("999999")
    admin = await make_staff("school-admin", [("111111", ["leerlingen"])])
    other_admin = await make_staff("school-admin", [("222222", ["leerlingen"])])
    browser = await staff_browser(app, admin)
    for forged in (
        ["999999:leerlingen"],  # a school they do not administer
        ["111111:personeel"],  # an API the app asked for but they hold no right for
        ["111111:rekeningen"],  # an API the app did not ask for
        ["111111"],  # not even a school:api pair
    ):
        refused = await browser.submit(f"/backoffice/toegang/{token}", {"grant": forged})
        assert refused.status_code == 403, forged
    # Replaying another administrator's request with one's own session.
    replay = await (await staff_browser(app, other_admin)).submit(
        f"/backoffice/toegang/{token}", {"grant": ["111111:leerlingen"]}
    )
    assert replay.status_code == 403
    assert await ScopeGrant.count() == 0
    with pytest.raises(service.NotAllowed):
        await grants.save(
            await as_staff(admin),
            application_id,
            {("999999", "leerlingen")},
            token,
            app.state.settings,
        )


async def test_the_helpdesk_and_partners_grant_nothing(app: Any, transaction: None) -> None:
    partner = await make_partner(listed=False)
    application_id, _ = await approved(partner)
    token = await ask(app, partner, application_id, "beheer@school.be")
    helpdesk = await make_staff()
    browser = await staff_browser(app, helpdesk)
    assert (await browser.get(f"/backoffice/toegang/{token}")).status_code == 403
    refused = await browser.submit(f"/backoffice/toegang/{token}", {"grant": ["111111:leerlingen"]})
    assert refused.status_code == 403
    with pytest.raises(service.NotAllowed):
        await grants.open_invitation(await as_staff(helpdesk), token)
    partner_side = await partner_browser(app, partner)
    answer = await partner_side.submit(
        f"/backoffice/toegang/{token}", {"grant": ["111111:leerlingen"]}
    )
    assert answer.status_code == 303 and "/backoffice/aanmelden" in answer.headers["location"]
    assert await ScopeGrant.count() == 0


async def test_links_that_cannot_be_used_say_why(app: Any, transaction: None) -> None:
    partner = await make_partner(listed=False, name="Busplanners")
    application_id, _ = await approved(partner)
    token = await ask(app, partner, application_id, "beheer@school.be")
    admin = await make_staff("school-admin", [("111111", ["leerlingen"])])
    browser = await staff_browser(app, admin)

    await AccessRequest.raw(
        "UPDATE access_request SET created_at = now() - interval '31 days',"
        " expires_at = now() - interval '1 day'"
    )
    expired = await browser.get(f"/backoffice/toegang/{token}")
    assert expired.status_code == 410
    assert "is verlopen" in expired.text and "Busplanners" in expired.text
    saved = await browser.submit(f"/backoffice/toegang/{token}", {"grant": ["111111:leerlingen"]})
    assert saved.status_code == 410 and await ScopeGrant.count() == 0

    await AccessRequest.raw("UPDATE access_request SET expires_at = now() + interval '1 day'")
    await archive(application_id)  # type: ignore[arg-type]
    archived = await browser.get(f"/backoffice/toegang/{token}")
    assert archived.status_code == 409 and "is gearchiveerd" in archived.text

    unknown = await browser.get("/backoffice/toegang/geen-echte-link")
    assert unknown.status_code == 404 and "Deze link is niet geldig" in unknown.text

    other = await make_partner(listed=False)
    other_app, _ = await approved(other)
    other_token = await ask(app, other, other_app, "ict@school.be")
    no_rights_admin = await make_staff("school-admin", [("444444", ["internen"])])
    no_rights = await (await staff_browser(app, no_rights_admin)).get(
        f"/backoffice/toegang/{other_token}"
    )
    assert no_rights.status_code == 403
    assert "Stuur de e-mail van de partner door" in no_rights.text


async def test_applications_with_access_can_be_adjusted_without_a_new_link(
    app: Any, transaction: None
) -> None:
    partner = await make_partner(listed=False, name="=HYPERLINK(evil)")
    application_id, client_id = await approved(partner)
    never_invited, _ = await approved(await make_partner(listed=False))
    token = await ask(app, partner, application_id, "beheer@school.be")
    admin = await make_staff(
        "school-admin", [("111111", ["leerlingen"]), ("222222", ["leerlingen"])]
    )
    browser = await staff_browser(app, admin)
    await browser.submit(f"/backoffice/toegang/{token}", {"grant": ["111111:leerlingen"]})

    overview = await browser.get("/backoffice/toegang")
    assert client_id in overview.text and "School 111111 (111111): Leerlingen" in overview.text
    assert f'href="/backoffice/toegang/applicaties/{application_id}"' in overview.text
    assert (
        await browser.get(f"/backoffice/toegang/applicaties/{never_invited}")
    ).status_code == 404
    refused = await browser.submit(
        f"/backoffice/toegang/applicaties/{never_invited}", {"grant": ["111111:leerlingen"]}
    )
    assert refused.status_code == 404

    adjusted = await browser.submit(
        f"/backoffice/toegang/applicaties/{application_id}", {"grant": ["222222:leerlingen"]}
    )
    assert adjusted.status_code == 303
    rows = await ScopeGrant.select(ScopeGrant.institution_number)
    assert [row["institution_number"] for row in rows] == ["222222"]
    removed_mail = await OutboxMail.select(OutboxMail.text).where(
        OutboxMail.kind == "access_changed"
    )
    assert any("Toegang verwijderd:" in mail["text"] for mail in removed_mail)

    export = await browser.get("/backoffice/toegang.csv")
    assert export.headers["content-type"].startswith("text/csv")
    assert "attachment" in export.headers["content-disposition"]
    lines = export.text.removeprefix("\ufeff").splitlines()
    assert lines[0].startswith("instellingsnummer;school;partner;applicatie;client_id")
    assert (
        f"222222;School 222222;'=HYPERLINK(evil);Roosterkoppeling;{client_id};Leerlingen;"
        in (lines[1])
    )


async def test_saving_the_grid_with_htmx_swaps_it_with_what_changed(
    app: Any, transaction: None
) -> None:
    partner = await make_partner(listed=False)
    application_id, _ = await approved(partner)
    token = await ask(app, partner, application_id, "beheer@school.be")
    admin = await make_staff(
        "school-admin", [("111111", ["leerlingen"]), ("222222", ["leerlingen"])]
    )
    browser = await staff_browser(app, admin)
    page = await browser.get(f"/backoffice/toegang/{token}")
    assert 'hx-target="#grant_grid"' in page.text and "data-check-column" in page.text
    htmx = {"HX-Request": "true", "HX-Target": "grant_grid"}
    saved = await browser.submit(
        f"/backoffice/toegang/{token}", {"grant": ["111111:leerlingen"]}, headers=htmx
    )
    assert saved.status_code == 200
    assert saved.text.lstrip().startswith('<section id="grant_grid">'), "only the grid"
    assert "Toegang verleend: Leerlingen — School 111111" in saved.text
    box = re.search(r'<input[^>]*id="grant-111111-leerlingen"[^>]*>', saved.text)
    assert box and "checked" in box.group(0), "the grid shows the saved state"
    again = await browser.submit(
        f"/backoffice/toegang/applicaties/{application_id}",
        {"grant": ["222222:leerlingen"]},
        headers=htmx,
    )
    assert "Toegang verleend: Leerlingen — School 222222" in again.text
    assert "Toegang verwijderd: Leerlingen — School 111111" in again.text
    plain = await browser.submit(
        f"/backoffice/toegang/applicaties/{application_id}", {"grant": ["222222:leerlingen"]}
    )
    assert plain.headers["location"] == "/backoffice/toegang?melding=opgeslagen", "no script: PRG"


async def test_the_export_opens_in_a_spreadsheet_and_can_be_one_schools(
    app: Any, transaction: None
) -> None:
    partner = await make_partner(listed=False)
    application_id, _ = await approved(partner)
    token = await ask(app, partner, application_id, "beheer@school.be")
    admin = await make_staff(
        "school-admin", [("111111", ["leerlingen"]), ("222222", ["leerlingen"])]
    )
    browser = await staff_browser(app, admin)
    await browser.submit(
        f"/backoffice/toegang/{token}", {"grant": ["111111:leerlingen", "222222:leerlingen"]}
    )
    overview = await browser.get("/backoffice/toegang")
    assert 'name="school"' in overview.text and '<option value="222222">' in overview.text
    whole = await browser.get("/backoffice/toegang.csv")
    assert whole.content.startswith(b"\xef\xbb\xbf"), "a byte order mark: Excel reads UTF-8"
    assert len(whole.text.splitlines()) == 3
    one = await browser.get("/backoffice/toegang.csv", params={"school": "222222"})
    rows = one.text.removeprefix("\ufeff").splitlines()
    assert len(rows) == 2 and rows[1].startswith("222222;")
    elsewhere = await browser.get("/backoffice/toegang.csv", params={"school": "999999"})
    assert len(elsewhere.text.splitlines()) == 1, "another school's grants are not one's own"


async def test_the_overview_comes_a_page_at_a_time(
    app: Any, transaction: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(grants, "PER_PAGE", 1)
    admin = await make_staff("school-admin", [("111111", ["leerlingen"])])
    for name in ("Aaa Partner", "Bbb Partner"):
        partner = await make_partner(listed=False, name=name)
        application_id, _ = await approved(partner)
        token = await ask(app, partner, application_id, f"beheer-{name[:3].lower()}@school.be")
        await grants.save(
            await as_staff(admin),
            application_id,  # type: ignore[arg-type]
            {("111111", "leerlingen")},
            token,
            app.state.settings,
        )
    browser = await staff_browser(app, admin)
    first = await browser.get("/backoffice/toegang")
    assert "Aaa Partner" in first.text and "Bbb Partner" not in first.text
    assert "Pagina 1 van 2" in first.text
    second = await browser.get("/backoffice/toegang", params={"pagina": "2"})
    assert "Bbb Partner" in second.text and "Aaa Partner" not in second.text
    export = await browser.get("/backoffice/toegang.csv")
    assert "Aaa Partner" in export.text and "Bbb Partner" in export.text, "the export is whole"


async def test_a_huge_address_list_is_refused_before_any_address_is_checked(
    app: Any, transaction: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.applications import access

    partner = await make_partner(listed=False)
    application_id, _ = await approved(partner)
    browser = await partner_browser(app, partner)
    checked: list[str] = []
    check = access.normalise_email

    def counted(value: str) -> str | None:
        checked.append(value)
        return check(value)

    monkeypatch.setattr(access, "normalise_email", counted)
    # 20,000 addresses once stalled the process for 1.7 s (quadratic de-duplication): now the
    # post is refused from its size before it is read.
    huge = "; ".join(f"beheerder{n}@school{n}.be" for n in range(20_000))
    answer = await browser.submit(
        f"/applicaties/{application_id}/toegang-aanvragen", {"addresses": huge}
    )
    assert answer.status_code == 413
    assert "Te veel verstuurd" in answer.text
    # A long paste that a person might make is read, and refused next to the field.
    long = "; ".join(f"beheerder{n}@school{n}.be" for n in range(500))
    answer = await browser.submit(
        f"/applicaties/{application_id}/toegang-aanvragen", {"addresses": long}
    )
    assert answer.status_code == 422
    assert "hoogstens 10 adressen" in answer.text
    assert "beheerder499@school499.be" in answer.text, "what was typed stays in the form"
    assert checked == [], "refused on its length alone"
    repeated = "; ".join(["beheer@school.be"] * 15)
    fine = await browser.submit(
        f"/applicaties/{application_id}/toegang-aanvragen", {"addresses": repeated}
    )
    assert fine.status_code == 303, "the same address repeated is one address"
    assert len(checked) == 15


async def test_another_partners_application_is_not_found_before_the_form_is_read(
    app: Any, transaction: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.applications import access

    owner = await make_partner(listed=False)
    application_id, _ = await approved(owner)
    stranger = await partner_browser(app, await make_partner(listed=False))
    monkeypatch.setattr(access, "parse_addresses", lambda text: pytest.fail("the form was read"))
    answer = await stranger.submit(
        f"/applicaties/{application_id}/toegang-aanvragen", {"addresses": "a@school.be"}
    )
    assert answer.status_code == 404
