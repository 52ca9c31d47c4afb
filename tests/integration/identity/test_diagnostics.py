"""Tokenverkeer: a partner sees why its software's token requests failed, within seconds, and
what it was issued, per API and school. The answer on the wire stays invalid_client or
invalid_scope; nothing presented is stored. These tests commit, since the diagnostics are
written by the process's own writer, on a connection of its own."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import pytest

from app.applications.tables import Application
from app.identity.tables import Client, ClientSecret, ScopeGrant
from app.partners.tables import Partner
from app.staff.tables import AuditEvent
from tests.conftest import Browser
from tests.factories import archive, make_client, make_staff
from tests.integration.applications.test_applications import app_fields, partner_browser
from tests.integration.staff.helpers import staff_browser

pytestmark = pytest.mark.anyio
SCOPE = "api_informat_sas_leerlingen.leerlingen.{}"


async def linked(app: Any) -> tuple[Browser, dict[str, Any], str]:
    browser, _ = await partner_browser(app)
    existing = await make_client(scopes=[("leerlingen", "111111"), ("leerlingen", "222222")])
    await browser.submit(
        "/applicaties/koppelen",
        {
            "step": "2",
            "client_id": existing["client_id"],
            "client_secret": existing["secret"],
            **app_fields(apis=["leerlingen"]),
        },
    )
    row = await Client.select(Client.application).where(Client.id == existing["id"]).first()
    return browser, existing, f"/applicaties/{row['application']}"


async def ask(browser: Browser, client_id: str, secret: str, scope: str = "") -> Any:
    data = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    if scope:
        data["scope"] = scope
    return await browser.post("/connect/token", data=data)


async def shown_within(browser: Browser, path: str, text: str, seconds: float = 2.0) -> str:
    """The page, once it says `text` (the diagnostics are written once a second)."""
    deadline = time.monotonic() + seconds
    while True:
        page = (await browser.get(path)).text
        if text in page or time.monotonic() > deadline:
            assert text in page, f"{text!r} not on the page within {seconds} s"
            return page
        await asyncio.sleep(0.2)


async def test_every_cause_is_explained_within_two_seconds(app: Any, committed: None) -> None:
    browser, existing, path = await linked(app)
    client_id, secret = existing["client_id"], existing["secret"]
    presented = []

    # A wrong secret.
    presented.append("helemaal-fout-0123456789")
    assert (await ask(browser, client_id, presented[-1])).json() == {"error": "invalid_client"}
    await shown_within(browser, path, "Verkeerde client secret")

    # An expired secret, named.
    expired = await make_named_secret(existing["id"], "oud-geheim-0123456789", "Zz91", expired=True)
    presented.append(expired)
    assert (await ask(browser, client_id, expired)).json() == {"error": "invalid_client"}
    await shown_within(browser, path, "Verlopen secret …Zz91")

    # A revoked secret, named.
    revoked = await make_named_secret(
        existing["id"], "ingetrokken-0123456789", "Rv42", revoked=True
    )
    presented.append(revoked)
    assert (await ask(browser, client_id, revoked)).json() == {"error": "invalid_client"}
    await shown_within(browser, path, "Ingetrokken secret …Rv42")

    # A scope a school withdrew: which school, and when.
    await ScopeGrant.delete().where(
        (ScopeGrant.client == existing["id"]) & (ScopeGrant.institution_number == "222222")
    )
    application = (
        await Application.select(Application.id, Application.partner)
        .where(Application.id == path.rsplit("/", 1)[1])
        .first()
    )
    await AuditEvent.insert(
        AuditEvent(
            actor="beheerder",
            action="removed",
            partner=application["partner"],
            application=application["id"],
            institution_number="222222",
            detail={"api": "leerlingen"},
        )
    )
    refused = await ask(browser, client_id, secret, SCOPE.format("222222"))
    assert refused.json() == {"error": "invalid_scope"}
    await shown_within(browser, path, "Leerlingen voor school 222222, ingetrokken door de school")

    # Issued tokens are counted per API and school (written every ten seconds; here at once).
    assert (await ask(browser, client_id, secret)).status_code == 200
    await app.state.tokens.diagnostics.write()
    page = await shown_within(browser, path, "Tokens uitgereikt in de laatste 30 dagen: 1.")
    assert "111111" in page

    # Blocked after too many failures, until when.
    for n in range(25):
        last = await ask(browser, client_id, f"fout-{n}-0123456789")
    assert last.status_code == 429 and last.json() == {"error": "invalid_client"}
    await shown_within(browser, path, "Geblokkeerd na te veel mislukte pogingen, tot")

    # The application archived; and the helpdesk sees the same.
    await archive(application["id"])
    await asyncio.sleep(1.1)  # the client's memory hears of it
    await ask(browser, client_id, secret)
    await shown_within(browser, path, "De applicatie is gearchiveerd.")
    desk = await staff_browser(app, await make_staff())
    review = await desk.get(f"/backoffice/applicaties/{application['id']}")
    assert "Tokenverkeer" in review.text and "De applicatie is gearchiveerd." in review.text

    # Nothing presented is kept, on the page or in the database.
    stored = await Client.raw(
        "SELECT string_agg(f::text, ' ') AS everything FROM token_failure f WHERE client = {}",
        existing["id"],
    )
    for value in presented:
        assert value not in stored[0]["everything"] and value not in page


async def make_named_secret(
    client_pk: int, value: str, hint: str, *, expired: bool = False, revoked: bool = False
) -> str:
    from app.identity.service import secret_hash

    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    await ClientSecret.insert(
        ClientSecret(
            client=client_pk,
            value_hash=secret_hash(value),
            hint=hint,
            expires_at=past if expired else None,
            revoked_at=past if revoked else None,
        )
    )
    return value


async def test_a_deactivated_partner_is_named_as_the_cause(app: Any, committed: None) -> None:
    browser, existing, path = await linked(app)
    await Partner.update({Partner.active: False}).where(Partner.id.is_not_null())
    await asyncio.sleep(1.1)
    assert (await ask(browser, existing["client_id"], existing["secret"])).status_code == 400
    await Partner.update({Partner.active: True}).where(Partner.id.is_not_null())
    await shown_within(browser, path, "Het partnerprofiel is gedeactiveerd.")


async def test_a_disabled_client_and_an_application_not_approved_are_named(
    app: Any, committed: None
) -> None:
    browser, existing, path = await linked(app)
    await Client.update({Client.enabled: False}).where(Client.id == existing["id"])
    await asyncio.sleep(1.1)  # the client's memory hears of it
    assert (await ask(browser, existing["client_id"], existing["secret"])).status_code == 400
    await shown_within(browser, path, "De client is uitgeschakeld.")
    await Client.update({Client.enabled: True}).where(Client.id == existing["id"])
    await Application.update({Application.status: "geweigerd"}).where(
        Application.id == path.rsplit("/", 1)[1]
    )
    await asyncio.sleep(1.1)
    assert (await ask(browser, existing["client_id"], existing["secret"])).status_code == 400
    await shown_within(browser, path, "De applicatie is niet goedgekeurd.")
