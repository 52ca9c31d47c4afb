"""No request holds the event loop: the token endpoint shares its processes with the pages, so a
handler that spends a quarter of a second of CPU on the loop delays every school's integration.

A heartbeat task measures how late the loop wakes it while a request runs. Every POST route is
driven by every identity with large but valid-looking input: once within the 256 kB a form may
send (every field full, 2,000 addresses, a 4096 × 4096 logo) so that it reaches the handler, and
once far beyond it (50,000 addresses, 1 MB), which must be refused as cheaply. A route that
holds the loop longer than `STALL` fails the sweep, which a second test shows with a route
added to a test app that decodes an image on the loop.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

import pytest
from litestar import post
from litestar.routes import HTTPRoute
from PIL import Image

from app import create_app
from app.config import Settings, get_settings
from app.helpdesk import service as helpdesk_service
from app.server import FORM_BODY_LIMIT
from app.web.forms import Form
from tests.conftest import Browser, browser_for
from tests.factories import large_png, make_account, make_partner, make_staff, submit_application
from tests.integration.partners.test_profiles import sign_in_as
from tests.integration.staff.helpers import as_staff, staff_browser
from tests.security.test_access_control import signed_in_partner
from tests.security.test_csrf import SAMPLES, example_path

pytestmark = pytest.mark.anyio
# The longest the loop may be held by one request. Decoding the logo below takes 0.25 s or more.
STALL = 0.1
BEAT = 0.002


def every_form(base: type[Form] = Form) -> list[type[Form]]:
    found = []
    for subclass in base.__subclasses__():
        found += [subclass, *every_form(subclass)]
    return found


@cache
def large_logo() -> bytes:
    return large_png()


def large_input(addresses: int, text: int) -> dict[str, Any]:
    """Every field any form knows, full: long text, and long lists where a list is read."""
    names = {name for form in every_form() for name in form.fields}
    data: dict[str, Any] = dict.fromkeys(names, ("Lange maar geldige tekst. " * 400)[:text])
    data["addresses"] = "\n".join(f"beheerder{n}@school{n % 97}.be" for n in range(addresses))
    data["email"] = "beheerder@school.be"
    # Lists stay within the 1,000 form parts a request may have.
    data["grant"] = [f"{100000 + n}:leerlingen" for n in range(300)]
    data["apis"] = ["leerlingen", "personeel"] * 50
    data["categories"] = [str(n % 9 + 1) for n in range(50)]
    return data


# Within the 256 kB a form may send, so that it reaches the handler; and far beyond it (1 MB of
# addresses), which must be refused as cheaply.
WITHIN_LIMITS = {"addresses": 2_000, "text": 1_500}
OVERSIZED = {"addresses": 50_000, "text": 10_000}


@asynccontextmanager
async def loop_watch() -> AsyncIterator[list[float]]:
    """The longest time the loop kept a waiting task waiting, in seconds (as a one-item list)."""
    longest = [0.0]
    done = asyncio.Event()

    async def heartbeat() -> None:
        while not done.is_set():
            started = time.perf_counter()
            await asyncio.sleep(BEAT)
            longest[0] = max(longest[0], time.perf_counter() - started - BEAT)

    beating = asyncio.create_task(heartbeat())
    await asyncio.sleep(0)
    try:
        yield longest
    finally:
        done.set()
        await beating


async def post_large(
    browser: Browser, path: str, size: dict[str, int], limit: int = FORM_BODY_LIMIT
) -> float:
    if browser.csrf_token is None:
        await browser.get("/")
    data = {**large_input(**size), "_csrf_token": browser.csrf_token}
    files = {"logo": ("logo.png", large_logo(), "image/png")}
    async with loop_watch() as longest:
        answer = await browser.post(path, data=data, files=files)
    assert answer.status_code < 500, f"{path}: {answer.status_code}"
    if size is WITHIN_LIMITS and limit >= FORM_BODY_LIMIT:
        assert answer.status_code != 413, f"{path}: the sweep's input must reach the handler"
        assert "Bad Request" not in answer.text, f"{path}: the sweep's input must be readable"
    return longest[0]


async def stalling_routes(app: Any, people: dict[str, Browser]) -> list[str]:
    """Every (identity, route) whose request held the loop longer than STALL."""
    routes = [
        (example_path(route.path), handler.resolve_request_max_body_size() or FORM_BODY_LIMIT)
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
        if "POST" in handler.http_methods
    ]
    found = []
    for who, browser in people.items():
        for path, limit in routes:
            if path.endswith("/afmelden"):
                continue  # signing out would end the identity's session for the next routes
            for size in (WITHIN_LIMITS, OVERSIZED):
                held = await post_large(browser, path, size, limit)
                if held > STALL:
                    label = "within limits" if size is WITHIN_LIMITS else "oversized"
                    found.append(f"{who} POST {path} ({label}): {held:.3f} s")
    return found


async def identities(app: Any) -> dict[str, Browser]:
    """Everyone who can post, with an approved application at the sweep's sample id."""
    partner = await make_partner(name="Drukke Partner")
    application_id = await submit_application(partner)
    staff = await as_staff(await make_staff())
    await helpdesk_service.approve(staff, application_id, get_settings())  # type: ignore[arg-type]
    SAMPLES["uuid"] = str(application_id)
    newcomer = browser_for(app)
    await sign_in_as(newcomer, await make_account())
    return {
        "visitor": browser_for(app),
        "account without a profile": newcomer,
        "partner": await signed_in_partner(app, partner),
        "helpdesk": await staff_browser(app, await make_staff()),
        "school administrator": await staff_browser(
            app, await make_staff("school-admin", [("314159", ["leerlingen"])])
        ),
    }


async def test_no_post_route_holds_the_event_loop(app: Any, transaction: None) -> None:
    original = SAMPLES["uuid"]
    try:
        people = await identities(app)
        assert len([r for r in app.routes if "POST" in getattr(r, "methods", ())]) > 30
        assert await stalling_routes(app, people) == []
    finally:
        SAMPLES["uuid"] = original


async def test_a_route_that_holds_the_loop_is_caught(settings: Settings) -> None:
    @post("/test/logo-op-de-lus")
    async def careless() -> str:
        Image.open(io.BytesIO(large_logo())).convert("RGBA").thumbnail((512, 512))
        return "klaar"

    test_app = create_app(settings)
    test_app.register(careless)
    async with browser_for(test_app) as visitor:
        held = await post_large(visitor, "/test/logo-op-de-lus", WITHIN_LIMITS)
    assert held > STALL, f"the heartbeat saw only {held:.3f} s"


async def test_a_body_larger_than_the_form_takes_is_refused_unread(
    app: Any, transaction: None
) -> None:
    original = SAMPLES["uuid"]
    try:
        partner = (await identities(app))["partner"]
        access = f"/applicaties/{SAMPLES['uuid']}/toegang-aanvragen"
    finally:
        SAMPLES["uuid"] = original
    addresses = "\n".join(f"beheerder{n}@school{n % 97}.be" for n in range(50_000))
    for path, body in ((access, addresses), ("/applicaties/nieuw", "x" * 300_000)):
        answer = await partner.submit(path, {"addresses": body, "description": body})
        assert answer.status_code == 413, path
        assert "Te veel verstuurd" in answer.text, "the error page, in Dutch"
