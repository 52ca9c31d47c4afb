"""Access control on every route that takes an id, enumerated from the router: each one is
asked with partner A's ids by a visitor, partner B, the helpdesk and a school administrator,
and only those it belongs to get through; afterwards nothing of A's has changed. A route with an
id that this sweep does not know how to fill fails it, so new routes get checked too."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import pytest
from litestar import get
from litestar.params import FromPath

from app import create_app
from app.applications.tables import Application
from app.config import Settings, get_settings
from app.helpdesk import service as helpdesk_service
from app.identity.tables import ClientSecret
from app.partners import service as partners
from app.partners.tables import InvitationCode, Partner
from app.web.sessions import requires_account
from tests.conftest import Browser, browser_for
from tests.factories import PASSWORD, generate_secret, make_partner, make_staff, submit_application
from tests.integration.staff.helpers import as_staff, staff_browser

pytestmark = pytest.mark.anyio
# Capability links (the token is the permission) and development and static files are
# covered by their own tests.
NOT_HERE = re.compile(r"^/(static|dev)/|\{token:str\}")
VISITOR, PARTNER_B, HELPDESK, SCHOOL_ADMIN, OWNER = (
    "visitor",
    "partner B",
    "helpdesk",
    "school administrator",
    "partner A",
)


@dataclass
class World:
    ids: dict[str, str]
    people: dict[str, Browser]


async def signed_in_partner(app: Any, partner: dict[str, Any]) -> Browser:
    browser = browser_for(app)
    await browser.submit("/aanmelden", {"email": partner["account"].email, "password": PASSWORD})
    return browser


@pytest.fixture
async def world(app: Any, transaction: None) -> World:
    owner = await make_partner(listed=False, name="Eigenaar A")
    application_id = await submit_application(owner)
    helpdesk = await make_staff()
    staff = await as_staff(helpdesk)
    await helpdesk_service.approve(staff, application_id, get_settings())  # type: ignore[arg-type]
    await generate_secret(owner["account"].id, application_id, 0)  # type: ignore[arg-type]
    secret = await ClientSecret.select(ClientSecret.id).first()
    await partners.create_invitation(owner["account"].id)
    code = await InvitationCode.select(InvitationCode.id).first()
    assert secret is not None and code is not None
    admin = await make_staff("school-admin", [("111111", ["leerlingen"])])
    return World(
        ids={
            "application_id": str(application_id),
            "secret_id": str(secret["id"]),
            "code_id": str(code["id"]),
            "partner_id": str(owner["id"]),
            "slug": str(owner["slug"]),
        },
        people={
            VISITOR: browser_for(app),
            PARTNER_B: await signed_in_partner(app, await make_partner(listed=False)),
            HELPDESK: await staff_browser(app, helpdesk),
            SCHOOL_ADMIN: await staff_browser(app, admin),
            OWNER: await signed_in_partner(app, owner),
        },
    )


def allowed(path: str, person: str) -> bool:
    if path.startswith("/backoffice/toegang/"):
        return False  # A's application reaches none of the administrator's schools
    if path.startswith("/backoffice/"):
        return person == HELPDESK
    if path.startswith("/partners/"):
        return True  # A has an approved application: its public page is public
    return person == OWNER


def refused(path: str, person: str, status: int, location: str) -> bool:
    if status in (403, 404):
        return True
    sign_in = "/backoffice/aanmelden" if path.startswith("/backoffice/") else "/aanmelden"
    return status == 303 and location.startswith(sign_in)


async def access_problems(app: Any, world: World) -> list[str]:
    """Every request to a route with an id that got through where it should not have, or
    was refused where it should not have been."""
    routes = [
        route
        for route in app.routes
        if getattr(route, "path_parameters", None) and not NOT_HERE.search(route.path)
    ]
    assert len(routes) >= 15
    problems = []
    for route in routes:
        names = re.findall(r"\{(\w+):\w+\}", route.path)
        unknown = [name for name in names if name not in world.ids]
        assert not unknown, f"{route.path}: teach this sweep what {unknown} means"
        path = re.sub(r"\{(\w+):\w+\}", lambda match: world.ids[match.group(1)], route.path)
        for method in sorted(route.methods & {"GET", "POST"}):
            for person, signed_in in world.people.items():
                if method == "POST" and allowed(path, person):
                    continue  # permitted changes are the feature tests' business
                # The same person (cookies) against this app.
                browser = Browser(
                    transport=httpx.ASGITransport(app=app),
                    base_url="http://testserver",
                    cookies=signed_in.cookies,
                )
                async with browser:
                    answer = await (
                        browser.get(path) if method == "GET" else browser.submit(path, {})
                    )
                location = answer.headers.get("location", "")
                if allowed(path, person):
                    # A form's own URL (Back after a post) leads the owner to the page it is on.
                    home = path.split("/secrets")[0]
                    ok = answer.status_code == 200 or (
                        answer.status_code == 303 and location.startswith(home + "#")
                    )
                else:
                    ok = refused(path, person, answer.status_code, location)
                if not ok:
                    problems.append(f"{method} {path} as {person}: {answer.status_code} {location}")
    return problems


async def test_only_those_it_belongs_to_reach_an_id(app: Any, world: World) -> None:
    problems = await access_problems(app, world)
    assert problems == [], "\n".join(problems)

    # Nothing of A's changed under anyone else's requests.
    application = await Application.select(Application.status).first()
    assert application is not None and application["status"] == "goedgekeurd"
    secret = await ClientSecret.select(ClientSecret.revoked_at).first()
    assert secret is not None and secret["revoked_at"] is None
    code = await InvitationCode.select(InvitationCode.revoked_at).first()
    assert code is not None and code["revoked_at"] is None
    partner = (
        await Partner.select(Partner.active).where(Partner.id == world.ids["partner_id"]).first()
    )
    assert partner is not None and partner["active"]


async def test_a_route_added_without_an_access_check_is_caught(
    settings: Settings, world: World
) -> None:
    @get("/applicaties/{application_id:uuid}/lek", guards=[requires_account])
    async def leak(application_id: FromPath[UUID]) -> str:
        return f"de gegevens van {application_id}"

    test_app = create_app(settings)
    test_app.register(leak)
    problems = await access_problems(test_app, world)
    assert f"GET /applicaties/{world.ids['application_id']}/lek as partner B: 200 " in problems
