"""Optional TOTP for staff: enrol with a QR code; once enrolled, every sign-in needs a code."""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

import pyotp
import pytest

from app.crypto import Sealer, sealer_of
from app.staff import service, totp
from app.staff.tables import Staff
from tests.conftest import Browser, browser_for
from tests.factories import PASSWORD, make_staff
from tests.integration.staff.helpers import staff_browser

pytestmark = pytest.mark.anyio


def code_for(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


async def enrol(browser: Browser) -> str:
    page = await browser.get("/backoffice/tweestapsverificatie")
    assert page.headers["cache-control"] == "no-store"
    assert 'src="data:image/svg+xml' in page.text
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page.text)
    assert secret
    wrong = await browser.submit("/backoffice/tweestapsverificatie", {"code": "000000"})
    assert wrong.status_code == 422 and "Deze code is niet juist" in wrong.text
    done = await browser.submit(
        "/backoffice/tweestapsverificatie", {"code": code_for(secret.group(1))}
    )
    assert done.status_code == 303
    return secret.group(1)


async def password_step(app: Any, username: str, next_page: str = "") -> Browser:
    browser = browser_for(app)
    response = await browser.submit(
        "/backoffice/aanmelden", {"username": username, "password": PASSWORD, "next": next_page}
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/backoffice/aanmelden/code")
    return browser


async def test_without_enrolment_no_code_is_asked(app: Any, transaction: None) -> None:
    browser = await staff_browser(app, await make_staff())
    page = await browser.get("/backoffice/tweestapsverificatie")
    assert "Scan deze QR-code" in page.text


async def test_once_enrolled_a_code_is_needed_after_the_password(
    app: Any, transaction: None
) -> None:
    username = await make_staff()
    secret = await enrol(await staff_browser(app, username))

    browser = await password_step(app, username, "/backoffice/zoeken")
    # Between password and code the back-office stays closed.
    assert (await browser.get("/backoffice/wachtrij")).status_code == 303
    bad = await browser.submit("/backoffice/aanmelden/code", {"code": "12345"})
    assert "De code heeft 6 cijfers." in bad.text
    # Enrolment used this time step's code; the next step's is accepted (clock drift).
    good = await browser.submit(
        "/backoffice/aanmelden/code", {"code": code_for(secret, 1), "next": "/backoffice/zoeken"}
    )
    assert good.headers["location"] == "/backoffice/zoeken"
    assert (await browser.get("/backoffice/wachtrij")).status_code == 200

    # The same code does not work twice.
    again = await password_step(app, username)
    for used in (code_for(secret), code_for(secret, 1)):
        reused = await again.submit("/backoffice/aanmelden/code", {"code": used})
        assert reused.status_code == 422
    assert (await again.get("/backoffice/wachtrij")).status_code == 303


async def test_guessing_codes_is_slowed_down(app: Any, transaction: None) -> None:
    username = await make_staff()
    await enrol(await staff_browser(app, username))
    browser = await password_step(app, username)
    statuses = [
        (await browser.submit("/backoffice/aanmelden/code", {"code": f"{n:06d}"})).status_code
        for n in range(1, 7)
    ]
    assert statuses[:5] == [422] * 5 and statuses[5] == 429
    # The block holds for the right code too.
    blocked = await browser.submit("/backoffice/aanmelden/code", {"code": "000000"})
    assert blocked.status_code == 429 and "retry-after" in blocked.headers


async def test_a_lost_authenticator_is_reset_from_the_command_line(
    app: Any, transaction: None
) -> None:
    username = await make_staff()
    await enrol(await staff_browser(app, username))
    assert await service.reset_second_factor(username.upper())
    row = await Staff.select(Staff.totp_enrolled_at).where(Staff.username == username).first()
    assert row is not None and row["totp_enrolled_at"] is None
    assert (await staff_browser(app, username)) is not None, "no code asked any more"


async def test_second_factor_secrets_are_sealed_at_rest(
    app: Any, transaction: None, settings: Any
) -> None:
    sealed_one = await make_staff()
    secret = await enrol(await staff_browser(app, sealed_one))
    stored = await Staff.select(Staff.totp_secret).where(Staff.username == sealed_one).first()
    assert stored and stored["totp_secret"].startswith("sealed.v1.")
    assert secret not in stored["totp_secret"]

    # A secret stored in plain text, as before sealing existed: sealed at start-up, still valid.
    plain_one = await make_staff()
    plain_secret = pyotp.random_base32()
    await Staff.update(
        {Staff.totp_secret: plain_secret, Staff.totp_enrolled_at: dt.datetime.now(dt.UTC)}
    ).where(Staff.username == plain_one)
    await totp.seal_stored_secrets(sealer_of(settings))
    resealed = await Staff.select(Staff.totp_secret).where(Staff.username == plain_one).first()
    assert resealed and resealed["totp_secret"].startswith("sealed.v1.")
    browser = await password_step(app, plain_one)
    answer = await browser.submit("/backoffice/aanmelden/code", {"code": code_for(plain_secret, 1)})
    assert answer.status_code == 303


async def test_a_secret_sealed_under_an_unknown_key_is_a_503_not_a_500(
    app: Any, transaction: None
) -> None:
    username = await make_staff()
    await enrol(await staff_browser(app, username))
    row = await Staff.select(Staff.id).where(Staff.username == username).first()
    assert row is not None
    foreign = Sealer("a-key-this-instance-never-had-0123456789")
    await Staff.update(
        {Staff.totp_secret: foreign.seal(pyotp.random_base32(), f"staff-totp:{row['id']}")}
    ).where(Staff.id == row["id"])
    browser = await password_step(app, username)
    answer = await browser.submit("/backoffice/aanmelden/code", {"code": "123456"})
    assert answer.status_code == 503
    assert "retry-after" in answer.headers
