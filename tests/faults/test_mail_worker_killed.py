"""A mail worker killed in the middle of a send: the mail is not lost, and the provider
delivers it once, because the next worker sends it again with the same idempotency key."""

from __future__ import annotations

import asyncio
import subprocess
import time
from typing import Any

import pytest

from app.config import Settings
from app.mail.tables import OutboxMail
from tests.factories import unique_email
from tests.fake_resend import Answer, FakeResend
from tests.integration.mail.test_outbox import queue_mail
from tests.serving import PORTAL, environment

pytestmark = pytest.mark.anyio


def start_worker(settings: Settings, fake: FakeResend) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(PORTAL), "worker"],
        env=environment(
            {
                "DATABASE_URL": settings.database.url,
                "PORTAL_MAIL_BACKEND": "resend",
                "RESEND_API_KEY": "re_test_key",
                "PORTAL_MAIL_RESEND_API_URL": fake.url,
                "PORTAL_MAIL_SEND_TIMEOUT_SECONDS": "60",
            }
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def until(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def test_a_worker_killed_mid_send_loses_nothing_and_sends_nothing_twice(
    app: Any, committed: None, settings: Settings, fake_resend: FakeResend
) -> None:
    recipient = unique_email("gedood")
    fake_resend.answers = [Answer(200, delay=20)]  # the first send hangs at the provider
    await queue_mail(recipient)
    first = start_worker(settings, fake_resend)
    try:

        async def sending() -> bool:
            return len(fake_resend.requests) == 1

        await until(sending, 30, "the first worker sends")
        first.kill()  # kill -9, in the middle of the send
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
    row = await OutboxMail.select().where(OutboxMail.recipient == recipient).first()
    assert row is not None and row["sent_at"] is None, "still in the outbox"

    second = start_worker(settings, fake_resend)
    try:

        async def delivered() -> bool:
            found = (
                await OutboxMail.select(OutboxMail.sent_at)
                .where(OutboxMail.recipient == recipient)
                .first()
            )
            return bool(found and found["sent_at"])

        await until(delivered, 60, "the second worker delivers it")
    finally:
        second.terminate()
        second.wait(timeout=15)
    keys = [request["key"] for request in fake_resend.requests]
    assert len(keys) == 2 and keys[0] == keys[1], "sent again with the same idempotency key"
    assert len(fake_resend.delivered) == 1, "the provider delivered it once"
