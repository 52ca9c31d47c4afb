"""No request holds the event loop: the token endpoint shares its processes with the pages, so a
handler that spends a quarter of a second of CPU on the loop delays every school's integration.

A heartbeat task measures how late the loop wakes it while a request runs. Every POST route is
driven by every identity with large but valid-looking input: each form field near the size a
browser would allow, a list of 50,000 addresses (1 MB) and a 4096 × 4096 logo. A route that
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
from PIL import Image, ImageDraw

from app import create_app
from app.backoffice import service as backoffice
from app.config import Settings
from app.web.forms import Form
from tests.conftest import Browser, browser_for
from tests.factories import make_account, make_partner, make_staff, submit_application
from tests.integration.backoffice.helpers import as_staff, staff_browser
from tests.integration.partners.test_profiles import sign_in_as
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
    """4096 × 4096 pixels in about 100 kB: cheap to send, a quarter of a second to decode."""
    image = Image.new("RGB", (4096, 4096), "#f4f1ea")
    draw = ImageDraw.Draw(image)
    for step in range(0, 4096, 64):
        draw.line((0, step, 4096, 4096 - step), fill="#0b5cad", width=3)
    output = io.BytesIO()
    image.save(output, format="PNG", optimize=True)
    return output.getvalue()


def large_input() -> dict[str, Any]:
    """Every field any form knows, full: long text, and long lists where a list is read."""
    names = {name for form in every_form() for name in form.fields}
    data: dict[str, Any] = dict.fromkeys(names, "Lange maar geldige tekst. " * 400)
    data["addresses"] = "\n".join(f"beheerder{n}@school{n % 97}.be" for n in range(50_000))
    data["email"] = "beheerder@school.be"
    # Lists stay within the 1,000 form parts a request may have.
    data["grant"] = [f"{100000 + n}:leerlingen" for n in range(600)]
    data["apis"] = ["leerlingen", "personeel"] * 100
    data["categories"] = [str(n % 9 + 1) for n in range(100)]
    return data


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


async def post_large(browser: Browser, path: str) -> float:
    if "csrftoken" not in browser.cookies:
        await browser.get("/")
    data = {**large_input(), "_csrf_token": browser.cookies["csrftoken"]}
    files = {"logo": ("logo.png", large_logo(), "image/png")}
    async with loop_watch() as longest:
        answer = await browser.post(path, data=data, files=files)
    assert answer.status_code < 500, f"{path}: {answer.status_code}"
    assert "Bad Request" not in answer.text, f"{path}: the sweep's input must reach the handler"
    return longest[0]


async def stalling_routes(app: Any, people: dict[str, Browser]) -> list[str]:
    """Every (identity, route) whose request held the loop longer than STALL."""
    paths = [
        example_path(route.path)
        for route in app.routes
        if isinstance(route, HTTPRoute) and "POST" in route.methods
    ]
    found = []
    for who, browser in people.items():
        for path in paths:
            if path.endswith("/afmelden"):
                continue  # signing out would end the identity's session for the next routes
            held = await post_large(browser, path)
            if held > STALL:
                found.append(f"{who} POST {path}: {held:.3f} s")
    return found


async def identities(app: Any) -> dict[str, Browser]:
    """Everyone who can post, with an approved application at the sweep's sample id."""
    partner = await make_partner(name="Drukke Partner")
    application_id = await submit_application(partner)
    await backoffice.approve(await as_staff(await make_staff()), application_id)  # type: ignore[arg-type]
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
        held = await post_large(visitor, "/test/logo-op-de-lus")
    assert held > STALL, f"the heartbeat saw only {held:.3f} s"
