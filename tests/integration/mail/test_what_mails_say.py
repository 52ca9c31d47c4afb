"""What the portal's mails say and where their links lead: each one is the next step for the
person who gets it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from app.config import get_settings
from app.helpdesk import service as helpdesk
from app.mail.tables import OutboxMail
from tests.conftest import Browser, browser_for
from tests.factories import PASSWORD, make_account, make_partner, make_staff, submit_application
from tests.integration.staff.helpers import as_staff, staff_browser

pytestmark = pytest.mark.anyio


async def signed_in(app: Any, account: Any) -> Browser:
    browser = browser_for(app)
    await browser.submit("/aanmelden", {"email": account.email, "password": PASSWORD})
    return browser


async def mails(kind: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        await OutboxMail.select().where(OutboxMail.kind == kind).order_by(OutboxMail.id)
    )
    return rows


async def test_the_helpdesk_mail_opens_the_review_and_a_resubmission_says_so(
    app: Any, transaction: None
) -> None:
    partner = await make_partner(listed=False)
    application_id = await submit_application(partner)
    [first] = await mails("application_submitted")
    review = f"/backoffice/applicaties/{application_id}"
    assert review in first["text"] and review in first["html"], "the link opens the review"
    assert "opnieuw" not in first["subject"]

    staff = await as_staff(await make_staff())
    await helpdesk.reject(
        staff, application_id, "Beschrijf welke gegevens je nodig hebt.", get_settings()
    )  # type: ignore[arg-type]
    browser = await signed_in(app, partner["account"])
    saved = await browser.post(
        f"/applicaties/{application_id}/bewerken",
        data={
            "_csrf_token": browser.csrf_token or "",
            "name": "Roosterkoppeling",
            "description": "Haalt uurroosters en klassen op.",
            "contact_person": "Dev Eloper",
            "contact_email": "dev@partner.be",
            "apis": ["leerlingen", "personeel"],
        },
    )
    assert saved.status_code == 303
    queue = await (await staff_browser(app, await make_staff())).get("/backoffice/wachtrij")
    row = queue.text[queue.text.index(f'id="queue-{application_id}"') :]
    assert "Opnieuw ingediend" in row.split("</tr>")[0], "the queue marks it"
    assert "Beschrijf welke gegevens je nodig hebt." in row.split("</tr>")[0]
    again = (await mails("application_submitted"))[-1]
    assert "opnieuw ingediend" in again["subject"]
    assert "Beschrijf welke gegevens je nodig hebt." in again["text"], "with the earlier reason"
    assert review in again["text"]


async def test_the_approval_mail_gives_the_client_id(app: Any, transaction: None) -> None:
    partner = await make_partner(listed=False)
    application_id = await submit_application(partner)
    staff = await as_staff(await make_staff())
    client_id = await helpdesk.approve(staff, application_id, get_settings())  # type: ignore[arg-type]
    approved = await mails("application_approved")
    assert approved and all(client_id in mail["text"] for mail in approved)
    assert all(client_id in mail["html"] for mail in approved)


async def test_a_colleague_joining_is_told_to_the_profiles_address(
    app: Any, transaction: None
) -> None:
    partner = await make_partner(name="Samen BV")
    owner = await signed_in(app, partner["account"])
    issued = await owner.submit("/profiel/uitnodigingen")
    code = re.search(r'<code id="invitation-code" class="code">([A-Z0-9-]+)</code>', issued.text)
    assert code
    colleague = await make_account()
    joined = await (await signed_in(app, colleague)).submit(
        "/profiel/koppelen", {"code": code.group(1)}
    )
    assert joined.status_code == 303
    [told] = await mails("colleague_joined")
    assert told["recipient"] == partner["account"].email, "the profile's address"
    assert colleague.email in told["text"] and "Samen BV" in told["text"]
    assert "/profiel" in told["text"]


async def test_access_requests_come_from_the_no_reply_sender(app: Any, transaction: None) -> None:
    partner = await make_partner(listed=False)
    application_id = await submit_application(partner)
    await helpdesk.approve(await as_staff(await make_staff()), application_id, get_settings())  # type: ignore[arg-type]
    browser = await signed_in(app, partner["account"])
    sent = await browser.submit(
        f"/applicaties/{application_id}/toegang-aanvragen", {"addresses": "beheer@school.be"}
    )
    assert sent.status_code == 303
    [request] = await mails("access_request")
    assert request["sender"] == "Informat <noreply@informatsoftware.be>", "the manual's sender"
    [approved, *_] = await mails("application_approved")
    assert approved["sender"] == "Informat <info@informat.be>", "other mails keep theirs"
