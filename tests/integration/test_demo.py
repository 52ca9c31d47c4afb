"""`portal demo` loads partners the directory shows, an account and a linkable client."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from app import demo
from app.applications import service as applications
from app.partners.tables import Partner
from tests.conftest import browser_for

pytestmark = pytest.mark.anyio


async def test_the_demo_is_usable_and_loads_once(client: Any, settings: Any) -> None:
    assert (await demo.load(settings)).created
    assert not (await demo.load(settings)).created
    assert await Partner.count().where(Partner.listed.eq(True)) == len(demo.PARTNERS)
    home = await client.get("/")
    assert "Classroom Cloud" in home.text and "SkillSpire" in home.text
    signed_in = await client.submit(
        "/aanmelden", {"email": demo.DEMO_EMAIL, "password": demo.DEMO_PASSWORD}
    )
    assert signed_in.status_code == 303
    linkable = await applications.check_client(
        demo.LINKABLE_CLIENT, demo.LINKABLE_SECRET, settings, uuid.uuid4(), "127.0.0.1"
    )
    assert linkable.apis == ["leerlingen", "voorinschrijvingen"]
    token = await client.post(
        "/connect/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "plantyn_demo",
            "client_secret": "plantyn-demo-secret-000000",
        },
    )
    assert token.status_code == 200
    staff = browser_for(client._transport.app)  # type: ignore[attr-defined]
    desk = await staff.submit(
        "/backoffice/aanmelden", {"username": demo.HELPDESK, "password": demo.STAFF_PASSWORD}
    )
    assert desk.status_code == 303
    assert "EDULOGO Maaltijden" in (await staff.get("/backoffice/wachtrij")).text
