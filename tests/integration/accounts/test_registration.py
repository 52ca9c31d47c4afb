"""Registreren (manual §3.1): form rules, activation mail, no user enumeration."""

from __future__ import annotations

import re
import time

import anyio
import pytest

from app.accounts.tables import Account
from tests.conftest import Browser, links_in
from tests.factories import PASSWORD, last_mail, mails_to, make_account, path_of, unique_email

pytestmark = pytest.mark.anyio


def registration(
    email: str, password: str = PASSWORD, repeat: str | None = None, terms: bool = True
) -> dict[str, str]:
    data = {
        "email": email,
        "password": password,
        "password_repeat": password if repeat is None else repeat,
    }
    if terms:
        data["terms"] = "yes"
    return data


async def test_registering_creates_an_inactive_account_and_mails_the_activation_link(
    client: Browser,
) -> None:
    email = unique_email()
    response = await client.submit("/registreren", registration(email.upper()))

    assert response.status_code == 303
    assert response.headers["location"] == "/registreren/controleer-je-mailbox"
    account = await Account.objects().where(Account.email == email).first()
    assert account is not None and account.activated_at is None
    assert account.password_hash.startswith("$argon2id$")
    mail = await last_mail(email)
    assert mail["subject"] == "Informat — Activeer je partneraccount"
    assert mail["sender"] == "Informat <info@informat.be>"
    assert "/activeren/" in str(mail["html"]) and "/activeren/" in str(mail["text"])


async def test_activation_link_works_once_then_offers_a_new_one(client: Browser) -> None:
    email = unique_email()
    await client.submit("/registreren", registration(email))
    link = path_of(
        next(u for u in links_in(str((await last_mail(email))["text"])) if "/activeren/" in u)
    )

    page = await client.get(link)
    assert page.status_code == 200 and "Activeer mijn account" in page.text
    assert page.headers["cache-control"] == "no-store"
    activated = await client.submit(link)
    assert activated.headers["location"] == "/aanmelden?melding=geactiveerd"
    account = await Account.objects().where(Account.email == email).first()
    assert account is not None and account.activated_at is not None

    again = await client.get(link)
    assert again.status_code == 410
    assert "Deze link werd al gebruikt." in again.text
    assert 'action="/activeren-opnieuw"' in again.text


async def test_expired_activation_link_is_refused(client: Browser) -> None:
    email = unique_email()
    await client.submit("/registreren", registration(email))
    link = path_of(links_in(str((await last_mail(email))["text"]))[0])
    await Account.raw("UPDATE account_token SET expires_at = now() - interval '1 second'")

    response = await client.submit(link)

    assert response.status_code == 410
    assert "Deze link is verlopen." in response.text
    account = await Account.objects().where(Account.email == email).first()
    assert account is not None and account.activated_at is None


async def test_a_new_activation_link_can_be_requested(client: Browser) -> None:
    email = unique_email()
    await client.submit("/registreren", registration(email))
    response = await client.submit("/activeren-opnieuw", {"email": email})
    assert response.headers["location"] == "/registreren/controleer-je-mailbox"
    assert len(await mails_to(email)) == 2


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("Kort!1a", "Gebruik minstens 8 karakters."),
        ("geenhoofdletter!1", "Gebruik minstens één hoofdletter."),
        ("GEENKLEINE!1", "Gebruik minstens één kleine letter."),
        ("GeenCijfer!!", "Gebruik minstens één cijfer."),
        ("GeenSpeciaal12", "Gebruik minstens één speciaal teken"),
        ("P@ssw0rd", "Dit wachtwoord komt te vaak voor"),
    ],
)
async def test_each_password_rule_is_explained_next_to_the_field(
    client: Browser, password: str, message: str
) -> None:
    email = unique_email()
    response = await client.submit("/registreren", registration(email, password))

    assert response.status_code == 422
    error = re.search(r'<p class="field-error" id="password-error">(.*?)</p>', response.text, re.S)
    assert error and message in error.group(1)
    assert 'aria-describedby="password-hint password-error"' in response.text
    assert f'value="{email}"' in response.text, "the e-mail address stays in the form"
    assert password not in response.text, "passwords are never sent back"
    assert await Account.count().where(Account.email == email) == 0


