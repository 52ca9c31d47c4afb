"""Secret expiry, announced: mails 30, 14, 7 and 1 day before a secret still in use expires,
each once, to the partner's profile address and the application's contact, in the audit log.
The tests move the clock by passing `now`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from app.applications.expiry import warn_expiring_secrets, warning_due
from app.identity.tables import ClientSecret
from app.mail.tables import OutboxMail
from app.staff.tables import AuditEvent
from tests.integration.applications.test_applications import linked_application

pytestmark = pytest.mark.anyio
NOW = dt.datetime(2027, 3, 1, 9, 0, tzinfo=dt.UTC)


def test_the_nearest_warning_is_due() -> None:
    expires = NOW + dt.timedelta(days=30)
    assert warning_due(expires, NOW - dt.timedelta(days=1)) is None
    assert warning_due(expires, NOW) == 30
    assert warning_due(expires, NOW + dt.timedelta(days=16)) == 14
    assert warning_due(expires, NOW + dt.timedelta(days=25)) == 7
    assert warning_due(expires, NOW + dt.timedelta(days=29, hours=12)) == 1
    assert warning_due(expires, NOW + dt.timedelta(days=31)) is None


async def secret_expiring(app: Any, *, used: bool) -> tuple[int, Any]:
    _, existing, application = await linked_application(app)
    await ClientSecret.update(
        {
            ClientSecret.expires_at: NOW + dt.timedelta(days=30),
            ClientSecret.last_used_at: NOW - dt.timedelta(days=2) if used else None,
            ClientSecret.hint: "Ab9z",
        }
    ).where(ClientSecret.id == existing["secret_id"])
    return existing["secret_id"], application


async def warnings_sent() -> list[dict[str, Any]]:
    return await OutboxMail.select(OutboxMail.recipient, OutboxMail.subject).where(
        OutboxMail.kind == "secret_expiring"
    )


async def test_warnings_go_on_the_right_days_each_once(app: Any, transaction: None) -> None:
    secret_id, application = await secret_expiring(app, used=True)
    days = [0, 0.5, 15, 16, 22, 23, 25, 29.2, 29.5, 31]
    sent_on = []
    for day in days:
        before = len(await warnings_sent())
        moment = NOW + dt.timedelta(days=day)
        # Live software keeps using it.
        await ClientSecret.update(
            {ClientSecret.last_used_at: moment - dt.timedelta(hours=3)}
        ).where(ClientSecret.id == secret_id)
        await warn_expiring_secrets(app.state.settings, moment)
        if len(await warnings_sent()) > before:
            sent_on.append(day)
    assert sent_on == [0, 16, 23, 29.2], "30, 14, 7 and 1 day before, each once"
    mails = await warnings_sent()
    recipients = {mail["recipient"] for mail in mails}
    assert len(mails) == 4 * len(recipients) and len(recipients) == 2, "profile and contact"
    assert any("vervalt over 30 dagen" in mail["subject"] for mail in mails)
    assert any("vervalt morgen" in mail["subject"] for mail in mails)
    body = (
        await OutboxMail.select(OutboxMail.text).where(OutboxMail.kind == "secret_expiring").first()
    )
    assert "…Ab9z" in body["text"] and f"/applicaties/{application.id}#secrets" in body["text"]
    audited = await AuditEvent.count().where(AuditEvent.action == "secret-expiry-warned")
    assert audited == 4


async def test_a_secret_nobody_uses_or_that_is_revoked_gets_no_warning(
    app: Any, transaction: None
) -> None:
    secret_id, _ = await secret_expiring(app, used=False)
    assert await warn_expiring_secrets(app.state.settings, NOW) == 0
    await ClientSecret.update({ClientSecret.last_used_at: NOW, ClientSecret.revoked_at: NOW}).where(
        ClientSecret.id == secret_id
    )
    assert await warn_expiring_secrets(app.state.settings, NOW) == 0
    assert await warnings_sent() == []


async def test_a_late_start_sends_only_the_nearest_warning(app: Any, transaction: None) -> None:
    await secret_expiring(app, used=True)
    assert await warn_expiring_secrets(app.state.settings, NOW + dt.timedelta(days=27)) == 1
    assert (
        await warn_expiring_secrets(app.state.settings, NOW + dt.timedelta(days=27, hours=1)) == 0
    )
    subjects = {mail["subject"] for mail in await warnings_sent()}
    assert len(subjects) == 1 and "over 7 dagen" in subjects.pop()
