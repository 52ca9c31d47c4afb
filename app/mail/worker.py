"""Delivering the outbox, with retries, backoff and one idempotency key per mail.

Each mail is claimed with `FOR UPDATE SKIP LOCKED` and stays locked, in one transaction,
while it is sent and marked: several workers never take the same mail, and a worker that dies
mid-send leaves it to be sent again later with the same idempotency key, which the provider
uses to deliver it only once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from typing import Any

import asyncpg

from app.config import Settings
from app.mail.senders import OutgoingMail, PermanentMailError, Sender, TemporaryMailError
from app.mail.service import CHANNEL
from app.mail.tables import OutboxMail
from app.piccolo_conf import DB

log = logging.getLogger(__name__)

POLL_SECONDS = 5.0


def backoff(attempts: int) -> dt.timedelta:
    """5 s after the first failure, doubling to at most an hour, with some jitter."""
    seconds = min(5 * 2 ** min(attempts - 1, 12), 3600)
    return dt.timedelta(seconds=seconds * random.uniform(0.8, 1.2))  # noqa: S311


async def deliver_one(sender: Sender, settings: Settings) -> bool:
    """Send the next due mail, if any; returns whether there was one."""
    async with DB.transaction():
        rows = await OutboxMail.raw(
            """
            SELECT id, kind, sender, recipient, subject, html, text, idempotency_key, attempts
            FROM outbox_mail
            WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
            ORDER BY next_attempt_at, id
            LIMIT 1
            FOR UPDATE SKIP LOCKED
            """
        )
        if not rows:
            return False
        mail = OutgoingMail(**rows[0])
        attempts = mail.attempts + 1
        try:
            await asyncio.wait_for(sender.send(mail), timeout=settings.mail.send_timeout_seconds)
        except PermanentMailError as error:
            log.error("mail %s to the provider refused for good: %s", mail.id, error)
            await _mark(mail.id, attempts, failed=True, error=str(error))
        except (TemporaryMailError, TimeoutError, OSError) as error:
            give_up = attempts >= settings.mail.max_attempts
            log.warning("mail %s not delivered (attempt %s): %s", mail.id, attempts, error)
            await _mark(
                mail.id,
                attempts,
                failed=give_up,
                error=str(error) or repr(error),
                retry_in=backoff(attempts),
            )
        else:
            await OutboxMail.raw(
                "UPDATE outbox_mail SET sent_at = now(), attempts = {}, last_error = ''"
                " WHERE id = {}",
                attempts,
                mail.id,
            )
            log.info("mail %s (%s) delivered by %s", mail.id, mail.kind, sender.name)
        if not sender.keeps_mail:
            await remove_links(mail.id)
    return True


# The path of a mailed link that carries a token (activation, password reset, a school
# administrator's access link), in PostgreSQL's regular-expression syntax.
CAPABILITY_LINK = (
    r"(/(?:activeren|wachtwoord-herstellen|backoffice/toegang)/)(?!applicaties/)[-A-Za-z0-9_]{12,}"
)
REMOVED = r"\1[verwijderd]"


async def remove_links(mail_id: int | None = None) -> None:
    """Blank the link tokens in the stored bodies of a mail that was sent or given up, or of
    every such mail: the recipient has the link, and a copy of the database must not.
    Recipient, subject, status and times stay, for the audit."""
    only_one = "AND id = {}" if mail_id is not None else ""
    await OutboxMail.raw(
        f"""
        UPDATE outbox_mail
        SET html = regexp_replace(html, {{}}, {{}}, 'g'),
            text = regexp_replace(text, {{}}, {{}}, 'g')
        WHERE (sent_at IS NOT NULL OR failed_at IS NOT NULL)
          AND (html ~ {{}} OR text ~ {{}}) {only_one}
        """,  # noqa: S608 - only placeholders are interpolated
        *(CAPABILITY_LINK, REMOVED, CAPABILITY_LINK, REMOVED, CAPABILITY_LINK, CAPABILITY_LINK),
        *((mail_id,) if mail_id is not None else ()),
    )


async def _mark(
    mail_id: int,
    attempts: int,
    *,
    failed: bool,
    error: str,
    retry_in: dt.timedelta = dt.timedelta(0),
) -> None:
    await OutboxMail.raw(
        """
        UPDATE outbox_mail SET attempts = {}, last_error = {},
            failed_at = CASE WHEN {} THEN now() END,
            next_attempt_at = now() + {}::interval
        WHERE id = {}
        """,
        attempts,
        error[:2000],
        failed,
        retry_in,
        mail_id,
    )


BATCH = 100


async def deliver_due(sender: Sender, settings: Settings, limit: int = BATCH) -> int:
    """Send due mails until none is left or `limit` is reached; returns how many were tried."""
    count = 0
    while count < limit and await deliver_one(sender, settings):
        count += 1
    return count


async def tidy_outbox(sender: Sender, settings: Settings) -> None:
    """Delete sent and failed mail past its retention, and remove any link still stored in a
    sent mail (run by the housekeeping job, app.housekeeping)."""
    await OutboxMail.raw(
        "DELETE FROM outbox_mail WHERE coalesce(sent_at, failed_at) < now() - {}::interval",
        dt.timedelta(days=settings.mail.sent_retention_days),
    )
    if not sender.keeps_mail:
        await remove_links()


class Worker:
    """Runs until stopped: wakes on NOTIFY from a new mail, and every few seconds anyway."""

    def __init__(self, sender: Sender, settings: Settings, dsn: str) -> None:
        self.sender = sender
        self.settings = settings
        self.dsn = dsn
        self.wake = asyncio.Event()
        self.stopping = asyncio.Event()
        self._listener: asyncpg.Connection | None = None

    def _notified(self, *_: Any) -> None:
        self.wake.set()

    async def _listen(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        self._listener = await asyncpg.connect(self.dsn)
        await self._listener.add_listener(CHANNEL, self._notified)

    async def run(self) -> None:
        while not self.stopping.is_set():
            backlog = False
            try:
                await self._listen()
                self.wake.clear()
                # A full batch means more may be due (a backlog after an outage): go on at
                # once rather than after the poll.
                backlog = await deliver_due(self.sender, self.settings) >= BATCH
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                # The database is away: try again at the next poll, so that mail flows again
                # within seconds of its return (a reconnection attempt costs next to nothing).
                log.warning("mail worker cannot reach the database: %s", error)
                await self._close_listener()
            if not backlog:
                await self._sleep(POLL_SECONDS)
        await self._close_listener()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wait_for_wake_or_stop(), timeout=seconds)

    async def _wait_for_wake_or_stop(self) -> None:
        waiters = [
            asyncio.ensure_future(self.wake.wait()),
            asyncio.ensure_future(self.stopping.wait()),
        ]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._listener.close(), timeout=2)
            self._listener = None

    def stop(self) -> None:
        self.stopping.set()
