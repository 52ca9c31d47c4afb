"""Rate limits, enumerated from the router. Every state-changing route either takes a guess (a
password, a code, a client secret) or sends mail, and is shown here to answer 429 with a
Retry-After after a fixed number of tries from one address or account; or it is named with the
reason it needs no limit. A route in neither list fails the sweep, so a new route gets a
decision."""

from __future__ import annotations

import base64
import itertools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from litestar import post

from app import create_app
from app.applications.tables import Application
from app.config import Settings
from app.identity.tables import Client
from tests.conftest import Browser, browser_for
from tests.factories import (
    PASSWORD,
    make_account,
    make_client,
    make_partner,
    make_staff,
    unique_email,
)
from tests.integration.accounts.test_registration import registration
from tests.integration.staff.helpers import staff_browser
from tests.integration.staff.test_second_factor import enrol, password_step
from tests.security.test_csrf import state_changing

pytestmark = pytest.mark.anyio

Attempt = Callable[[], Awaitable[httpx.Response]]

CAPABILITY = "the e-mailed token in the path is the permission: 256 random bits, stored hashed"
OWN_SESSION = "ends or changes only the caller's own session"
SIGNED_IN = "needs a signed-in session and takes no secret"
STAFF = "needs a signed-in staff session and takes no secret"
NO_LIMIT_NEEDED = {
    "POST /taal": OWN_SESSION,
    "POST /afmelden": OWN_SESSION,
    "POST /backoffice/afmelden": OWN_SESSION,
    "POST /activeren/{token:str}": CAPABILITY,
    "POST /wachtwoord-herstellen/{token:str}": CAPABILITY,
    "POST /backoffice/toegang/{token:str}": CAPABILITY,
    "POST /profiel/nieuw": SIGNED_IN,
    "POST /profiel/bewerken": SIGNED_IN,
    "POST /profiel/uitnodigingen": SIGNED_IN,
    "POST /profiel/uitnodigingen/{code_id:int}/intrekken": SIGNED_IN,
    "POST /applicaties/toevoegen": SIGNED_IN,
    "POST /applicaties/nieuw": SIGNED_IN,
    # The client is the one this session's own first step checked (with its limit).
    "POST /applicaties/koppelen/applicatie": SIGNED_IN,
    "POST /applicaties/{application_id:uuid}/bewerken": SIGNED_IN,
    "POST /applicaties/{application_id:uuid}/secrets": SIGNED_IN,
    "POST /applicaties/{application_id:uuid}/secrets/{secret_id:int}/intrekken": SIGNED_IN,
    "POST /backoffice/applicaties/{application_id:uuid}/goedkeuren": STAFF,
    "POST /backoffice/applicaties/{application_id:uuid}/weigeren": STAFF,
    "POST /backoffice/applicaties/{application_id:uuid}/archiveren": STAFF,
    "POST /backoffice/partners/{partner_id:uuid}/deactiveren": STAFF,
    "POST /backoffice/partners/{partner_id:uuid}/heractiveren": STAFF,
    "POST /backoffice/toegang/applicaties/{application_id:uuid}": STAFF,
}


@dataclass(frozen=True)
class Probe:
    """How to make wrong tries at a limited route, and how many are answered normally."""

    answered: int
    start: Callable[[Any], Awaitable[Attempt]]
    # A daily quota rather than a block: the page says how many are left, not when to retry.
    says_when: bool = True


async def signed_in_partner(app: Any, *, with_profile: bool = True) -> Browser:
    account = await make_account()
    if with_profile:
        await make_partner(account, listed=False)
    browser = stranger(app)
    answer = await browser.submit("/aanmelden", {"email": account.email, "password": PASSWORD})
    assert answer.status_code == 303
    return browser


_addresses = itertools.count(1)


def stranger(app: Any) -> Browser:
    """A browser from an address of its own, so that no other test's tries count."""
    return browser_for(app, client=(f"198.51.100.{next(_addresses) % 250}", 50000))


def form_posts(browser: Browser, path: str, data: Callable[[], dict[str, Any]]) -> Attempt:
    return lambda: browser.submit(path, data())


async def partner_sign_in(app: Any) -> Attempt:
    account = await make_account()
    browser = stranger(app)
    return form_posts(
        browser, "/aanmelden", lambda: {"email": account.email, "password": "Verkeerd!Wachtwoord1"}
    )


async def staff_sign_in(app: Any) -> Attempt:
    username = await make_staff()
    browser = stranger(app)
    return form_posts(
        browser,
        "/backoffice/aanmelden",
        lambda: {"username": username, "password": "Verkeerd!Wachtwoord1"},
    )


async def staff_code(app: Any) -> Attempt:
    username = await make_staff()
    await enrol(await staff_browser(app, username))
    browser = await password_step(app, username)
    return form_posts(browser, "/backoffice/aanmelden/code", lambda: {"code": "000001"})


async def staff_enrolment(app: Any) -> Attempt:
    browser = await staff_browser(app, await make_staff())
    await browser.get("/backoffice/tweestapsverificatie")
    return form_posts(browser, "/backoffice/tweestapsverificatie", lambda: {"code": "000001"})


