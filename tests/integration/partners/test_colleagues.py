"""Gebruiker koppelen (manual §3.2.2): invitation codes valid five days, revocable, hashed."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from app.accounts.tables import Account
from app.crypto import token_hash
from app.partners.service import normalise_code
from app.partners.tables import InvitationCode
from tests.conftest import Browser, browser_for
from tests.factories import PASSWORD, make_account, make_partner

pytestmark = pytest.mark.anyio


async def signed_in(app: object, account: Account) -> Browser:
    browser = browser_for(app)
    response = await browser.submit("/aanmelden", {"email": account.email, "password": PASSWORD})
    assert response.status_code == 303
    return browser


async def new_code(browser: Browser) -> str:
    response = await browser.submit("/profiel/uitnodigingen")
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    found = re.search(r'<code id="invitation-code" class="code">([A-Z0-9-]+)</code>', response.text)
    assert found, "the code is shown once"
    return found.group(1)


async def test_a_colleague_joins_with_the_code_and_both_see_the_profile(
    app: object, transaction: None
) -> None:
    partner = await make_partner(name="Samen BV")
    owner = await signed_in(app, partner["account"])
    code = await new_code(owner)
    stored = await InvitationCode.objects().first()
    assert stored is not None
    assert stored.code_hash == token_hash(normalise_code(code)), "only the hash is kept"
    assert abs(stored.expires_at - stored.created_at - dt.timedelta(days=5)) < dt.timedelta(
        seconds=1
    )
    assert code.replace("-", "") not in str(stored.code_hash)

    colleague = await make_account()
    browser = await signed_in(app, colleague)
    response = await browser.submit("/profiel/koppelen", {"code": code.lower().replace("-", " ")})
    assert response.headers["location"] == "/profiel?melding=gekoppeld"
    for viewer in (owner, browser):
        page = await viewer.get("/profiel")
        assert "Samen BV" in page.text
        assert partner["account"].email in page.text and colleague.email in page.text


async def test_htmx_gets_only_the_invitation_fragment(app: object, transaction: None) -> None:
    partner = await make_partner()
    owner = await signed_in(app, partner["account"])
    response = await owner.submit(
        "/profiel/uitnodigingen", headers={"HX-Request": "true", "HX-Target": "invite"}
    )
    assert response.text.lstrip().startswith('<div id="invite"')
    assert 'data-copy="#invitation-code"' in response.text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            "UPDATE invitation_code SET expires_at = now() - interval '1 second'",
            "Deze uitnodigingscode is verlopen.",
        ),
        (
            "UPDATE invitation_code SET revoked_at = now()",
            "Deze uitnodigingscode werd ingetrokken.",
        ),
        (None, "Deze uitnodigingscode is niet geldig."),
    ],
    ids=["expired", "revoked", "unknown"],
)
async def test_unusable_codes_are_refused_with_a_reason(
    app: object, transaction: None, change: str | None, message: str
) -> None:
    partner = await make_partner()
    code = await new_code(await signed_in(app, partner["account"]))
    if change:
        await InvitationCode.raw(change)
    else:
        code = "AAAA-BBBB-CCCC"
    colleague = await make_account()
    browser = await signed_in(app, colleague)
    response = await browser.submit("/profiel/koppelen", {"code": code})
    assert response.status_code == 422
    assert message in response.text
    linked = await Account.select(Account.partner).where(Account.id == colleague.id).first()
    assert linked["partner"] is None


async def test_a_code_older_than_five_days_is_refused(app: object, transaction: None) -> None:
    partner = await make_partner()
    code = await new_code(await signed_in(app, partner["account"]))
    await InvitationCode.raw(
        "UPDATE invitation_code SET created_at = now() - interval '5 days 1 minute',"
        " expires_at = now() - interval '1 minute'"
    )
    browser = await signed_in(app, await make_account())
    response = await browser.submit("/profiel/koppelen", {"code": code})
    assert "Deze uitnodigingscode is verlopen." in response.text


async def test_an_account_already_linked_cannot_link_a_second_profile(
    app: object, transaction: None
) -> None:
    first = await make_partner()
    second = await make_partner()
    code = await new_code(await signed_in(app, second["account"]))
    browser = await signed_in(app, first["account"])
    assert (await browser.get("/profiel/koppelen")).headers["location"] == "/profiel"
    response = await browser.submit("/profiel/koppelen", {"code": code})
    assert response.status_code == 409
    assert "Je account is al aan een partnerprofiel gekoppeld." in response.text
    linked = await Account.select(Account.partner).where(Account.id == first["account"].id).first()
    assert linked["partner"] == first["id"]


async def test_guessing_codes_is_slowed_down(app: object, transaction: None) -> None:
    browser = await signed_in(app, await make_account())
    for attempt in range(5):  # the limit: no more are checked
        response = await browser.submit("/profiel/koppelen", {"code": f"AAAA-BBBB-CC{attempt:02d}"})
    assert response.status_code == 422
    blocked = await browser.submit("/profiel/koppelen", {"code": "AAAA-BBBB-CCCC"})
    assert blocked.status_code == 429
    assert "Te veel foute codes." in blocked.text


async def test_codes_can_be_revoked_only_by_their_own_profile(
    app: object, transaction: None
) -> None:
    mine = await make_partner()
    other = await make_partner()
    await new_code(await signed_in(app, mine["account"]))
    code = await InvitationCode.objects().first()
    assert code is not None
    intruder = await signed_in(app, other["account"])
    await intruder.submit(f"/profiel/uitnodigingen/{code.id}/intrekken")
    assert (await InvitationCode.objects().first()).revoked_at is None  # type: ignore[union-attr]
    owner = await signed_in(app, mine["account"])
    response = await owner.submit(f"/profiel/uitnodigingen/{code.id}/intrekken")
    assert response.headers["location"].startswith("/profiel?melding=ingetrokken")
    assert (await InvitationCode.objects().first()).revoked_at is not None  # type: ignore[union-attr]
