"""Headers on every page the router serves, no-store where secrets are shown, and no secret,
password or token in the logs, not even the tokens that e-mailed links carry in their path."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import subprocess
from typing import Any

import httpx
import pytest
from litestar.routes import HTTPRoute

from app import create_app
from app.config import Settings
from app.logs import redact
from app.mail.tables import OutboxMail
from tests.conftest import Browser, browser_for
from tests.factories import PASSWORD, make_client, unique_email
from tests.serving import PORTAL, environment, free_port, portal_serve

pytestmark = pytest.mark.anyio
SCOPE = "api_informat_sas_leerlingen.leerlingen.123456"
SAMPLES = {"uuid": "00000000-0000-4000-8000-000000000000", "int": "1", "str": "x", "path": "x"}


def get_paths(app: Any) -> list[str]:
    return [
        re.sub(r"\{\w+:(\w+)\}", lambda match: SAMPLES[match.group(1)], route.path)
        for route in app.routes
        if isinstance(route, HTTPRoute) and "GET" in route.methods
    ]


async def test_every_answer_carries_the_security_headers(app: Any, client: Browser) -> None:
    paths = get_paths(app)
    assert len(paths) > 25
    for path in paths:
        answer = await client.get(path)
        headers = answer.headers
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["x-frame-options"] == "DENY", path
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp or path.startswith("/dev/mailbox/"), path
        assert "frame-ancestors 'none'" in csp or path.startswith("/dev/mailbox/"), path
        assert "strict-transport-security" not in headers, "no HSTS in development"


async def test_production_answers_carry_hsts(settings: Settings, transaction: None) -> None:
    production = dataclasses.replace(
        settings,
        portal=dataclasses.replace(
            settings.portal, environment="production", base_url="https://partners.example"
        ),
        mail=dataclasses.replace(settings.mail, backend="resend"),
        resend_api_key="re_x",
    )
    app: Any = create_app(production)
    async with browser_for(app, "https://testserver") as browser:
        for path in (
            "/",
            "/aanmelden",
            "/backoffice/aanmelden",
            "/.well-known/openid-configuration",
        ):
            hsts = (await browser.get(path)).headers["strict-transport-security"]
            assert hsts.startswith("max-age=63072000"), path
        token = await browser.post("/connect/token", data={"grant_type": "client_credentials"})
        assert token.headers["strict-transport-security"].startswith("max-age=")


async def test_token_answers_are_never_stored(client: Browser) -> None:
    registered = await make_client()
    for data in (
        {
            "grant_type": "client_credentials",
            "client_id": registered["client_id"],
            "client_secret": registered["secret"],
        },
        {"grant_type": "client_credentials", "client_id": "onbekend", "client_secret": "x"},
    ):
        answer = await client.post("/connect/token", data=data)
        assert answer.headers["cache-control"] == "no-store, no-cache, max-age=0"
        assert answer.headers["pragma"] == "no-cache"


def test_tokens_in_link_paths_are_hidden() -> None:
    token = "Zk3_tTq9-8bYp2LwQe5r7sUvXy0"
    for path in (
        f"/activeren/{token}",
        f"/wachtwoord-herstellen/{token}",
        f"/backoffice/toegang/{token}",
        f"/backoffice/aanmelden?next=%2Fbackoffice%2Ftoegang%2F{token}",
        f"/backoffice/aanmelden?next=%2fbackoffice%2ftoegang%2f{token}%3Fx%3D1",
        f"/aanmelden?next=%252Fwachtwoord-herstellen%252F{token}",
    ):
        line = redact(f'127.0.0.1:5000 - "GET {path} HTTP/1.1" 200')
        assert token not in line and "[verborgen]" in line
    for kept in (
        "/backoffice/toegang/applicaties/6d4e36ac-a67a-4525-aee8-7f67e0508b61",
        "?next=%2Fbackoffice%2Ftoegang%2Fapplicaties%2F6d4e36ac-a67a-4525-aee8-7f67e0508b61",
    ):
        assert redact(kept) == kept


async def test_no_secret_reaches_the_logs_of_a_running_portal(
    app: Any, settings: Settings, tmp_path: Any
) -> None:
    """A real `portal serve` with its access log: register, follow the activation link, sign in,
    fail and succeed at /connect/token; none of the secrets appears in what it printed."""
    port = free_port()
    log_path = tmp_path / "serve.log"
    email = unique_email("logs")
    secret_client = "log-secret-0123456789abcdefghij"
    with (
        log_path.open("w") as output,
        portal_serve(
            port,
            env={"DATABASE_URL": settings.database.url, "PORTAL_MAIL_BACKEND": "mailbox"},
            output=output,
        ) as base,
    ):
        await asyncio.to_thread(
            subprocess.run,
            [str(PORTAL), "clients", "add", "logs_client", "--scope", SCOPE],
            input=secret_client,
            text=True,
            check=True,
            capture_output=True,
            env=environment({"DATABASE_URL": settings.database.url}),
        )
        async with httpx.AsyncClient(base_url=base, timeout=10) as browser:
            await browser.get("/registreren")
            csrf = browser.cookies["csrftoken"]
            await browser.post(
                "/registreren",
                data={
                    "_csrf_token": csrf,
                    "email": email,
                    "password": PASSWORD,
                    "password_repeat": PASSWORD,
                    "terms": "yes",
                },
            )
            link = await _activation_link(email)
            await browser.get(link)
            await browser.post(
                "/aanmelden", data={"_csrf_token": csrf, "email": email, "password": PASSWORD}
            )
            for secret in ("wrong-secret-value-123", secret_client):
                await browser.post(
                    "/connect/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": "logs_client",
                        "client_secret": secret,
                    },
                )
    printed = log_path.read_text()
    assert "POST /connect/token" in printed, "the access log was on"
    token = link.rsplit("/", 1)[1]
    for secret in (PASSWORD, secret_client, "wrong-secret-value-123", token):
        assert secret not in printed


async def _activation_link(email: str) -> str:
    """The path of the activation link in the mail the portal wrote to its outbox."""
    for _ in range(50):
        mail = (
            await OutboxMail.select(OutboxMail.text)
            .where((OutboxMail.recipient == email) & (OutboxMail.kind == "activation"))
            .first()
        )
        if mail:
            found = re.search(r"https?://\S+?(/activeren/[A-Za-z0-9_-]+)", mail["text"])
            assert found
            return found.group(1)
        await asyncio.sleep(0.1)
    raise AssertionError("no activation mail")
