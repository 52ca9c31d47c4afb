"""Cross-cutting web behaviour: CSRF, security headers, sessions in production, errors."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from app.config import Settings
from tests.conftest import Browser, browser_for
from tests.factories import PASSWORD, make_account

pytestmark = pytest.mark.anyio

FORMS = [
    "/registreren",
    "/aanmelden",
    "/afmelden",
    "/wachtwoord-vergeten",
    "/taal",
    "/activeren-opnieuw",
    "/activeren/abc",
    "/wachtwoord-herstellen/abc",
]


@pytest.mark.parametrize("path", FORMS)
async def test_a_post_without_csrf_token_is_refused(client: Browser, path: str) -> None:
    await client.get("/")
    response = await client.post(path, data={"email": "a@b.be"})
    assert response.status_code == 403
    assert "Deze actie was niet toegestaan" in response.text


async def test_a_post_with_a_forged_token_is_refused(client: Browser) -> None:
    await client.get("/")
    response = await client.post("/aanmelden", data={"_csrf_token": "forged", "email": "a@b.be"})
    assert response.status_code == 403


async def test_htmx_requests_send_the_token_in_a_header(client: Browser) -> None:
    page = await client.get("/registreren")
    token = client.cookies["csrftoken"]
    assert f'hx-headers=\'{{"x-csrftoken": "{token}"}}\'' in page.text
    response = await client.post(
        "/wachtwoord-vergeten",
        data={"email": "a@b.be"},
        headers={"x-csrftoken": token, "HX-Request": "true"},
    )
    assert response.status_code == 204


async def test_every_page_has_a_strict_content_security_policy(client: Browser) -> None:
    for path in ["/", "/registreren", "/aanmelden", "/bestaat-niet", "/static/css/portal.css"]:
        response = await client.get(path)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "unsafe-eval" not in csp and "frame-ancestors 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "strict-transport-security" not in response.headers, "not in development"


async def test_no_inline_script_or_style_in_pages(client: Browser) -> None:
    for path in ["/", "/registreren", "/aanmelden", "/wachtwoord-vergeten", "/voorwaarden"]:
        text = (await client.get(path)).text
        assert "<script>" not in text and "style=" not in text and " on" + "click" not in text


async def test_unknown_page_gets_a_friendly_404(client: Browser) -> None:
    response = await client.get("/bestaat-niet")
    assert response.status_code == 404
    assert "Pagina niet gevonden" in response.text and '<html lang="nl-BE">' in response.text


async def test_error_pages_keep_a_signed_in_partners_header(app: Any, transaction: None) -> None:
    account = await make_account()
    browser = browser_for(app)
    await browser.submit("/aanmelden", {"email": account.email, "password": PASSWORD})
    for answer in (await browser.get("/bestaat-niet"), await browser.delete("/aanmelden")):
        assert answer.status_code in (404, 405)
        assert account.email in answer.text and 'action="/afmelden"' in answer.text, "signed in"
    stranger = await browser_for(app).get("/bestaat-niet")
    assert stranger.status_code == 404 and 'action="/afmelden"' not in stranger.text


async def test_language_choice_is_remembered(client: Browser) -> None:
    response = await client.submit("/taal", {"language": "en", "next": "/aanmelden"})
    assert response.headers["location"] == "/aanmelden"
    page = await client.get("/aanmelden")
    assert '<html lang="en">' in page.text and "Forgot password?" in page.text
    assert "Page not found" in (await client.get("/nope")).text
    await client.submit("/taal", {"language": "nl", "next": "https://evil.example/"})
    assert "Wachtwoord vergeten?" in (await client.get("/aanmelden")).text


async def test_a_signed_in_partners_language_is_kept_for_mail(client: Browser) -> None:
    from app.accounts.tables import Account

    account = await make_account(language="nl")
    await client.submit("/taal", {"language": "en"})
    await client.submit("/aanmelden", {"email": account.email, "password": PASSWORD})
    stored = await Account.select(Account.language).where(Account.id == account.id).first()
    assert stored["language"] == "en"


async def test_health_reports_the_database(client: Browser) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "up"}


async def test_static_files_are_cached_for_long(client: Browser) -> None:
    response = await client.get("/static/vendor/htmx.min.js")
    assert response.status_code == 200
    assert "max-age=31536000" in response.headers["cache-control"]


async def test_partner_pages_need_a_signed_in_account(client: Browser) -> None:
    response = await client.get("/partnerzone")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/aanmelden?next=")


async def test_production_cookies_are_secure_and_the_mailbox_is_gone(
    settings: Settings, transaction: None
) -> None:
    from app import create_app

    production = dataclasses.replace(
        settings,
        portal=dataclasses.replace(
            settings.portal, environment="production", base_url="https://partners.example"
        ),
        mail=dataclasses.replace(settings.mail, backend="resend"),
        resend_api_key="re_x",
    )
    app: Any = create_app(production)
    account = await make_account()
    async with browser_for(app, "https://testserver") as browser:
        home = await browser.get("/")
        csrf_cookie = home.headers["set-cookie"]
        assert csrf_cookie.startswith("__Host-csrftoken="), "the CSRF cookie"
        assert "Secure" in csrf_cookie and "Path=/" in csrf_cookie and "Domain" not in csrf_cookie
        anonymous = browser.csrf_token
        assert home.headers["strict-transport-security"].startswith("max-age=")
        response = await browser.submit(
            "/aanmelden", {"email": account.email, "password": PASSWORD}
        )
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("__Host-portal_session=")
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
        assert browser.csrf_token not in {None, anonymous}, "a new token for the new session"
        assert (await browser.get("/dev/mailbox")).status_code == 404


async def test_the_mailbox_lists_mails_with_their_html(client: Browser) -> None:
    await client.submit("/wachtwoord-vergeten", {"email": (await make_account()).email})
    listing = await client.get("/dev/mailbox")
    assert "Kies een nieuw wachtwoord" in listing.text
    mail_id = listing.text.split('href="/dev/mailbox/')[1].split('"')[0]
    html = await client.get(f"/dev/mailbox/{mail_id}/html")
    assert html.headers["content-type"].startswith("text/html")
    assert "style-src 'unsafe-inline'" in html.headers["content-security-policy"]
    assert "script-src" not in html.headers["content-security-policy"]
    assert "/wachtwoord-herstellen/" in html.text


async def test_an_unexpected_error_gets_a_friendly_page_without_internals(
    settings: Settings, transaction: None
) -> None:
    from litestar import get

    from app import create_app

    @get("/boom")
    async def boom() -> None:
        raise RuntimeError("database password is hunter2")

    app: Any = create_app(settings)
    app.register(boom)
    async with browser_for(app, raise_app_exceptions=False) as browser:
        response = await browser.get("/boom")
    assert response.status_code == 500
    assert "Er ging iets mis" in response.text
    assert "hunter2" not in response.text and "Traceback" not in response.text
