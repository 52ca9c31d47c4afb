"""Upload and text sanitising. Text arrives as plain text: every form field of every form loses
control characters and bidirectional overrides (secrets excepted, which are compared as typed);
nothing typed reaches the database with a NUL or comes back as markup; every page takes any query
text, and every form route any posted text, without an error. The one upload, the partner logo,
is decoded and re-encoded, so nothing but pixels survives it."""

from __future__ import annotations

import inspect
import io
import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.routes import HTTPRoute
from PIL import Image
from PIL.PngImagePlugin import PngInfo

import app.server  # noqa: F401 - every controller, and so every form
from app.applications.tables import Application
from app.partners.forms import ProfileForm
from app.partners.tables import Partner
from app.web.forms import Form
from tests.conftest import Browser, browser_for
from tests.factories import make_account, make_partner, make_staff, submit_application
from tests.integration.partners.test_profiles import sign_in_as, submit_profile
from tests.integration.staff.helpers import staff_browser
from tests.security.test_access_control import signed_in_partner
from tests.security.test_csrf import example_path

pytestmark = pytest.mark.anyio
# A NUL (PostgreSQL refuses it in text), an escape, a right-to-left override.
HIDDEN = "\x00\x1b\u202e"
MARKUP = '<script>alert(1)</script><img src=x onerror="alert(2)">'
INVISIBLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
STREAMS = re.compile(r"/live$")  # server-sent events: they never end


def every_form(base: type[Form] = Form) -> Iterator[type[Form]]:
    for subclass in base.__subclasses__():
        yield subclass
        yield from every_form(subclass)


def make_form(form_class: type[Form], data: dict[str, str]) -> Form:
    needs = inspect.signature(form_class.__init__).parameters
    extra = {"api_keys": []} if "api_keys" in needs else {}
    return form_class(data, **extra)


def test_every_form_field_takes_plain_text_only() -> None:
    forms = list(every_form())
    assert len(forms) >= 12, "the sweep sees every form"
    typed = f"Naam{HIDDEN}\r\nmet\tregels"
    for form_class in forms:
        for name in form_class.fields:
            value = make_form(form_class, {name: typed}).values[name]
            where = f"{form_class.__name__}.{name}"
            if name in (*form_class.secret_fields, *form_class.verbatim_fields):
                assert value == typed, f"{where} is a secret: compared as typed"
                continue
            assert not INVISIBLE.search(value), where
            expected = (
                "Naam\nmet regels" if name in form_class.multiline_fields else "Naam met regels"
            )
            assert value == expected, where
    # Composed characters: "é" typed as e + combining accent is the same name as "é".
    assert make_form(ProfileForm, {"name": "Cafe\u0301"}).values["name"] == "Caf\u00e9"


async def test_hidden_characters_never_reach_the_database(client: Browser) -> None:
    account = await make_account()
    await sign_in_as(client, account)
    created = await submit_profile(
        client,
        name=f"Leer{HIDDEN}platform",
        description=f"Een{HIDDEN} omschrijving",
        contact_person=f"Jan{HIDDEN}",
        municipality=f"Gent{HIDDEN}",
    )
    assert created.status_code == 303, created.text[-1500:]
    partner = await Partner.objects().where(Partner.email == account.email).first()
    assert partner is not None
    stored = [partner.name, partner.description, partner.contact_person, partner.municipality]
    assert stored == ["Leerplatform", "Een omschrijving", "Jan", "Gent"]
    form = await client.get("/applicaties/nieuw")
    assert form.status_code == 200
    answer = await client.submit(
        "/applicaties/nieuw",
        {
            "name": f"Rooster{HIDDEN}",
            "description": f"Leest{HIDDEN}\r\nroosters",
            "contact_person": "Dev",
            "contact_email": "dev@partner.be",
            "apis": "leerlingen",
        },
    )
    assert answer.status_code == 303
    stored_application = await Application.raw(
        "SELECT name, description FROM application WHERE partner = {}", partner.id
    )
    assert stored_application == [{"name": "Rooster", "description": "Leest\nroosters"}]


