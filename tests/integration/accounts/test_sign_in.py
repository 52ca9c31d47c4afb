"""Aanmelden, Afmelden, sessions and the slowing down of repeated failures."""

from __future__ import annotations

import pytest

from app.web.tables import WebSession
from tests.conftest import Browser
from tests.factories import PASSWORD, make_account, unique_email

pytestmark = pytest.mark.anyio


async def sign_in(client: Browser, email: str, password: str = PASSWORD, **extra: str):  # type: ignore[no-untyped-def]
    return await client.submit("/aanmelden", {"email": email, "password": password, **extra})


async def test_sign_in_starts_a_session_and_sign_out_ends_it(client: Browser) -> None:
    account = await make_account()
    response = await sign_in(client, account.email)

    assert response.status_code == 303
    assert response.headers["location"] == "/partnerzone"
    cookie = response.headers["set-cookie"]
    assert "portal_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    home = await client.get("/partnerzone")
    assert home.headers["location"] == "/profiel/kiezen", "no profile yet: the manual's choice"
    choice = await client.get("/profiel/kiezen")
    assert choice.status_code == 200 and account.email in choice.text

    await client.submit("/afmelden")
    assert await WebSession.count().where(WebSession.account_id == account.id) == 0
    after = await client.get("/partnerzone")
    assert after.status_code == 303
    assert after.headers["location"] == "/aanmelden?next=%2Fpartnerzone"


async def test_a_planted_session_id_is_replaced_at_sign_in(client: Browser) -> None:
    account = await make_account()
    client.cookies.set("portal_session", "planted-by-an-attacker", domain="testserver.local")
    await sign_in(client, account.email)

    assert client.cookies["portal_session"] != "planted-by-an-attacker"
    assert (await client.get("/profiel/kiezen")).status_code == 200


async def test_session_id_differs_per_sign_in(client: Browser) -> None:
    account = await make_account()
    await sign_in(client, account.email)
    first = client.cookies["portal_session"]
    await sign_in(client, account.email)
    assert client.cookies["portal_session"] != first
    assert await WebSession.count().where(WebSession.account_id == account.id) == 1


async def test_sign_in_returns_to_the_page_asked_for_but_never_elsewhere(client: Browser) -> None:
    account = await make_account()
    response = await sign_in(client, account.email, next="/partnerzone?tab=1")
    assert response.headers["location"] == "/partnerzone?tab=1"
    await client.submit("/afmelden")
    response = await sign_in(client, account.email, next="//evil.example/")
    assert response.headers["location"] == "/partnerzone"


async def test_wrong_password_and_unknown_address_get_the_same_answer(client: Browser) -> None:
    account = await make_account()
    wrong = await sign_in(client, account.email, "Verkeerd!Wachtwoord1")
    unknown = await sign_in(client, unique_email(), "Verkeerd!Wachtwoord1")

    assert wrong.status_code == unknown.status_code == 422
    message = "Het e-mailadres of wachtwoord is niet correct."
    assert message in wrong.text and message in unknown.text


async def test_an_inactive_account_is_asked_to_activate(client: Browser) -> None:
    account = await make_account(active=False)
    response = await sign_in(client, account.email)
    assert response.status_code == 422
    assert "Je account is nog niet geactiveerd." in response.text
    assert 'action="/activeren-opnieuw"' in response.text


async def test_repeated_failures_slow_down_that_account(client: Browser) -> None:
    account = await make_account()
    for _ in range(6):
        await sign_in(client, account.email, "Verkeerd!Wachtwoord1")

    blocked = await sign_in(client, account.email)  # even the right password waits
    assert blocked.status_code == 429
    assert "Te veel mislukte aanmeldpogingen. Probeer opnieuw over 1 minuut." in blocked.text
    assert 0 < int(blocked.headers["retry-after"]) <= 30

    other = await make_account()
    assert (await sign_in(client, other.email)).status_code == 303, "other accounts still work"


async def test_the_block_is_short_and_lifts(client: Browser) -> None:
    from app.throttle import Throttle

    account = await make_account()
    for _ in range(6):
        await sign_in(client, account.email, "Verkeerd!Wachtwoord1")
    await Throttle.raw("UPDATE throttle SET blocked_until = now() - interval '1 second'")
    assert (await sign_in(client, account.email)).status_code == 303


async def test_many_failures_from_one_address_block_that_address(client: Browser) -> None:
    for _ in range(31):
        await sign_in(client, unique_email(), "Verkeerd!Wachtwoord1")
    account = await make_account()
    assert (await sign_in(client, account.email)).status_code == 429


async def test_idle_and_expired_sessions_are_refused(client: Browser) -> None:
    account = await make_account()
    await sign_in(client, account.email)
    await WebSession.raw("UPDATE web_session SET last_seen_at = now() - interval '3 hours'")
    assert (await client.get("/profiel/kiezen")).status_code == 303

    await sign_in(client, account.email)
    await WebSession.raw("UPDATE web_session SET expires_at = now() - interval '1 second'")
    assert (await client.get("/profiel/kiezen")).status_code == 303


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("geactiveerd", "Je account is geactiveerd."),
        ("afgemeld", "Je bent afgemeld."),
        ("wachtwoord-gewijzigd", "Je wachtwoord is gewijzigd."),
    ],
)
async def test_the_sign_in_page_confirms_what_just_happened(
    client: Browser, key: str, message: str
) -> None:
    response = await client.get(f"/aanmelden?melding={key}")
    assert message in response.text
    assert 'role="status"' in response.text
