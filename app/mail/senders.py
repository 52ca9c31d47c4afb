"""Ways to deliver a mail: Resend in production, the outbox itself as mailbox in development.

A sender raises TemporaryMailError when trying again later may help (the provider is down,
slow, rate-limiting or unreachable) and PermanentMailError when it will not (the provider
refuses the mail itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

import resend
from resend.exceptions import ResendError
from resend.http_client_httpx import HTTPXClient

from app.config import Settings


class TemporaryMailError(Exception):
    pass


class PermanentMailError(Exception):
    pass


@dataclass(frozen=True)
class OutgoingMail:
    """A mail taken from the outbox for delivery."""

    id: int
    kind: str
    sender: str
    recipient: str
    subject: str
    html: str
    text: str
    idempotency_key: UUID
    attempts: int


class Sender(Protocol):
    name: str
    # Whether the outbox row is the delivered copy (the development mailbox), so that its
    # links must stay; a provider has the mail, so the stored links are removed after sending.
    keeps_mail: bool

    async def send(self, mail: OutgoingMail) -> None: ...


class MailboxSender:
    """Development: the mail stays in the outbox, where /dev/mailbox shows it."""

    name = "mailbox"
    keeps_mail = True

    async def send(self, mail: OutgoingMail) -> None:
        return None


# Refused for the mail itself: retrying the same request gives the same answer.
PERMANENT_STATUSES = {400, 413, 422}


class ResendSender:
    name = "resend"
    keeps_mail = False

    def __init__(self, settings: Settings) -> None:
        self.api_key = settings.resend_api_key
        self.api_url = settings.mail.resend_api_url.rstrip("/")
        self.client = HTTPXClient(timeout=int(max(1, settings.mail.send_timeout_seconds)))

    async def send(self, mail: OutgoingMail) -> None:
        # The resend package keeps its configuration in module globals; set them per call so
        # the values of this sender are the ones used.
        resend.api_key = self.api_key
        resend.api_url = self.api_url
        resend.default_async_http_client = self.client
        params: resend.Emails.SendParams = {
            "from": mail.sender,
            "to": [mail.recipient],
            "subject": mail.subject,
            "html": mail.html,
            "text": mail.text,
        }
        try:
            await resend.Emails.send_async(
                params, options={"idempotency_key": str(mail.idempotency_key)}
            )
        except ResendError as error:
            status = _status(error.code)
            message = f"resend {error.code} {error.error_type}: {error.message}"
            if status in PERMANENT_STATUSES:
                raise PermanentMailError(message) from error
            raise TemporaryMailError(message) from error


def _status(code: object) -> int:
    try:
        return int(str(code))
    except ValueError:
        return 0


def make_sender(settings: Settings) -> Sender:
    if settings.mail.backend == "resend":
        return ResendSender(settings)
    return MailboxSender()
