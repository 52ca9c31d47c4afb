"""The back-office: staff sign-in apart from partners, and the helpdesk's approval queue
(manual §1.2, §3.3.1)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
import pytest

from app.applications import service as applications
from app.applications.service import ApplicationData
from app.applications.tables import Application
from app.config import get_settings
from app.helpdesk import controller, service
from app.identity.tables import Client
from app.mail.tables import OutboxMail
from app.staff.tables import AuditEvent
from tests.conftest import Browser, browser_for
from tests.factories import (
    PASSWORD,
    generate_secret,
    make_account,
    make_partner,
    make_staff,
    submit_application,
)
from tests.integration.staff.helpers import as_staff, staff_browser

pytestmark = pytest.mark.anyio


async def test_staff_sign_in_with_a_username_not_an_email(app: Any, transaction: None) -> None:
    username = await make_staff()
    browser = browser_for(app)
    wrong = await browser.submit(
        "/backoffice/aanmelden", {"username": username, "password": "Fout!Wachtwoord1"}
    )
    assert wrong.status_code == 422
    assert "De gebruikersnaam of het wachtwoord is niet juist." in wrong.text
    assert f'value="{username}"' in wrong.text, "the username stays in the form"
    empty = await browser.submit("/backoffice/aanmelden", {"username": "", "password": ""})
    assert "Vul je gebruikersnaam in." in empty.text
    signed_in = await staff_browser(app, username)
    queue = await signed_in.get("/backoffice/wachtrij")
    assert queue.status_code == 200
    assert "Goedkeuringswachtrij" in queue.text
    assert queue.headers["cache-control"] == "no-store"
    cookie = next(c for c in signed_in.cookies.jar if c.name == "portal_staff")
    assert cookie.has_nonstandard_attr("HttpOnly")


async def test_partners_and_staff_stay_on_their_own_side(app: Any, transaction: None) -> None:
    partner = await make_partner(listed=False)
    partner_browser = browser_for(app)
    await partner_browser.submit(
        "/aanmelden", {"email": partner["account"].email, "password": PASSWORD}
    )
    refused = await partner_browser.get("/backoffice/wachtrij")
    assert refused.status_code == 303
    assert refused.headers["location"].startswith("/backoffice/aanmelden?next=")
    # A partner's e-mail and password do not open the back-office either.
    attempt = await partner_browser.submit(
        "/backoffice/aanmelden", {"username": partner["account"].email, "password": PASSWORD}
    )
    assert attempt.status_code == 422

    staff = await staff_browser(app, await make_staff())
    front = await staff.get("/applicaties")
    assert front.status_code == 303
    assert front.headers["location"].startswith("/aanmelden?next=")


async def test_a_school_administrator_has_no_queue(app: Any, transaction: None) -> None:
    username = await make_staff("school-admin", [("123456", ["leerlingen"])])
    browser = await staff_browser(app, username)
    assert (await browser.get("/backoffice/wachtrij")).status_code == 403
    partner = await make_partner(listed=False)
    application_id = await submit_application(partner)
    approve = await browser.submit(f"/backoffice/applicaties/{application_id}/goedkeuren")
    assert approve.status_code == 403
    with pytest.raises(service.NotAllowed):
        await service.approve(await as_staff(username), application_id, get_settings())  # type: ignore[arg-type]
    status = await Application.select(Application.status).where(Application.id == application_id)
    assert status[0]["status"] == "nieuw"


async def test_the_queue_lists_new_applications_oldest_first(app: Any, transaction: None) -> None:
    partner = await make_partner(listed=False, name="Acme Leerplatform")
    first = await submit_application(partner, "Eerste koppeling")
    await Application.raw(
        "UPDATE application SET submitted_at = now() - interval '3 hours' WHERE id = {}", first
    )
    await submit_application(partner, "Tweede koppeling")
    browser = await staff_browser(app, await make_staff())
    queue = (await browser.get("/backoffice/wachtrij")).text
    assert queue.index("Eerste koppeling") < queue.index("Tweede koppeling")
    assert "Acme Leerplatform" in queue
    assert "Leerlingen, Personeel" in queue
    assert "3 uur" in queue
    assert 'sse-connect="/backoffice/wachtrij/live"' in queue
    fragment = await browser.get(
        "/backoffice/wachtrij", headers={"HX-Request": "true", "HX-Target": "queue"}
    )
    assert fragment.text.lstrip().startswith('<section id="queue"')


async def test_approving_creates_the_client_and_tells_the_partner(
    app: Any, transaction: None
) -> None:
    partner = await make_partner(listed=False)
    application_id = await submit_application(partner)
    username = await make_staff()
    browser = await staff_browser(app, username)
    review = await browser.get(f"/backoffice/applicaties/{application_id}")
    assert "Haalt uurroosters op." in review.text and "dev@partner.be" in review.text
    response = await browser.submit(f"/backoffice/applicaties/{application_id}/goedkeuren")
    assert response.headers["location"] == "/backoffice/wachtrij?melding=goedgekeurd"
    queue = await browser.get(response.headers["location"])
    assert "Goedgekeurd." in queue.text and "Roosterkoppeling" not in queue.text

    stored = await Application.select().where(Application.id == application_id).first()
    assert stored is not None and stored["status"] == "goedgekeurd"
    client = await Client.select().where(Client.application == application_id).first()
    assert client is not None and client["client_id"].startswith(partner["slug"].replace("-", "_"))
    recipients = {
        row["recipient"]
        for row in await OutboxMail.select(OutboxMail.recipient).where(
            OutboxMail.kind == "application_approved"
        )
    }
    assert "dev@partner.be" in recipients and len(recipients) == 2
    audit = await AuditEvent.select().where(AuditEvent.application == application_id).first()
    assert audit is not None and audit["action"] == "approved" and audit["actor"] == username
    # The partner can now generate a secret.
    secret = await generate_secret(partner["account"].id, application_id, 0)  # type: ignore[arg-type]
    assert len(secret) > 30


async def test_rejecting_needs_a_reason_which_the_partner_sees(app: Any, transaction: None) -> None:
    partner = await make_partner(listed=False)
    application_id = await submit_application(partner)
    browser = await staff_browser(app, await make_staff())
    missing = await browser.submit(
        f"/backoffice/applicaties/{application_id}/weigeren", {"reason": "   "}
    )
    assert missing.status_code == 422
    assert "Geef aan waarom de applicatie niet wordt goedgekeurd." in missing.text
    status = await Application.select(Application.status).where(Application.id == application_id)
    assert status[0]["status"] == "nieuw", "nothing saved"

    reason = "Vul de omschrijving aan: welke gegevens <b>gebruik</b> je?"
    done = await browser.submit(
        f"/backoffice/applicaties/{application_id}/weigeren", {"reason": reason}
    )
    assert done.headers["location"] == "/backoffice/wachtrij?melding=geweigerd"
    mail = await OutboxMail.select().where(OutboxMail.kind == "application_rejected").first()
    assert mail is not None and "welke gegevens" in mail["text"]

    partner_browser = browser_for(app)
    await partner_browser.submit(
        "/aanmelden", {"email": partner["account"].email, "password": PASSWORD}
    )
    page = await partner_browser.get(f"/applicaties/{application_id}")
    assert "Geweigerd" in page.text
    assert "&lt;b&gt;gebruik&lt;/b&gt;" in page.text, "the reason is shown, as text"


async def test_a_resubmission_keeps_its_place_and_its_wait(app: Any, transaction: None) -> None:
    partner = await make_partner(listed=False)
    first = await submit_application(partner, "Eerste koppeling")
    await Application.update(
        {Application.submitted_at: dt.datetime.now(dt.UTC) - dt.timedelta(hours=5)}
    ).where(Application.id == first)
    await submit_application(partner, "Tweede koppeling")
    staff = await as_staff(await make_staff())
    await service.reject(staff, first, "Te vaag.", get_settings())  # type: ignore[arg-type]
    await applications.update(
        partner["account"].id,
        first,
        ApplicationData(
            "Eerste koppeling", "Nu duidelijk.", "Dev", "dev@partner.be", ["leerlingen"]
        ),
        get_settings(),
    )
    queue = (await (await staff_browser(app, await make_staff())).get("/backoffice/wachtrij")).text
    assert queue.index("Eerste koppeling") < queue.index("Tweede koppeling"), "in its place"
    assert "5 uur" in queue, "the wait counts from the first submission"


async def test_the_review_shows_who_asks(app: Any, transaction: None) -> None:
    partner = await make_partner(listed=False, name="Contextrijk BV")
    first = await submit_application(partner, "Eerste app")
    waiting = await submit_application(partner, "Tweede app")
    browser = await staff_browser(app, await make_staff())
    review = await browser.get(f"/backoffice/applicaties/{waiting}")
    text = review.text
    assert f'href="/backoffice/partners/{partner["id"]}">Contextrijk BV</a>' in text
    assert "Schoolstraat 12, 9000 Gent, België" in text, "the partner's address"
    assert "Ondernemingsnummer" in text and "Contact partner" in text
    assert f'href="/backoffice/applicaties/{first}">Eerste app</a>' in text, "its other apps"
    assert f'href="/backoffice/applicaties/{waiting}">' not in text.split("Andere applicaties")[1]


async def test_a_rejected_applications_form_shows_the_reason_and_submits_again(
    app: Any, transaction: None
) -> None:
    partner = await make_partner(listed=False)
    application_id = await submit_application(partner)
    staff = await as_staff(await make_staff())
    await service.reject(staff, application_id, "Noem de <b>gegevens</b>.", get_settings())  # type: ignore[arg-type]
    partner_browser = browser_for(app)
    await partner_browser.submit(
        "/aanmelden", {"email": partner["account"].email, "password": PASSWORD}
    )
    form = await partner_browser.get(f"/applicaties/{application_id}/bewerken")
    assert "Noem de &lt;b&gt;gegevens&lt;/b&gt;." in form.text, "the reason, as text"
    assert "Opnieuw indienen</button>" in form.text
    approved = await submit_application(partner, "Goedgekeurde app")
    await service.approve(staff, approved, get_settings())  # type: ignore[arg-type]
    other = await partner_browser.get(f"/applicaties/{approved}/bewerken")
    assert "Opnieuw indienen" not in other.text
    assert "Opslaan</button>" in other.text


async def test_a_standard_reason_can_be_picked_and_ones_own_words_win(
    app: Any, transaction: None
) -> None:
    partner = await make_partner(listed=False)
    picked, written = await submit_application(partner, "Een"), await submit_application(partner)
    browser = await staff_browser(app, await make_staff())
    review = await browser.get(f"/backoffice/applicaties/{picked}")
    assert '<option value="vaag">De omschrijving is te vaag' in review.text
    await browser.submit(
        f"/backoffice/applicaties/{picked}/weigeren", {"standard": "vaag", "reason": ""}
    )
    await browser.submit(
        f"/backoffice/applicaties/{written}/weigeren",
        {"standard": "vaag", "reason": "Eigen woorden."},
    )
    reasons = {
        row["id"]: row["rejection_reason"]
        for row in await Application.select(Application.id, Application.rejection_reason)
    }
    assert reasons[picked].startswith("De omschrijving is te vaag")
    assert reasons[written] == "Eigen woorden.", "what the reviewer wrote is sent"


async def test_of_two_reviewers_exactly_one_decides(app: Any, committed: None) -> None:
    partner = await make_partner(listed=False)
    application_id = await submit_application(partner)
    first, second = await make_staff(), await make_staff()
    results = await asyncio.gather(
        service.approve(await as_staff(first), application_id, get_settings()),  # type: ignore[arg-type]
        service.reject(await as_staff(second), application_id, "Onvoldoende info", get_settings()),  # type: ignore[arg-type]
        return_exceptions=True,
    )
    lost = [result for result in results if isinstance(result, service.AlreadyHandled)]
    assert len(lost) == 1
    stored = await Application.select().where(Application.id == application_id).first()
    assert stored is not None
    winner = first if stored["status"] == "goedgekeurd" else second
    assert lost[0].by == winner
    clients = await Client.count().where(Client.application == application_id)
    assert clients == (1 if stored["status"] == "goedgekeurd" else 0)

    # The loser's page says who handled it and how.
    browser = await staff_browser(app, second if winner == first else first)
    again = await browser.submit(f"/backoffice/applicaties/{application_id}/goedkeuren")
    assert again.status_code == 409
    assert winner in again.text


async def test_the_decision_mail_speaks_each_recipients_language(
    app: Any, transaction: None
) -> None:
    partner = await make_partner(await make_account(language="en"), listed=False)
    application_id = await submit_application(partner)
    await service.approve(await as_staff(await make_staff()), application_id, get_settings())  # type: ignore[arg-type]
    subjects = {
        row["recipient"]: row["subject"]
        for row in await OutboxMail.select(OutboxMail.recipient, OutboxMail.subject).where(
            OutboxMail.kind == "application_approved"
        )
    }
    # The partner chose English; the contact has no account, so Dutch.
    assert "approved" in subjects[partner["account"].email].lower()
    assert "goedgekeurd" in subjects["dev@partner.be"].lower()


async def open_stream(desk: Browser) -> asyncio.Task[httpx.Response]:
    stream = asyncio.create_task(desk.get("/backoffice/wachtrij/live"))
    await asyncio.sleep(0.3)
    return stream


async def test_the_live_queue_stops_at_the_first_event_after_sign_out(
    app: Any, committed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        controller, "SESSION_CHECK_SECONDS", 60.0, raising=False
    )  # only events wake it
    desk = await staff_browser(app, await make_staff())
    stream = await open_stream(desk)
    app.state.queue_feed._changed()
    await asyncio.sleep(0.3)
    assert (await desk.submit("/backoffice/afmelden")).status_code == 303
    app.state.queue_feed._changed()
    answer = await asyncio.wait_for(stream, timeout=5)
    assert answer.text.count("event: queue") == 1, "news while signed in, none after"


async def test_the_live_queue_of_an_ended_session_stops_within_seconds(
    app: Any, committed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(controller, "SESSION_CHECK_SECONDS", 0.2, raising=False)
    desk = await staff_browser(app, await make_staff())
    stream = await open_stream(desk)
    assert (await desk.submit("/backoffice/afmelden")).status_code == 303
    answer = await asyncio.wait_for(stream, timeout=3)
    assert answer.status_code == 200 and "event: queue" not in answer.text
