"""Stap 2: Koppel een partnerprofiel (manual §3.2) — creating, validating, editing, history."""

from __future__ import annotations

import io
import re
import struct
import zlib
from typing import Any

import anyio
import pytest
from PIL import Image

from app.accounts.tables import Account
from app.mail.tables import OutboxMail
from app.partners import service
from app.partners.forms import normalise_enterprise_number
from app.partners.tables import Partner, PartnerChange
from tests.conftest import Browser
from tests.factories import (
    PASSWORD,
    make_account,
    make_partner,
    png_bytes,
    profile_fields,
    valid_enterprise_number,
)

pytestmark = pytest.mark.anyio


async def sign_in_as(client: Browser, account: Account) -> None:
    response = await client.submit("/aanmelden", {"email": account.email, "password": PASSWORD})
    assert response.status_code == 303


async def submit_profile(
    client: Browser,
    url: str = "/profiel/nieuw",
    logo: tuple[str, bytes, str] | None = ("logo.png", png_bytes(), "image/png"),
    **overrides: Any,
) -> Any:
    fields = profile_fields(**overrides)
    files = {"logo": logo} if logo else {"logo": ("", b"", "application/octet-stream")}
    return await client.submit(url, fields, files=files)  # type: ignore[arg-type]


def field_error(html: str, name: str) -> str:
    found = re.search(rf'<p class="field-error" id="{name}-error">(.*?)</p>', html, re.S)
    if not found:
        return ""
    visible = re.sub(r'<span class="visually-hidden">.*?</span>', "", found.group(1))
    return re.sub(r"<[^>]+>", "", visible).strip()


async def test_an_account_without_profile_is_sent_to_the_manuals_choice(client: Browser) -> None:
    await sign_in_as(client, await make_account())
    for path in ["/profiel", "/profiel/bewerken"]:
        response = await client.get(path)
        assert response.headers["location"] == "/profiel/kiezen"
    choice = await client.get("/profiel/kiezen")
    assert "Nieuw profiel toevoegen" in choice.text
    assert "Met bestaand profiel koppelen" in choice.text
    assert "Een account kan slechts aan max. één partnerprofiel gekoppeld zijn." in choice.text


