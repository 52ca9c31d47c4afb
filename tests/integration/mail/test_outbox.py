"""E-mail that is never lost: outbox in the same transaction, workers, Resend retries."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import anyio
import pytest

from app.accounts import service as accounts
from app.config import Settings, get_settings
from app.mail import service as mail
from app.mail.senders import MailboxSender, OutgoingMail, ResendSender
from app.mail.tables import OutboxMail
from app.mail.worker import BATCH, POLL_SECONDS, Worker, deliver_due, deliver_one
from app.piccolo_conf import DB
from tests.factories import PASSWORD, unique_email
from tests.fake_resend import Answer, FakeResend

pytestmark = pytest.mark.anyio


def resend_settings(settings: Settings, fake: FakeResend, timeout: float = 2) -> Settings:
    return dataclasses.replace(
        settings,
        resend_api_key="re_test_key",
        mail=dataclasses.replace(
            settings.mail, backend="resend", resend_api_url=fake.url, send_timeout_seconds=timeout
        ),
    )


async def queue_mail(recipient: str) -> None:
    await mail.send(
        get_settings(),
        "activation",
        recipient,
        "nl",
        "%(brand)s — Activate your partner account",
        url="http://127.0.0.1:8000/activeren/x",
        hours=48,
    )


async def make_due() -> None:
    await OutboxMail.raw("UPDATE outbox_mail SET next_attempt_at = now()")


async def test_a_rolled_back_change_sends_nothing(committed: None) -> None:
    email = unique_email()

    class Interrupted(Exception):
        pass

    with pytest.raises(Interrupted):
        async with DB.transaction():
            await accounts.register(email, PASSWORD, "nl", "192.0.2.1", get_settings())
            assert await OutboxMail.count().where(OutboxMail.recipient == email) == 1
            raise Interrupted
    assert await OutboxMail.count().where(OutboxMail.recipient == email) == 0


async def test_the_mailbox_backend_marks_mail_delivered(
    transaction: None, settings: Settings
) -> None:
    await queue_mail(unique_email())
    assert await deliver_due(MailboxSender(), settings) == 1
    assert await OutboxMail.count().where(OutboxMail.sent_at.is_null()) == 0


async def test_resend_outage_then_recovery_delivers_exactly_once(
    committed: None, settings: Settings, fake_resend: FakeResend
) -> None:
    sender = ResendSender(resend_settings(settings, fake_resend))
    recipient = unique_email()
    await queue_mail(recipient)

    fake_resend.answers = [Answer(500)]
    assert await deliver_one(sender, settings)
    row = await OutboxMail.select().where(OutboxMail.recipient == recipient).first()
    assert row["sent_at"] is None and row["attempts"] == 1 and "500" in row["last_error"]
    assert row["next_attempt_at"] > row["created_at"], "retried later, not at once"

    port = fake_resend.port
    fake_resend.stop()
    await make_due()
    assert await deliver_one(sender, settings)
    row = await OutboxMail.select().where(OutboxMail.recipient == recipient).first()
    assert row["sent_at"] is None and row["attempts"] == 2

    fake_resend.port = port
    fake_resend.start()
    await make_due()
    assert await deliver_one(sender, settings)
    row = await OutboxMail.select().where(OutboxMail.recipient == recipient).first()
    assert row["sent_at"] is not None and row["attempts"] == 3
    assert not await deliver_one(sender, settings), "nothing left to send"

    keys = {request["key"] for request in fake_resend.requests}
    assert keys == {str(row["idempotency_key"])}, "one idempotency key for every try"
    assert len(fake_resend.delivered) == 1
    sent = fake_resend.requests[-1]
    assert sent["path"] == "/emails"
    assert sent["authorization"] == "Bearer re_test_key"
    assert sent["body"]["to"] == [recipient]
    assert sent["body"]["subject"] == "Informat — Activeer je partneraccount"
    assert sent["body"]["html"] and sent["body"]["text"]


async def test_a_mail_the_provider_refuses_is_not_retried(
    transaction: None, settings: Settings, fake_resend: FakeResend
) -> None:
    sender = ResendSender(resend_settings(settings, fake_resend))
    await queue_mail(unique_email())
    fake_resend.answers = [Answer(422)]
    await deliver_one(sender, settings)
    row = await OutboxMail.select().first()
    assert row["failed_at"] is not None and row["sent_at"] is None
    await make_due()
    assert not await deliver_one(sender, settings)


async def test_a_slow_provider_is_given_up_on_and_tried_again(
    committed: None, settings: Settings, fake_resend: FakeResend
) -> None:
    quick = dataclasses.replace(
        settings, mail=dataclasses.replace(settings.mail, send_timeout_seconds=1)
    )
    sender = ResendSender(resend_settings(settings, fake_resend, timeout=1))
    await queue_mail(unique_email())
    fake_resend.answers = [Answer(200, delay=2.5)]
    await deliver_one(sender, quick)
    row = await OutboxMail.select().first()
    assert row["sent_at"] is None and row["attempts"] == 1
    await make_due()
    await deliver_one(sender, quick)
    row = await OutboxMail.select().first()
    assert row["sent_at"] is not None
    keys = {request["key"] for request in fake_resend.requests}
    assert len(keys) == 1 and len(fake_resend.delivered) == 1


async def test_two_workers_send_each_mail_once(committed: None, settings: Settings) -> None:
    sent: list[int] = []

    class SlowSender:
        name = "slow"
        keeps_mail = True

        async def send(self, outgoing: OutgoingMail) -> None:
            await asyncio.sleep(0.02)
            sent.append(outgoing.id)

    for _ in range(20):
        await queue_mail(unique_email())
    counts: list[int] = []

    async def work() -> None:
        counts.append(await deliver_due(SlowSender(), settings))

    async with anyio.create_task_group() as group:
        group.start_soon(work)
        group.start_soon(work)

    assert sorted(sent) == sorted(set(sent)) and len(sent) == 20
    assert all(count > 0 for count in counts), f"both workers took part: {counts}"
    assert await OutboxMail.count().where(OutboxMail.sent_at.is_null()) == 0


async def test_mail_is_written_in_the_recipients_language(transaction: None) -> None:
    composed: Any = mail.compose(
        get_settings(),
        "activation",
        "x@voorbeeld.be",
        "en",
        "%(brand)s — Activate your partner account",
        url="http://x/activeren/1",
        hours=48,
    )
    assert composed.subject == "Informat — Activate your partner account"
    assert "Activate my account" in composed.html
    assert 'lang="en"' in composed.html


async def until_all_sent() -> None:
    for _ in range(1000):
        if not await OutboxMail.count().where(OutboxMail.sent_at.is_null()):
            return
        await asyncio.sleep(0.1)


async def test_a_backlog_is_delivered_without_waiting_for_the_poll(
    committed: None, settings: Settings
) -> None:
    """After an outage hundreds of mails may be due at once: the worker goes on batch after
    batch instead of sending one batch per poll (which took 5 s per hundred)."""
    for _ in range(BATCH * 2 + 50):
        await queue_mail(unique_email())
    worker = Worker(MailboxSender(), settings, settings.database.url)
    running = asyncio.create_task(worker.run())
    try:
        with anyio.fail_after(POLL_SECONDS - 1):
            await until_all_sent()
    finally:
        worker.stop()
        await running
