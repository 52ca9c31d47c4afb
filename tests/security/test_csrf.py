"""CSRF on every state-changing route, enumerated from the router: a route added without
protection fails this test, which a second test shows with a route added to a test app."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from litestar import get, post
from litestar.datastructures import CacheControlHeader
from litestar.response import Template
from litestar.routes import HTTPRoute

from app import create_app
from app.config import Settings
from app.web.templating import ASSETS
from tests.conftest import browser_for
from tests.factories import PASSWORD, make_partner

pytestmark = pytest.mark.anyio
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Machine-to-machine endpoints: the caller authenticates with client credentials in the
# request itself and no cookie is read, so there is no ambient authority to forge.
CREDENTIAL_ROUTES = frozenset({"/connect/token", "/connect/introspect"})
SAMPLES = {"uuid": str(uuid.uuid4()), "int": "1", "str": "voorbeeld", "path": "x.css"}


def example_path(path: str) -> str:
    return re.sub(r"\{\w+:(\w+)\}", lambda match: SAMPLES[match.group(1)], path)


def state_changing(route: Any) -> frozenset[str]:
    # An ASGI route takes every method.
    return route.methods & STATE_CHANGING if isinstance(route, HTTPRoute) else STATE_CHANGING


async def unprotected_routes(app: Any) -> list[str]:
    """Every state-changing route that answers a form post without a CSRF token with
    anything but 403, except the credential endpoints."""
    found = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for route in app.routes:
            if route.path in CREDENTIAL_ROUTES:
                continue
            for method in sorted(state_changing(route)):
                answer = await client.request(
                    method, example_path(route.path), data={"veld": "waarde"}
                )
                if answer.status_code != 403:
                    found.append(f"{method} {route.path}")
    return found


async def test_every_state_changing_route_needs_the_csrf_token(app: Any) -> None:
    routes = [route for route in app.routes if state_changing(route)]
    assert len(routes) > 30, "the sweep sees the whole router"
    assert await unprotected_routes(app) == []


async def test_the_credential_endpoints_read_no_cookie(app: Any) -> None:
    for route in app.routes:
        if route.path in CREDENTIAL_ROUTES:
            handlers = getattr(route, "route_handlers", None) or [route.route_handler]
            assert all(handler.opt.get("no_session") for handler in handlers)


async def test_a_route_added_without_protection_is_caught(settings: Settings) -> None:
    @post("/test/zonder-csrf", opt={"exclude_from_csrf": True})
    async def careless() -> str:
        return "done"

    test_app = create_app(settings)
    test_app.register(careless)
    assert await unprotected_routes(test_app) == ["POST /test/zonder-csrf"]


# Answers that any visitor, and so a shared cache, may get: none may set a cookie.
PUBLIC_PATHS = (
    "/favicon.ico",
    "/.well-known/openid-configuration",
    "/.well-known/openid-configuration/jwks",
)


async def cookies_on_public_answers(app: Any, paths: list[str]) -> list[str]:
    """Every path whose answer may be cached by a shared cache and still sets a cookie."""
    found = []
    async with browser_for(app) as visitor:
        for path in paths:
            answer = await visitor.get(path)
            caching = answer.headers.get("cache-control", "")
            if "public" in caching and "set-cookie" in answer.headers:
                found.append(path)
    return found


async def public_paths(app: Any) -> list[str]:
    """The site's static files and public answers, and a listed partner's logo."""
    partner = await make_partner(name="Publiek Logo")
    static = sorted(
        "/static/" + str(path.relative_to(ASSETS)) for path in ASSETS.rglob("*") if path.is_file()
    )
    return [*PUBLIC_PATHS, *static[:20], f"/partners/{partner['slug']}/logo"]


async def test_no_public_answer_sets_a_cookie(app: Any, transaction: None) -> None:
    paths = await public_paths(app)
    async with browser_for(app) as visitor:
        for path in paths:
            assert (await visitor.get(path)).status_code == 200, path
    assert await cookies_on_public_answers(app, paths) == []
    async with browser_for(app) as visitor:
        page = await visitor.get("/aanmelden")
    assert "csrftoken=" in page.headers["set-cookie"], "a page with a form does set it"


async def test_a_public_answer_that_sets_a_cookie_is_caught(settings: Settings) -> None:
    @get("/test/publiek-formulier", cache_control=CacheControlHeader(public=True, max_age=60))
    async def careless() -> Template:
        return Template(template_str='<form><input value="{{ csrf_token() }}"></form>')

    test_app = create_app(settings)
    test_app.register(careless)
    found = await cookies_on_public_answers(test_app, ["/test/publiek-formulier"])
    assert found == ["/test/publiek-formulier"]


async def test_the_token_is_bound_to_the_session(app: Any, transaction: None) -> None:
    from tests.security.test_access_control import signed_in_partner

    first, second = await make_partner(name="Eerste BV"), await make_partner(name="Tweede BV")
    one, other = await signed_in_partner(app, first), await signed_in_partner(app, second)
    await one.get("/profiel")
    await other.get("/profiel")
    assert one.csrf_token and other.csrf_token and one.csrf_token != other.csrf_token
    invite = {"_csrf_token": one.csrf_token}
    # The other partner's browser, given the first one's token in the form and in the cookie.
    other.cookies.set("csrftoken", one.csrf_token)
    assert (await other.post("/profiel/uitnodigingen", data=invite)).status_code == 403
    assert (await one.post("/profiel/uitnodigingen", data=invite)).status_code == 201

    # A token from before signing in (an old tab) is refused after it.
    async with browser_for(app) as visitor:
        await visitor.get("/aanmelden")
        before = visitor.csrf_token
        await visitor.submit("/aanmelden", {"email": first["account"].email, "password": PASSWORD})
        assert visitor.csrf_token != before
        old_tab = await visitor.post("/profiel/uitnodigingen", data={"_csrf_token": before})
        assert old_tab.status_code == 403