async def test_creating_a_profile_links_the_account_and_cleans_the_logo(client: Browser) -> None:
    account = await make_account()
    await sign_in_as(client, account)
    photo = io.BytesIO()
    exif = Image.Exif()
    exif[0x010E] = "secret location"
    Image.new("RGB", (1200, 800), "#0e8a7b").save(photo, format="JPEG", exif=exif)
    number = valid_enterprise_number()
    response = await submit_profile(
        client,
        name="  Leerplatform Noord  ",
        enterprise_number=f"{number[:4]}.{number[4:7]}.{number[7:]}",
        categories=["1", "3"],
        logo=("foto.jpg", photo.getvalue(), "image/jpeg"),
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/profiel?melding=aangemaakt"
    partner = await Partner.objects().where(Partner.name == "Leerplatform Noord").first()
    assert partner is not None
    assert partner.email == account.email
    assert partner.slug == "leerplatform-noord"
    assert partner.enterprise_number == number
    stored = Image.open(io.BytesIO(partner.logo))
    assert stored.format == "PNG"
    assert max(stored.size) == 512
    assert b"secret location" not in partner.logo
    linked = await Account.select(Account.partner).where(Account.id == account.id).first()
    assert linked["partner"] == partner.id
    page = await client.get(response.headers["location"])
    assert "Je partnerprofiel werd toegevoegd." in page.text
    assert "Schooladministratie, Communiceren" in page.text


BAD_INPUT = [
    ({"name": "x" * 201}, "name", "Gebruik max. 200 karakters."),
    ({"name": "   "}, "name", "Geef de naam van je organisatie in."),
    ({"description": "d" * 2001}, "description", "Gebruik max. 2000 karakters."),
    (
        {"enterprise_number": "0123.456.700"},
        "enterprise_number",
        "Dit is geen geldig Belgisch ondernemingsnummer",
    ),
    ({"website": "javascript:alert(1)"}, "website", "Geef een volledig webadres in"),
    ({"website": "www.voorbeeld.be"}, "website", "Geef een volledig webadres in"),
    ({"categories": []}, "categories", "Kies minstens één categorie."),
    ({"contact_person": ""}, "contact_person", "Geef een contactpersoon in."),
    ({"extra_info": "e" * 2001}, "extra_info", "Gebruik max. 2000 karakters."),
]


@pytest.mark.parametrize(("overrides", "field", "message"), BAD_INPUT)
async def test_bad_input_is_explained_next_to_the_field(
    client: Browser, overrides: dict[str, Any], field: str, message: str
) -> None:
    await sign_in_as(client, await make_account())
    response = await submit_profile(client, **{"contact_person": "Jan Janssens", **overrides})

    assert response.status_code == 422
    assert message in field_error(response.text, field)
    if field != "contact_person":
        assert 'value="Jan Janssens"' in response.text, "other input stays in the form"
    assert await Partner.count() == 0


LOGOS = [
    (("groot.png", b"\x89PNG" + b"0" * 1_000_100, "image/png"), "Het logo is groter dan 1 MB."),
    (
        (
            "logo.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "image/svg+xml",
        ),
        "SVG- en andere tekstbestanden worden niet aanvaard.",
    ),
    (
        ("logo.png", b"<html><body>not an image</body></html>", "image/png"),
        "SVG- en andere tekstbestanden worden niet aanvaard.",
    ),
    (
        ("logo.png", b"GIF89a" + b"\x00" * 64, "image/png"),
        "Dit bestand is geen PNG-, JPEG- of WebP-afbeelding.",
    ),
    (
        ("logo.png", png_bytes(image_format="JPEG"), "image/png"),
        "Dit bestand is niet het type afbeelding dat de naam aangeeft.",
    ),
    (("flood.png", None, "image/png"), "Het logo heeft te veel pixels."),
    (("tekst.png", b"zTXt", "image/png"), "Deze afbeelding is beschadigd"),
    (("profiel.png", b"iCCP", "image/png"), "Deze afbeelding is beschadigd"),
]


def inflating_png(chunk_type: bytes) -> bytes:
    """A small PNG with a text (zTXt) or colour-profile (iCCP) chunk that inflates to 20 MB."""
    plain = png_bytes()
    body = b"Comment\x00\x00" + zlib.compress(b"\x00" * 20_000_000, 9)
    chunk = struct.pack(">I", len(body)) + chunk_type + body
    chunk += struct.pack(">I", zlib.crc32(chunk_type + body))
    header_end = 8 + 25  # the signature and the IHDR chunk
    return plain[:header_end] + chunk + plain[header_end:]


@pytest.mark.parametrize(
    ("upload", "message"),
    LOGOS,
    ids=["too-large", "svg", "html-as-png", "gif", "jpeg-as-png", "flood", "ztxt", "iccp"],
)
async def test_unsafe_or_wrong_logos_are_refused(
    client: Browser, upload: tuple[str, bytes | None, str], message: str
) -> None:
    name, content, kind = upload
    if content is None:
        # 20000 × 20000 pixels in a file of a few kilobytes: a pixel flood.
        flood = io.BytesIO()
        Image.new("1", (20000, 20000)).save(flood, format="PNG", optimize=True)
        content = flood.getvalue()
        assert len(content) < 1_000_000
    elif content in (b"zTXt", b"iCCP"):
        content = inflating_png(content)
        assert len(content) < 25_000
    await sign_in_as(client, await make_account())
    response = await submit_profile(client, logo=(name, content, kind), contact_person="Jan")

    assert response.status_code == 422
    assert message in field_error(response.text, "logo")
    assert 'value="Jan"' in response.text
    assert await Partner.count() == 0


async def test_a_valid_logo_is_kept_when_another_field_is_wrong(client: Browser) -> None:
    await sign_in_as(client, await make_account())
    response = await submit_profile(client, website="nope")
    assert response.status_code == 422
    kept = re.search(r'name="logo_data" value="([^"]+)"', response.text)
    assert kept, "the checked logo travels with the form"
    fields = profile_fields(logo_data=kept.group(1))
    again = await client.submit(
        "/profiel/nieuw",
        fields,  # type: ignore[arg-type]
        files={"logo": ("", b"", "application/octet-stream")},
    )
    assert again.status_code == 303


async def test_names_are_unique_ignoring_case_and_spaces(client: Browser) -> None:
    await make_partner(name="ACME")
    await sign_in_as(client, await make_account())
    response = await submit_profile(client, name=" acme ")
    assert response.status_code == 422
    assert field_error(response.text, "name") == "Er bestaat al een profiel met als naam acme"


async def test_two_simultaneous_creations_of_one_name_make_one_profile(committed: None) -> None:
    from tests.factories import make_partner as create

    accounts = [await make_account(), await make_account()]
    outcomes: list[str] = []

    async def attempt(account: Account) -> None:
        try:
            await create(account, name="Gelijktijdig", listed=False)
            outcomes.append("created")
        except service.NameTaken as taken:
            outcomes.append(f"taken:{taken.name}")

    async with anyio.create_task_group() as group:
        for account in accounts:
            group.start_soon(attempt, account)

    assert sorted(outcomes) == ["created", "taken:Gelijktijdig"]
    assert await Partner.count().where(Partner.name == "Gelijktijdig") == 1
    linked = await Account.count().where(Account.partner.is_not_null())
    assert linked == 1, "the losing account stays unlinked: nothing half-saved"


async def test_an_account_can_have_one_profile_only(client: Browser) -> None:
    partner = await make_partner()
    await sign_in_as(client, partner["account"])
    response = await submit_profile(client)
    assert response.headers["location"] == "/profiel"
    assert await Partner.count() == 1
    assert (await client.get("/profiel/nieuw")).headers["location"] == "/profiel"


async def test_editing_logs_who_changed_what_and_mails_the_profile_address(
    client: Browser,
) -> None:
    partner = await make_partner(name="Oude Naam")
    colleague = await make_account()
    await Account.update({Account.partner: partner["id"]}).where(Account.id == colleague.id)
    await sign_in_as(client, colleague)

    form = await client.get("/profiel/bewerken")
    assert 'value="Oude Naam"' in form.text
    response = await submit_profile(
        client, "/profiel/bewerken", logo=None, name="Nieuwe Naam", categories=["1", "2"]
    )
    assert response.headers["location"] == "/profiel?melding=opgeslagen"

    change = (
        await PartnerChange.select()
        .where(PartnerChange.partner == partner["id"])
        .output(load_json=True)
        .first()
    )
    assert change is not None
    assert change["account_email"] == colleague.email
    assert change["changes"]["name"] == ["Oude Naam", "Nieuwe Naam"]
    assert change["changes"]["categories"] == [
        ["Schooladministratie"],
        ["Schooladministratie", "Boekhouden en facturatie"],
    ]
    page = await client.get("/profiel")
    assert "<del>Oude Naam</del> → <ins>Nieuwe Naam</ins>" in page.text
    owner = partner["account"]
    mail = await OutboxMail.objects().where(OutboxMail.recipient == owner.email).first()
    assert mail is not None
    assert mail.subject == "Informat — Je partnerprofiel werd gewijzigd"
    assert colleague.email in mail.text and "Naam" in mail.text

    unchanged = await submit_profile(
        client, "/profiel/bewerken", logo=None, name="Nieuwe Naam", categories=["1", "2"]
    )
    assert unchanged.headers["location"] == "/profiel?melding=ongewijzigd"
    assert await PartnerChange.count().where(PartnerChange.partner == partner["id"]) == 1


def test_enterprise_numbers_follow_the_belgian_check() -> None:
    number = valid_enterprise_number(20320134)
    dotted = f"{number[:4]}.{number[4:7]}.{number[7:]}"
    assert normalise_enterprise_number(dotted) == number
    assert normalise_enterprise_number(f"BE {number}") == number
    assert normalise_enterprise_number(number[:-1] + str((int(number[-1]) + 1) % 10)) is None
    assert normalise_enterprise_number("12345") is None
    assert normalise_enterprise_number("2123456789") is None


async def test_the_profile_forms_errors_follow_the_page_and_name_their_field(
    client: Browser,
) -> None:
    await sign_in_as(client, await make_account())
    blank = await client.get("/profiel/nieuw")
    assert re.search(r'id="country"[^>]*value="België"', blank.text), "Land is België at first"
    assert " *</label>" not in blank.text and "Extra info (publiek)" in blank.text
    fields = dict.fromkeys(profile_fields(), "")
    answer = await client.submit("/profiel/nieuw", fields, files={"logo": ("", b"", "")})  # type: ignore[arg-type]
    assert answer.status_code == 422
    summary = re.search(r'<div class="error-summary".*?</ul>', answer.text, re.S)
    assert summary
    links = re.findall(r'<a href="#(\w+)">(.*?)</a>', summary.group(0))
    order = [name for name, _ in links]
    assert order == [
        "name",
        "description",
        "categories",
        "website",
        "logo",
        "contact_person",
        "street",
        "house_number",
        "postcode",
        "municipality",
        "country",
    ], "in the order of the page"
    messages = dict(links)
    assert messages["street"] == "Vul de straat in." and messages["country"] == "Vul het land in."
    assert "Dit veld is verplicht." not in summary.group(0), "every message names its field"
