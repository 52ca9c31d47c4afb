"""CSRF on every state-changing route, enumerated from the router: a route added without
protection fails this test, which a second test shows with a route added to a test app."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from litestar import post
from litestar.routes import HTTPRoute

from app import create_app
from app.config import Settings

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
