"""The public partner directory (manual §3): who is listed, search, filter, public fields."""

from __future__ import annotations

import pytest

from app.partners.tables import Partner
from tests.conftest import Browser
from tests.factories import approve_application, make_partner, valid_enterprise_number

pytestmark = pytest.mark.anyio


async def test_only_active_public_partners_with_an_approved_app_are_listed(
    client: Browser,
) -> None:
    listed = await make_partner(name="Zichtbaar")
    private = await make_partner(name="Prive", public=False)
    inactive = await make_partner(name="Inactief", active=False)
    unapproved = await make_partner(name="Wachtend", listed=False)
    await approve_application(unapproved["id"], status="nieuw")
    rejected = await make_partner(name="Geweigerd", listed=False)
    await approve_application(rejected["id"], status="geweigerd")
    hidden = [private, inactive, unapproved, rejected]

    home = await client.get("/")
    assert f'href="/partners/{listed["slug"]}"' in home.text
    assert "1 partner" in home.text
    for partner in hidden:
        assert str(partner["slug"]) not in home.text
        assert (await client.get(f"/partners/{partner['slug']}")).status_code == 404
        assert (await client.get(f"/partners/{partner['slug']}/logo")).status_code == 404
        search = await client.get("/", params={"q": str(partner["name"])})
        assert str(partner["slug"]) not in search.text
    assert (await client.get(f"/partners/{listed['slug']}")).status_code == 200


async def test_the_partner_page_shows_only_the_public_fields(client: Browser) -> None:
    partner = await make_partner(name="Openbaar", extra_info="Bel de helpdesk.")
    number = valid_enterprise_number()
    await Partner.update(
        {
            Partner.enterprise_number: number,
            Partner.contact_person: "Geheime Persoon",
            Partner.street: "Verborgenstraat",
        }
    ).where(Partner.id == partner["id"])
    page = await client.get(f"/partners/{partner['slug']}")
    text = page.text
    assert "Openbaar" in text and "Bel de helpdesk." in text
    assert "https://www.voorbeeld.be" in text and "Schooladministratie" in text
    for secret in (number, "Geheime Persoon", "Verborgenstraat", partner["account"].email):
        assert secret not in text


async def test_user_text_is_inert_everywhere(client: Browser) -> None:
    hostile = (
        '<script>alert(1)</script> <img src=x onerror="alert(2)"> '
        '<a href="javascript:alert(3)">klik</a> <div hx-get="/afmelden">x</div>'
    )
    partner = await make_partner(name="<b>Vet</b>", description=hostile, extra_info=hostile)
    for path in ["/", f"/partners/{partner['slug']}"]:
        text = (await client.get(path)).text
        assert "<script>alert(1)</script>" not in text
        assert "<img src=x" not in text and 'href="javascript:' not in text
        assert '<div hx-get="/afmelden">' not in text and "<b>Vet</b>" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


async def test_search_by_name_and_description_and_filter_by_category(client: Browser) -> None:
    await make_partner(name="Rekenwonder", description="Boekhouding voor scholen.", categories=[2])
    await make_partner(name="Praatpaal", description="Berichten naar ouders.", categories=[3])
    await make_partner(name="Percentage 100%", description="Alles_in_een.", categories=[3])

    def names(html: str) -> set[str]:
        return {name for name in ("Rekenwonder", "Praatpaal", "Percentage 100%") if name in html}

    assert names((await client.get("/", params={"q": "reken"})).text) == {"Rekenwonder"}
    assert names((await client.get("/", params={"q": "OUDERS"})).text) == {"Praatpaal"}
    assert names((await client.get("/", params={"categorie": "communiceren"})).text) == {
        "Praatpaal",
        "Percentage 100%",
    }
    assert names((await client.get("/", params={"q": "100%"})).text) == {"Percentage 100%"}
    assert names((await client.get("/", params={"q": "_"})).text) == {"Percentage 100%"}
    none = await client.get("/", params={"q": "bestaat niet"})
    assert "Geen partners gevonden voor je zoekopdracht." in none.text


async def test_search_as_you_type_returns_the_directory_fragment(client: Browser) -> None:
    await make_partner(name="Snelzoeker")
    response = await client.get(
        "/", params={"q": "snel"}, headers={"HX-Request": "true", "HX-Target": "directory"}
    )
    assert response.text.lstrip().startswith('<div id="directory"')
    assert "Snelzoeker" in response.text and "<html" not in response.text
    restore = await client.get(
        "/",
        params={"q": "snel"},
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )
    assert "<html" in restore.text, "the back button gets a whole page"


async def test_the_directory_pages(client: Browser) -> None:
    for number in range(14):
        await make_partner(name=f"Paginapartner {number:02d}")
    first = await client.get("/")
    assert "Pagina 1 van 2" in first.text and 'href="/?pagina=2#partners"' in first.text
    second = await client.get("/", params={"pagina": "2"})
    assert "Paginapartner 13" in second.text and "Paginapartner 00" not in second.text
    assert (await client.get("/", params={"pagina": "abc"})).status_code == 200


async def test_logos_are_served_with_their_type_and_an_etag(client: Browser) -> None:
    partner = await make_partner()
    response = await client.get(f"/partners/{partner['slug']}/logo")
    assert response.headers["content-type"] == "image/png"
    assert "max-age" in response.headers["cache-control"]
    etag = response.headers["etag"]
    again = await client.get(f"/partners/{partner['slug']}/logo", headers={"If-None-Match": etag})
    assert again.status_code == 304