async def test_markup_typed_anywhere_is_shown_as_text(app: Any, client: Browser) -> None:
    partner = await make_partner(name="Markup BV")
    application_id = await submit_application(partner, name=f"App {MARKUP}")
    owner = await signed_in_partner(app, partner)
    helpdesk = await staff_browser(app, await make_staff())
    pages = [
        (owner, "/applicaties"),
        (owner, f"/applicaties/{application_id}"),
        (owner, f"/applicaties/{application_id}/bewerken"),
        (helpdesk, "/backoffice/wachtrij"),
        (helpdesk, f"/backoffice/applicaties/{application_id}"),
        (helpdesk, "/backoffice/zoeken?q=App"),
    ]
    for browser, path in pages:
        page = await browser.get(path)
        assert page.status_code == 200, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text, path
        assert "<script>alert(1)" not in page.text and "<img src=x" not in page.text, path


async def identities(app: Any) -> dict[str, Browser]:
    partner = await make_partner(name="Zoeker BV")
    owner = await signed_in_partner(app, partner)
    return {
        "visitor": browser_for(app),
        "partner": owner,
        "helpdesk": await staff_browser(app, await make_staff()),
        "school administrator": await staff_browser(
            app, await make_staff("school-admin", [("314159", ["leerlingen"])])
        ),
    }


async def test_every_page_takes_any_query_text(app: Any, transaction: None) -> None:
    people = await identities(app)
    query = dict.fromkeys(("q", "pagina", "melding", "next", "page"), f"{HIDDEN}{MARKUP}")
    paths = [
        example_path(route.path)
        for route in app.routes
        if isinstance(route, HTTPRoute)
        and "GET" in route.methods
        and not route.path.startswith(("/static", "/dev"))
        and not STREAMS.search(route.path)
    ]
    assert len(paths) > 30, "the sweep sees the whole router"
    for who, browser in people.items():
        for path in paths:
            answer = await browser.get(path, params=query)
            assert answer.status_code < 500, f"{who} {path}: {answer.status_code}"
            assert "<script>alert(1)" not in answer.text, f"{who} {path}"


# Path parameters and query values that no page makes: a NUL, a byte that is not UTF-8, far
# too long, and page numbers that are not page numbers.
ODD_SEGMENTS = ("%00", "a%00b", "%ff%fe", "y" * 5000)
ODD_QUERIES = (
    {"categorie": "\x00"},
    {"q": "\x00zoek", "categorie": "x" * 10_000},
    {"pagina": "1e20"},
    {"pagina": "99999999999999999999999"},
    {"pagina": "-5"},
    {"pagina": "\u0661"},  # an Arabic-Indic digit one: isdigit() is true
)


def odd_paths(path: str) -> Iterator[str]:
    """The route's path with each odd value in its parameters (one variant per value)."""
    if "{" not in path:
        return
    for odd in ODD_SEGMENTS:
        yield re.sub(r"\{\w+:\w+\}", odd, path)


async def test_every_page_refuses_an_odd_address_without_an_error(
    app: Any, transaction: None
) -> None:
    people = await identities(app)
    routes = [
        route.path
        for route in app.routes
        if isinstance(route, HTTPRoute)
        and "GET" in route.methods
        and not route.path.startswith(("/static", "/dev"))
        and not STREAMS.search(route.path)
    ]
    for who, browser in people.items():
        for route in routes:
            for path in odd_paths(route):
                answer = await browser.get(path)
                # Refused (4xx), or first sent to sign in where the page is not this identity's.
                refused = answer.status_code == 303 or 400 <= answer.status_code < 500
                assert refused, f"{who} {path[:80]}: {answer.status_code}"
            for query in ODD_QUERIES:
                answer = await browser.get(example_path(route), params=query)
                assert answer.status_code < 500, f"{who} {route} {query}: {answer.status_code}"
    refused = await people["visitor"].get("/", params={"categorie": "\x00"})
    assert refused.status_code == 400
    assert "text/html" in refused.headers["content-type"], "the 400 page, not an internal error"


def test_the_logo_is_the_only_upload() -> None:
    from app.config import PROJECT_ROOT

    uploading = sorted(
        str(template.relative_to(PROJECT_ROOT))
        for folder in ("templates", "components")
        for template in (PROJECT_ROOT / folder).rglob("*.html")
        if 'enctype="multipart/form-data"' in template.read_text()
    )
    assert uploading == ["templates/partners/profile_form.html"], "a new upload needs its checks"


