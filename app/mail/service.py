"""Writing mails: rendered from templates/emails/ in the recipient's language, into the outbox.

`enqueue` must be called inside the transaction of the change that causes the mail: when that
transaction rolls back, the mail was never written. A NOTIFY, delivered only on commit, wakes
the workers at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import Environment

from app.config import Settings, get_settings
from app.mail.tables import OutboxMail
from app.web import i18n
from app.web.templating import make_environment

CHANNEL = "outbox_mail"


@dataclass(frozen=True)
class Mail:
    kind: str
    recipient: str
    subject: str
    html: str
    text: str


@cache
def _environment() -> Environment:
    return make_environment(get_settings())


def compose(kind: str, recipient: str, language: str, subject: str, **context: Any) -> Mail:
    """Render `emails/<kind>.html` and `.txt`; `subject` is a msgid, formatted with context."""
    settings = get_settings()
    env = _environment()
    with i18n.use_language(language):
        values = {
            "brand": settings.portal.brand_name,
            "base_url": settings.portal.base_url,
            **context,
        }
        title = i18n.gettext(subject, **values)
        values["subject"] = title
        html = env.get_template(f"emails/{kind}.html").render(**values)
        text = env.get_template(f"emails/{kind}.txt").render(**values)
    return Mail(kind=kind, recipient=recipient, subject=title, html=html, text=text)


async def enqueue(mail: Mail, settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    # The database's clock sets created_at and next_attempt_at, the same clock the workers
    # compare with.
    await OutboxMail.raw(
        "INSERT INTO outbox_mail (kind, sender, recipient, subject, html, text)"
        " VALUES ({}, {}, {}, {}, {}, {})",
        mail.kind,
        settings.mail.sender,
        mail.recipient,
        mail.subject,
        mail.html,
        mail.text,
    )
    await OutboxMail.raw(f"NOTIFY {CHANNEL}")


def link(path: str) -> str:
    return get_settings().portal.base_url.rstrip("/") + path
