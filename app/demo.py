"""`portal demo`: a small, realistic data set to try the portal with.

Partners from the manual's landing page with approved applications (so the directory shows
them), a partner account to sign in with, and an existing client that can be linked under
Applicaties → Ik koppel mijn client ID & secret; two schools, a helpdesk user and a school
administrator for the back-office, and an application waiting in the approval queue. Running it
again changes nothing.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

from PIL import Image, ImageDraw

from app.accounts import passwords
from app.accounts.tables import Account
from app.applications.tables import APPROVED, NEW, Application, ApplicationApi
from app.config import Settings
from app.identity.importer import ClientSpec, import_clients
from app.identity.service import secret_hash
from app.identity.tables import Client
from app.partners import service as partners
from app.partners.logos import process_logo
from app.partners.service import ProfileData
from app.piccolo_conf import DB
from app.staff.service import add_staff
from app.staff.tables import School

DEMO_EMAIL = "demo@partner.example"
DEMO_PASSWORD = "Demo!Partner2026"  # noqa: S105 - a published demo account
STAFF_PASSWORD = "Demo!Backoffice2026"  # noqa: S105 - published demo staff
HELPDESK = "demo.helpdesk"
SCHOOL_ADMIN = "demo.directie"
SCHOOLS = [("123456", "Sint-Jozefscollege Demo"), ("654321", "Atheneum Demo")]
LINKABLE_CLIENT = "informat_customer_school"
LINKABLE_SECRET = "demo-secret-for-informat-customer-school"  # noqa: S105 - demo data

PARTNERS = [
    (
        "Plantyn",
        "Plantyn is ons eigen partnerprofiel dat we gebruiken om demo's te geven van"
        " het partnerportaal.",
        ["communiceren", "hrm"],
        "#0b5cad",
    ),
    (
        "Classroom Cloud",
        "Cloud-based virtual classrooms for K-12 schools. Klaslijsten en"
        " uurroosters komen rechtstreeks uit Informat.",
        ["leerplatform", "planning"],
        "#0e8a7b",
    ),
    (
        "SkillSpire",
        "Bootcamps and training for tech careers. Wij gebruiken leerlingengegevens"
        " om inschrijvingen voor workshops te vereenvoudigen.",
        ["inschrijvingen"],
        "#f2b84b",
    ),
    (
        "MentorConnect",
        "Mentoring and coaching network for high school students. Mentoren zien"
        " enkel de leerlingen die hen zijn toegewezen.",
        ["leerlingvolgsysteem"],
        "#8a4fd3",
    ),
    (
        "EDULOGO",
        "Boekhouden voor scholen: facturen, rekeningen en betalingen gekoppeld aan"
        " Informat Rekeningen.",
        ["boekhouden", "maaltijden"],
        "#d9534f",
    ),
]


APIS = ("leerlingen", "voorinschrijvingen")
DEMO_CLIENT = ClientSpec(
    "plantyn_demo",
    [(secret_hash("plantyn-demo-secret-000000"), None)],
    [f"api_informat_sas_leerlingen.leerlingen.{number}" for number, _ in SCHOOLS],
    ["client_credentials"],
)
LINKABLE = ClientSpec(
    LINKABLE_CLIENT,
    [(secret_hash(LINKABLE_SECRET), None)],
    [f"api_informat_sas_leerlingen.{api}.{SCHOOLS[0][0]}" for api in APIS],
    ["client_credentials"],
)


@dataclass(frozen=True)
class DemoInfo:
    created: bool


def _logo(name: str, color: str) -> bytes:
    image = Image.new("RGB", (256, 256), color)
    ImageDraw.Draw(image).text((24, 100), name[:10], fill="white", font_size=36)
    output = io.BytesIO()
    image.save(output, format="PNG")
    return output.getvalue()


async def load(settings: Settings) -> DemoInfo:
    if await Account.exists().where(Account.email == DEMO_EMAIL):
        return DemoInfo(created=False)
    categories = {row.key: row.id for row in await partners.all_categories()}
    password_hash = await passwords.hash_password(DEMO_PASSWORD)
    async with DB.transaction():
        for number, (name, description, keys, color) in enumerate(PARTNERS):
            email = DEMO_EMAIL if number == 0 else f"contact{number}@partner.example"
            account = Account(
                email=email,
                password_hash=password_hash,
                language="nl",
                activated_at=dt.datetime.now(dt.UTC),
            )
            await account.save()
            data = ProfileData(
                name=name,
                enterprise_number=None,
                description=description,
                contact_person="Demo Contact",
                street="Demostraat",
                house_number=str(number + 1),
                postcode="2000",
                municipality="Antwerpen",
                country="België",
                public=True,
                categories=[categories[key] for key in keys],
                website=f"https://www.{name.lower().replace(' ', '')}.example",
                extra_info="Voor meer info, neem contact met onze helpdesk.",
                logo=process_logo(_logo(name, color), "logo.png", "image/png"),
            )
            partner_id = await partners.create_profile(account.id, email, data)
            first = number == 0
            created = await Application.insert(
                Application(
                    partner=partner_id,
                    name=f"{name} koppeling",
                    status=APPROVED,
                    description="Synchroniseert leerlingen met onze lesmethodes." if first else "",
                    contact_person="Demo Contact" if first else "",
                    contact_email=DEMO_EMAIL if first else "",
                )
            )
            if first:
                application_id = created[0]["id"]
                await ApplicationApi.insert(ApplicationApi(application=application_id, api=APIS[0]))
                await import_clients([DEMO_CLIENT], settings, granted_by="demo")
                await Client.update({Client.application: application_id}).where(
                    Client.client_id == DEMO_CLIENT.client_id
                )
        for institution_number, school in SCHOOLS:
            await School.insert(School(institution_number=institution_number, name=school))
        waiting = await Application.insert(
            Application(
                partner=partner_id,
                name="EDULOGO Maaltijden",
                status=NEW,
                description="Maaltijdbestellingen per leerling, verrekend via Informat Rekeningen.",
                contact_person="Demo Contact",
                contact_email="contact4@partner.example",
            )
        )
        await ApplicationApi.insert(ApplicationApi(application=waiting[0]["id"], api="rekeningen"))
        await import_clients([LINKABLE], settings, granted_by="demo")
    # Staff get their own transaction each: add_staff hashes the password first.
    await add_staff(HELPDESK, STAFF_PASSWORD, "helpdesk", [])
    await add_staff(
        SCHOOL_ADMIN,
        STAFF_PASSWORD,
        "school-admin",
        [(school, [api.key for api in settings.apis]) for school, _ in SCHOOLS],
    )
    return DemoInfo(created=True)
