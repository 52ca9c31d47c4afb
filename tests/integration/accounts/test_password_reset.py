"""Wachtwoord vergeten: single-use link valid one hour; a reset signs out every session."""

from __future__ import annotations

import time

import pytest

from app.accounts.tables import Account
from app.web.tables import WebSession
from tests.conftest import Browser, browser_for, links_in
from tests.factories import PASSWORD, last_mail, mails_to, make_account, path_of, unique_email

pytestmark = pytest.mark.anyio
NEW_PASSWORD = "Nieuw#Wachtwoord42"


async def reset_link(client: Browser, email: str) -> str:
    await client.submit("/wachtwoord-vergeten", {"email": email})
    mail = await last_mail(email)
    assert mail["subject"] == "Informat — Kies een nieuw wachtwoord"
    return path_of(links_in(str(mail["text"]))[0])


async def test_reset_sets_the_new_password_and_signs_out_everywhere(
    client: Browser, app: object
) -> None:
    account = await make_account()
    elsewhere = browser_for(app)
    await elsewhere.submit("/aanmelden", {"email": account.email, "password": PASSWORD})
    assert (await elsewhere.get("/profiel/kiezen")).status_code == 200

    link = await reset_link(client, account.email)
    form = await client.get(link)
    assert form.status_code == 200 and account.email in form.text
    done = await client.submit(link, {"password": NEW_PASSWORD, "password_repeat": NEW_PASSWORD})

    assert done.headers["location"] == "/aanmelden?melding=wachtwoord-gewijzigd"
    assert (await elsewhere.get("/profiel/kiezen")).status_code == 303
    assert await WebSession.count().where(WebSession.account_id == account.id) == 0
    signed_in = await client.submit(
        "/aanmelden", {"email": account.email, "password": NEW_PASSWORD}
    )
    assert signed_in.status_code == 303
    old = await client.submit("/aanmelden", {"email": account.email, "password": PASSWORD})
    assert old.status_code == 422
    assert (await client.get(link)).status_code == 410, "the link works once"


async def test_reset_link_expires_after_an_hour(client: Browser) -> None:
    account = await make_account()
    link = await reset_link(client, account.email)
    await Account.raw("UPDATE account_token SET expires_at = now() - interval '1 second'")
    response = await client.submit(
        link, {"password": NEW_PASSWORD, "password_repeat": NEW_PASSWORD}
    )
    assert response.status_code == 410
    assert "Deze link is verlopen." in response.text


async def test_reset_for_an_unknown_address_looks_like_a_known_one(client: Browser) -> None:
    account = await make_account()

    async def ask(email: str) -> tuple[float, int, str]:
        start = time.perf_counter()
        response = await client.submit("/wachtwoord-vergeten", {"email": email})
        return time.perf_counter() - start, response.status_code, response.headers["location"]

    known = await ask(account.email)
    unknown_email = unique_email()
    unknown = await ask(unknown_email)
    assert known[1:] == unknown[1:] == (303, "/wachtwoord-vergeten/verstuurd")
    assert known[0] < 0.5 and unknown[0] < 0.5, "both answer at once"
    assert await mails_to(unknown_email) == []


async def test_reset_activates_an_account_that_never_was(client: Browser) -> None:
    account = await make_account(active=False)
    link = await reset_link(client, account.email)
    await client.submit(link, {"password": NEW_PASSWORD, "password_repeat": NEW_PASSWORD})
    signed_in = await client.submit(
        "/aanmelden", {"email": account.email, "password": NEW_PASSWORD}
    )
    assert signed_in.status_code == 303


async def test_new_password_follows_the_rules(client: Browser) -> None:
    account = await make_account()
    link = await reset_link(client, account.email)
    response = await client.submit(link, {"password": "zwak", "password_repeat": "zwak"})
    assert response.status_code == 422
    assert "Gebruik minstens 8 karakters." in response.text
    assert (await client.get(link)).status_code == 200, "a refused form does not use the link"
