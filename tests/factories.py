"""Test data, built the way the product builds it."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any
from urllib.parse import urlsplit

from app.accounts import passwords
from app.accounts.tables import Account
from app.mail.tables import OutboxMail

PASSWORD = "Sterk!Wachtwoord9"
_numbers = itertools.count(1)


def unique_email(prefix: str = "partner") -> str:
    return f"{prefix}{next(_numbers)}@voorbeeld.be"


async def make_account(
    email: str | None = None, password: str = PASSWORD, active: bool = True, language: str = "nl"
) -> Account:
    account = Account(
        email=email or unique_email(),
        password_hash=await passwords.hash_password(password),
        language=language,
        activated_at=dt.datetime.now(dt.UTC) if active else None,
    )
    await account.save()
    return account


async def mails_to(recipient: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = (
        await OutboxMail.select().where(OutboxMail.recipient == recipient).order_by(OutboxMail.id)
    )
    return rows


async def last_mail(recipient: str) -> dict[str, object]:
    mails = await mails_to(recipient)
    assert mails, f"no mail to {recipient}"
    return mails[-1]


def path_of(url: str) -> str:
    return urlsplit(url).path


def large_png() -> bytes:
    """4096 × 4096 pixels in about 60 kB: cheap to send, a quarter of a second to decode."""
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (4096, 4096), "#f4f1ea")
    draw = ImageDraw.Draw(image)
    for step in range(0, 4096, 1024):
        draw.line((0, step, 4096, 4096 - step), fill="#0b5cad", width=3)
    output = io.BytesIO()
    image.save(output, format="PNG", optimize=True)
    return output.getvalue()


def png_bytes(
    width: int = 64,
    height: int = 64,
    color: str = "#0b5cad",
    image_format: str = "PNG",
    **save: object,
) -> bytes:
    import io

    from PIL import Image

    output = io.BytesIO()
    Image.new("RGB", (width, height), color).save(output, format=image_format, **save)
    return output.getvalue()


def valid_enterprise_number(first_eight: int = 12345678) -> str:
    """A 10-digit number that passes the Belgian check (97 - first eight mod 97)."""
    base = f"0{first_eight:07d}"[:8]
    return f"{base}{97 - int(base) % 97:02d}"


def profile_fields(**overrides: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "name": f"Partner {next(_numbers)}",
        "enterprise_number": "",
        "description": "Wij koppelen leerlingengegevens aan ons leerplatform.\nVeilig en snel.",
        "contact_person": "An Peeters",
        "street": "Schoolstraat",
        "house_number": "12",
        "postcode": "9000",
        "municipality": "Gent",
        "country": "België",
        "public": "yes",
        "categories": ["1"],
        "website": "https://www.voorbeeld.be",
        "extra_info": "",
    }
    fields.update(overrides)
    return fields


async def make_partner(
    account: Account | None = None,
    *,
    listed: bool = True,
    public: bool = True,
    active: bool = True,
    categories: list[int] | None = None,
    **fields: object,
) -> dict[str, object]:
    """A partner profile created through the service, optionally with an approved app."""
    from app.partners import service
    from app.partners.logos import process_logo
    from app.partners.service import ProfileData
    from app.partners.tables import Partner

    account = account or await make_account()
    values = profile_fields(**fields)
    data = ProfileData(
        name=str(values["name"]),
        enterprise_number=None,
        description=str(values["description"]),
        contact_person=str(values["contact_person"]),
        street="Schoolstraat",
        house_number="12",
        postcode="9000",
        municipality="Gent",
        country="België",
        public=public,
        categories=categories or [1],
        website=str(values["website"]),
        extra_info=str(values["extra_info"]),
        logo=process_logo(png_bytes(), "logo.png", "image/png"),
    )
    partner_id = await service.create_profile(account.id, account.email, data)
    if not active:
        await Partner.update({Partner.active: False}).where(Partner.id == partner_id)
    if listed:
        await approve_application(partner_id)
    row = (
        await Partner.select(Partner.id, Partner.slug, Partner.name)
        .where(Partner.id == partner_id)
        .first()
    )
    assert row is not None
    return {**row, "account": account}


async def approve_application(partner_id: object, status: str = "goedgekeurd") -> None:
    from app.applications.tables import Application

    await Application.insert(Application(partner=partner_id, name="Koppeling", status=status))


async def make_client(
    client_id: str | None = None,
    secret: str = "",
    *,
    scopes: list[tuple[str, str]] | None = None,
    application_status: str | None = None,
    enabled: bool = True,
) -> dict[str, object]:
    """A client with one secret and scope grants (api key, institution number)."""
    from app.identity.service import new_secret, secret_hash
    from app.identity.tables import Client, ClientSecret, ScopeGrant

    client_id = client_id or f"informat_customer_{next(_numbers)}"
    secret = secret or new_secret()
    application = None
    if application_status:
        from app.applications.tables import Application

        partner = await make_partner(listed=False)
        rows = await Application.insert(
            Application(partner=partner["id"], name="Koppeling", status=application_status)
        )
        application = rows[0]["id"]
    created = await Client.insert(
        Client(client_id=client_id, enabled=enabled, application=application)
    )
    client_pk = created[0]["id"]
    secret_rows = await ClientSecret.insert(
        ClientSecret(client=client_pk, value_hash=secret_hash(secret))
    )
    for api, number in scopes if scopes is not None else [("leerlingen", "123456")]:
        await ScopeGrant.insert(ScopeGrant(client=client_pk, api=api, institution_number=number))
    return {
        "id": client_pk,
        "client_id": client_id,
        "secret": secret,
        "secret_id": secret_rows[0]["id"],
        "application": application,
    }


async def make_school(number: str = "", name: str = "") -> str:
    from app.staff.tables import School

    number = number or f"{100000 + next(_numbers)}"
    await School.raw(
        "INSERT INTO school (institution_number, name) VALUES ({}, {}) ON CONFLICT DO NOTHING",
        number,
        name or f"School {number}",
    )
    return number


async def make_staff(
    role: str = "helpdesk", rights: list[tuple[str, list[str]]] | None = None
) -> str:
    """A back-office user (password PASSWORD); schools named in `rights` are created."""
    from app.staff.service import add_staff

    for number, _apis in rights or []:
        await make_school(number)
    username = f"{role.replace('-', '')}{next(_numbers)}"
    await add_staff(username, PASSWORD, role, rights or [])
    return username


async def submit_application(partner: dict[str, object], name: str = "Roosterkoppeling") -> object:
    """An application with status Nieuw, as "Ik vraag een nieuwe client ID aan" makes it."""
    from app.applications import service
    from app.applications.service import ApplicationData
    from app.config import get_settings

    account = partner["account"]
    data = ApplicationData(
        name=name,
        description="Haalt uurroosters op.",
        contact_person="Dev Eloper",
        contact_email="dev@partner.be",
        apis=["leerlingen", "personeel"],
    )
    settings = get_settings()
    return await service.request_new_client(account.id, account.email, data, settings)  # type: ignore[attr-defined]


async def token_status(browser: Any, client_id: str, secret: str) -> int:
    """The status /connect/token answers the client with this secret."""
    response = await browser.post(
        "/connect/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    status: int = response.status_code
    return status


async def generate_secret(
    account_id: Any, application_id: Any, overlap_days: int | None = 0
) -> str:
    """ "Genereer secret" through the service, and the secret the page after it shows once."""
    import uuid

    from app.applications import service
    from app.config import get_settings
    from app.crypto import sealer_of

    settings = get_settings()
    session = f"test-{uuid.uuid4().hex}"
    await service.generate_secret(
        account_id,
        application_id,
        service.SecretChoice(label="", overlap_days=overlap_days, confirmed=True),
        session_hash=session,
        sealer=sealer_of(settings),
        settings=settings,
    )
    secret = await service.take_new_secret(application_id, session, sealer_of(settings))
    assert secret is not None
    return secret


async def archive(application_id: Any) -> None:
    """Gearchiveerd, as the helpdesk leaves an application: out of use, no more tokens."""
    import datetime as dt

    from app.applications.tables import ARCHIVED, Application

    await Application.update(
        {Application.status: ARCHIVED, Application.updated_at: dt.datetime.now(dt.UTC)}
    ).where(Application.id == application_id)
