"""Nothing usable at rest: once a mail is sent, the outbox no longer holds the links it carried.

Every mail that carries a link with a token (activation, password reset, a school
administrator's access link) is sent through the real Resend sender to a local fake; then no
token of any link the provider received may be found in the outbox. The check knows no mail kind
or path: it takes every long token from the delivered mails, so a new kind of link that is not
removed fails it, which the second test shows. Sent mail past its retention is deleted.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from app.accounts import service as accounts
from app.applications import access
from app.config import Settings, get_settings
from app.helpdesk import service as helpdesk_service
from app.housekeeping import housekeeping
from app.mail import service as mail
from app.mail.senders import MailboxSender, ResendSender
from app.mail.tables import OutboxMail
from app.mail.worker import deliver_due
from tests.factories import PASSWORD, make_account, make_partner, make_staff, submit_application
from tests.fake_resend import FakeResend
from tests.integration.mail.test_outbox import resend_settings
from tests.integration.staff.helpers import as_staff

pytestmark = pytest.mark.anyio
# A path segment of a link that is a token: long, URL-safe, and not an id (a UUID).
TOKEN = re.compile(r"https?://[^\s\"'<>]*/([-A-Za-z0-9_]{20,})")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def tokens_in(text: str) -> set[str]:
    return {token for token in TOKEN.findall(text) if not UUID.match(token)}


async def live_tokens_at_rest(fake: FakeResend) -> set[str]:
    """Tokens of links the provider delivered that the outbox still holds."""
    delivered = {
        token
        for body in fake.delivered.values()
        for token in tokens_in(body["html"]) | tokens_in(body["text"])
    }
    stored = await OutboxMail.select(OutboxMail.html, OutboxMail.text)
    return {
        token for token in delivered if any(token in row["html"] + row["text"] for row in stored)
    }


async def every_linked_mail() -> None:
    """Each mail the portal sends with a token in a link."""
    settings = get_settings()
    await accounts.register("nieuw@partner.example", PASSWORD, "nl", "192.0.2.1", settings)
    await accounts.request_password_reset((await make_account()).email, "192.0.2.1", settings)
    partner = await make_partner(listed=False)
    application_id = await submit_application(partner)
    staff = await as_staff(await make_staff())
    await helpdesk_service.approve(staff, application_id, settings)  # type: ignore[arg-type]
    await access.request_access(
        partner["account"].id,  # type: ignore[attr-defined]
        application_id,  # type: ignore[arg-type]
        ["beheer@school.be"],
        settings,
    )


async def test_no_live_link_is_stored_after_sending(
    transaction: None, settings: Settings, fake_resend: FakeResend
) -> None:
    await every_linked_mail()
    kinds = {row["kind"] for row in await OutboxMail.select(OutboxMail.kind)}
    assert {"activation", "password_reset", "access_request"} <= kinds
    sender = ResendSender(resend_settings(settings, fake_resend))
    assert await deliver_due(sender, settings) >= 3
    delivered = [tokens_in(body["text"]) for body in fake_resend.delivered.values()]
    assert sum(map(len, delivered)) >= 3, "the mails did carry their links"
    assert await live_tokens_at_rest(fake_resend) == set()
    kept = await OutboxMail.select().where(OutboxMail.kind == "access_request").first()
    assert kept["recipient"] == "beheer@school.be" and kept["sent_at"] is not None
    assert kept["subject"] and "[verwijderd]" in kept["text"], "kept for the audit, link removed"


async def test_a_link_that_is_not_removed_is_caught(
    transaction: None, settings: Settings, fake_resend: FakeResend
) -> None:
    token = "Nieuw-Soort-Link-0123456789abcdef"
    await mail.send(
        settings,
        "activation",
        "iemand@partner.example",
        "nl",
        "%(brand)s — Activate your partner account",
        url=f"https://portaal.example/uitnodiging/{token}",
        hours=48,
    )
    await deliver_due(ResendSender(resend_settings(settings, fake_resend)), settings)
    assert await live_tokens_at_rest(fake_resend) == {token}


async def test_the_development_mailbox_keeps_its_links(
    transaction: None, settings: Settings
) -> None:
    await accounts.request_password_reset((await make_account()).email, "192.0.2.1", settings)
    await deliver_due(MailboxSender(), settings)
    row = await OutboxMail.select().where(OutboxMail.kind == "password_reset").first()
    assert tokens_in(row["text"]), "the outbox is the mailbox there: its links must work"


async def test_sent_mail_is_kept_for_its_retention_then_deleted(
    transaction: None, settings: Settings, fake_resend: FakeResend
) -> None:
    await every_linked_mail()
    sender = ResendSender(resend_settings(settings, fake_resend))
    await deliver_due(sender, settings)
    # A mail sent long ago, from before links were removed, with its link still in it.
    await OutboxMail.raw(
        "UPDATE outbox_mail SET sent_at = now() - interval '200 days',"
        " text = text || ' https://portaal.example/activeren/OudeLinkDieNogWerkt0123456789'"
        " WHERE kind = 'activation'"
    )
    await OutboxMail.raw(
        "UPDATE outbox_mail SET sent_at = now() - interval '10 days',"
        " text = text || ' https://portaal.example/activeren/RecenteOudeLink0123456789'"
        " WHERE kind = 'password_reset'"
    )
    short = dataclasses.replace(
        settings, mail=dataclasses.replace(settings.mail, sent_retention_days=30)
    )
    await housekeeping(sender, short)
    rows: list[dict[str, Any]] = await OutboxMail.select(OutboxMail.kind, OutboxMail.text)
    assert "activation" not in {row["kind"] for row in rows}, "past its retention"
    reset = next(row for row in rows if row["kind"] == "password_reset")
    assert "RecenteOudeLink" not in reset["text"], "an old mail's link is removed too"