async def test_nothing_but_pixels_survives_a_logo_upload(client: Browser) -> None:
    account = await make_account()
    await sign_in_as(client, account)
    image = io.BytesIO()
    text_chunk = PngInfo()
    text_chunk.add_text("Comment", MARKUP)
    Image.new("RGB", (64, 64), "#0e8a7b").save(image, format="PNG", pnginfo=text_chunk)
    assert b"<script>" in image.getvalue()
    # A polyglot: a valid PNG with a script after its end, and markup in a text chunk.
    polyglot = image.getvalue() + f"<html>{MARKUP}</html>".encode()
    created = await submit_profile(client, logo=("logo.png", polyglot, "image/png"))
    assert created.status_code == 303
    partner = await Partner.objects().where(Partner.email == account.email).first()
    assert partner is not None
    served = await client.get(f"/partners/{partner.slug}/logo")
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert b"script" not in served.content and b"<html" not in served.content
    assert Image.open(io.BytesIO(served.content)).size == (64, 64)


async def test_every_form_post_takes_any_text(app: Any, transaction: None) -> None:
    """Every field name any form uses, each holding control characters and markup, posted by
    each identity to every route: refused or accepted, never an error."""
    people = await identities(app)
    names = {name for form in every_form() for name in form.fields}
    names |= {"grant", "apis", "language", "overlap", "step", "choice", "reason"}
    nasty = dict.fromkeys(names, f"{HIDDEN}{MARKUP}")
    paths = [
        example_path(route.path)
        for route in app.routes
        if isinstance(route, HTTPRoute) and "POST" in route.methods
    ]
    assert len(paths) > 30, "the sweep sees the whole router"
    for who, browser in people.items():
        for path in paths:
            if path.endswith("/afmelden"):
                continue  # signing out would end the identity's session for the next routes
            answer = await browser.submit(path, nasty)
            assert answer.status_code < 500, f"{who} {path}: {answer.status_code}"


async def test_thousands_of_characters_as_a_name_are_refused_in_the_routes_own_format(
    client: Browser,
) -> None:
    """A 4,000-character client id, user name or e-mail address, tried often enough to be
    counted by the rate limits, whose keys must stay within PostgreSQL's index row limit."""
    long = secrets.token_hex(2000)  # random, so that PostgreSQL cannot compress it small
    for _ in range(7):
        token = await client.post(
            "/connect/token",
            data={"grant_type": "client_credentials", "client_id": long, "client_secret": "s"},
        )
        assert token.status_code in {400, 429}
        assert token.json()["error"] == "invalid_client"
        staff = await client.submit(
            "/backoffice/aanmelden", {"username": long, "password": "Verkeerd!1"}
        )
        assert staff.status_code in {422, 429} and "text/html" in staff.headers["content-type"]
        partner = await client.submit("/aanmelden", {"email": long + "@x.be", "password": "V!1a"})
        assert partner.status_code in {422, 429} and "text/html" in partner.headers["content-type"]


async def test_a_route_added_later_is_bounded_from_the_start(
    app: Any, transaction: None, settings: Any
) -> None:
    """A careless new page that hands its path parameter straight to PostgreSQL: the odd
    addresses of the sweep still get the 400 page, never an error."""
    from litestar import get
    from litestar.params import FromPath

    from app import create_app

    @get("/test/zoek/{name:str}")
    async def careless(name: FromPath[str]) -> str:
        rows = await Partner.raw("SELECT count(*) AS n FROM partner WHERE name = {}", name)
        return str(rows[0]["n"])

    test_app = create_app(settings)
    test_app.register(careless)
    async with browser_for(test_app) as visitor:
        assert (await visitor.get("/test/zoek/gewoon")).status_code == 200
        for path in odd_paths("/test/zoek/{name:str}"):
            answer = await visitor.get(path)
            assert answer.status_code < 500, path[:40]
            if "%00" in path or len(path) > 1000:
                assert answer.status_code == 400, path[:40]