async def test_long_passphrases_are_accepted_unchanged(client: Browser) -> None:
    email = unique_email()
    passphrase = "Een lange zin als wachtwoord, met 1 cijfer! " * 3
    assert len(passphrase) > 128
    await client.submit("/registreren", registration(email, passphrase))
    account = await Account.objects().where(Account.email == email).first()
    assert account is not None
    from app.accounts.passwords import verify_password

    assert await verify_password(account.password_hash, passphrase)
    assert not await verify_password(account.password_hash, passphrase.strip())


async def test_mismatch_unticked_terms_and_bad_address_each_get_their_message(
    client: Browser,
) -> None:
    response = await client.submit(
        "/registreren", registration("geen-adres", repeat="Iets!Anders99", terms=False)
    )

    assert response.status_code == 422
    text = response.text
    assert "Geef een geldig e-mailadres in" in text
    assert "De wachtwoorden komen niet overeen." in text
    assert "Je moet akkoord gaan met de voorwaarden en het privacybeleid." in text
    assert 'value="geen-adres"' in text


async def test_the_form_speaks_english_when_chosen(client: Browser) -> None:
    await client.submit("/taal", {"language": "en", "next": "/registreren"})
    response = await client.submit("/registreren", registration("nope", "short"))

    assert 'lang="en"' in response.text
    assert "Enter a valid e-mail address" in response.text
    assert "Use at least 8 characters." in response.text
    assert 'value="nope"' in response.text


async def test_htmx_submission_gets_only_the_form_fragment(client: Browser) -> None:
    response = await client.submit(
        "/registreren",
        registration("nope"),
        headers={"HX-Request": "true", "HX-Target": "register_form"},
    )

    assert response.status_code == 422
    assert response.text.lstrip().startswith('<section id="register_form">')
    assert "<html" not in response.text
    assert "HX-Request" in response.headers["vary"]


async def test_htmx_success_navigates_the_whole_page(client: Browser) -> None:
    response = await client.submit(
        "/registreren",
        registration(unique_email()),
        headers={"HX-Request": "true", "HX-Target": "register_form"},
    )
    assert response.status_code == 204
    assert response.headers["hx-redirect"] == "/registreren/controleer-je-mailbox"


async def test_registering_an_existing_address_looks_the_same_and_warns_the_owner(
    client: Browser, real_password_hashing: None
) -> None:
    owner = await make_account()
    new_email = unique_email()

    async def timed(email: str) -> tuple[float, int, str, dict[str, str]]:
        start = time.perf_counter()
        response = await client.submit("/registreren", registration(email))
        elapsed = time.perf_counter() - start
        headers = {k: v for k, v in response.headers.items() if k not in {"date"}}
        return elapsed, response.status_code, response.text, headers

    existing = await timed(owner.email)
    fresh = await timed(new_email)

    assert existing[1:] == fresh[1:], "status, body and headers are identical"
    assert 0.5 < existing[0] / fresh[0] < 2, "both take an argon2 hash's time"
    warning = await last_mail(owner.email)
    assert warning["subject"] == "Informat — Iemand probeerde te registreren met je e-mailadres"
    assert await Account.count().where(Account.email == owner.email) == 1


async def test_two_registrations_of_one_address_at_once_make_one_account(
    committed_client: Browser,
) -> None:
    email = unique_email()
    await committed_client.get("/")
    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(committed_client.submit, "/registreren", registration(email))
    assert await Account.count().where(Account.email == email) == 1
    subjects = sorted(str(mail["subject"]) for mail in await mails_to(email))
    assert (
        subjects
        == ["Informat — Activeer je partneraccount"]
        + ["Informat — Iemand probeerde te registreren met je e-mailadres"] * 3
    )


async def test_one_network_cannot_flood_the_portal_with_mail_requests(client: Browser) -> None:
    for _ in range(20):
        response = await client.submit("/registreren", registration(unique_email()))
        assert response.status_code == 303
    refused = await client.submit("/registreren", registration(unique_email()))
    assert refused.status_code == 429
    assert "Te veel aanvragen vanaf je netwerk." in refused.text
    assert int(refused.headers["retry-after"]) > 0


async def test_one_mailbox_gets_at_most_five_requested_mails_an_hour(client: Browser) -> None:
    owner = await make_account()
    for _ in range(8):
        response = await client.submit("/wachtwoord-vergeten", {"email": owner.email})
        assert response.status_code == 303, "the answer never changes"
    assert len(await mails_to(owner.email)) == 5