def mail_request(path: str, fields: Callable[[str], dict[str, str]]) -> Callable[[Any], Any]:
    async def start(app: Any) -> Attempt:
        # A new mailbox every time: the limit per client address is the one shown here.
        return form_posts(stranger(app), path, lambda: fields(unique_email()))

    return start


async def invitation_code(app: Any) -> Attempt:
    browser = await signed_in_partner(app, with_profile=False)
    return form_posts(browser, "/profiel/koppelen", lambda: {"code": "ABCD-EFGH-JKLM"})


async def client_link(app: Any) -> Attempt:
    existing = await make_client()
    browser = await signed_in_partner(app)
    return form_posts(
        browser,
        "/applicaties/koppelen",
        lambda: {"client_id": existing["client_id"], "client_secret": "niet-het-secret"},
    )


async def access_requests(app: Any) -> Attempt:
    account = await make_account()
    partner = await make_partner(account, listed=False)
    rows = await Application.insert(
        Application(partner=partner["id"], name="Koppeling", status="goedgekeurd")
    )
    await Client.insert(Client(client_id=f"client_{rows[0]['id']}", application=rows[0]["id"]))
    browser = stranger(app)
    await browser.submit("/aanmelden", {"email": account.email, "password": PASSWORD})
    path = f"/applicaties/{rows[0]['id']}/toegang-aanvragen"
    # Ten administrators per request, fifty a day per application.
    return form_posts(
        browser, path, lambda: {"addresses": "\n".join(unique_email("directie") for _ in range(10))}
    )


async def token_requests(app: Any) -> Attempt:
    client = stranger(app)
    return lambda: client.post(
        "/connect/token",
        data={
            "grant_type": "client_credentials",
            "client_id": f"onbekend_{unique_email()}",
            "client_secret": "geraden",
        },
    )


async def introspection(app: Any) -> Attempt:
    client = stranger(app)
    wrong = base64.b64encode(b"leerlingen:geraden").decode()
    return lambda: client.post(
        "/connect/introspect", data={"token": "x"}, headers={"Authorization": f"Basic {wrong}"}
    )


LIMITED = {
    # Each attempt is claimed before it is checked: no more are checked than the limit allows.
    "POST /aanmelden": Probe(5, partner_sign_in),
    "POST /backoffice/aanmelden": Probe(5, staff_sign_in),
    "POST /backoffice/aanmelden/code": Probe(5, staff_code),
    "POST /backoffice/tweestapsverificatie": Probe(5, staff_enrolment),
    "POST /registreren": Probe(20, mail_request("/registreren", registration)),
    "POST /wachtwoord-vergeten": Probe(
        20, mail_request("/wachtwoord-vergeten", lambda email: {"email": email})
    ),
    "POST /activeren-opnieuw": Probe(
        20, mail_request("/activeren-opnieuw", lambda email: {"email": email})
    ),
    "POST /profiel/koppelen": Probe(5, invitation_code),
    "POST /applicaties/koppelen": Probe(5, client_link),
    "POST /applicaties/{application_id:uuid}/toegang-aanvragen": Probe(
        5, access_requests, says_when=False
    ),
    "POST /connect/token": Probe(50, token_requests),
    "POST /connect/introspect": Probe(50, introspection),
}


def routes_of(app: Any) -> set[str]:
    """Every route a form or a client can post to (no route takes PUT, PATCH or DELETE)."""
    return {f"POST {route.path}" for route in app.routes if "POST" in state_changing(route)}


async def test_every_state_changing_route_is_limited_or_says_why_not(app: Any) -> None:
    routes = routes_of(app)
    assert len(routes) > 30, "the sweep sees the whole router"
    assert not set(LIMITED) & set(NO_LIMIT_NEEDED)
    assert sorted(routes - set(LIMITED) - set(NO_LIMIT_NEEDED)) == [], "decide on a limit"
    assert sorted((set(LIMITED) | set(NO_LIMIT_NEEDED)) - routes) == [], "no longer routed"


@pytest.mark.parametrize("route", sorted(LIMITED))
async def test_a_limited_route_refuses_after_a_fixed_number_of_tries(
    app: Any, transaction: None, route: str
) -> None:
    probe = LIMITED[route]
    attempt = await probe.start(app)
    statuses = [(await attempt()).status_code for _ in range(probe.answered)]
    assert 429 not in statuses, statuses
    refused = await attempt()
    assert refused.status_code == 429, route
    if probe.says_when:
        assert int(refused.headers["retry-after"]) > 0
    if "text/html" in refused.headers["content-type"]:
        # The page says so next to the field, in Dutch.
        assert re.search(r"Te veel|nog \d+ aanvragen", refused.text), refused.text[-2000:]


def test_a_route_added_without_a_decision_is_caught(settings: Settings) -> None:
    @post("/profiel/nieuwe-functie")
    async def new_feature() -> str:
        return "done"

    test_app = create_app(settings)
    test_app.register(new_feature)
    undecided = routes_of(test_app) - set(LIMITED) - set(NO_LIMIT_NEEDED)
    assert undecided == {"POST /profiel/nieuwe-functie"}
