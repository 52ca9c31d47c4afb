"""Housekeeping, a job of its own beside the mail worker: what has expired is removed, and
what is about to expire is announced.

Every ten minutes: expiry warnings for client secrets in use (app.applications.expiry); the
outbox's own tidying (mail past its retention, links in sent mail); expired web sessions,
old account tokens, token counters past 90 days, new secrets nobody came to see, and stale
rate-limit counters. It runs wherever mail is delivered (inside `portal serve`, or beside each
`portal worker`); several at once do no harm: the deletes are idempotent and each warning is
claimed by the row that records it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from app.accounts.tables import AccountToken
from app.applications.expiry import warn_expiring_secrets
from app.config import Settings
from app.db import UNAVAILABLE
from app.identity.tables import SecretReveal, TokenDay
from app.mail.senders import Sender
from app.mail.worker import tidy_outbox
from app.throttle import purge_stale
from app.web.tables import WebSession

log = logging.getLogger(__name__)
EVERY_SECONDS = 600.0


async def housekeeping(sender: Sender, settings: Settings) -> None:
    """One round of housekeeping."""
    await warn_expiring_secrets(settings)
    await tidy_outbox(sender, settings)
    await WebSession.raw("DELETE FROM web_session WHERE expires_at < now()")
    await AccountToken.raw("DELETE FROM account_token WHERE expires_at < now() - interval '7 days'")
    # Token traffic is shown for 30 days; a little more is kept for the helpdesk.
    await TokenDay.raw("DELETE FROM token_day WHERE day < current_date - 90")
    # A new secret nobody came to see is not kept for later.
    await SecretReveal.raw("DELETE FROM secret_reveal WHERE created_at < now() - interval '1 hour'")
    await purge_stale()


class Housekeeper:
    """Runs a round every ten minutes until stopped; a database that is away is tried again."""

    def __init__(self, sender: Sender, settings: Settings) -> None:
        self.sender = sender
        self.settings = settings
        self.stopping = asyncio.Event()

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        while not self.stopping.is_set():
            try:
                await housekeeping(self.sender, self.settings)
            except UNAVAILABLE as error:
                log.warning("housekeeping cannot reach the database: %s", error)
            except Exception:  # one failed round must not end the job
                log.exception("housekeeping failed; trying again at the next round")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=EVERY_SECONDS)
