"""Writing mails: rendered from templates/emails/ in the recipient's language, into the outbox.

`enqueue` must be called inside the transaction of the change that causes the mail: when that
transaction rolls back, the mail was never written. A NOTIFY, delivered only on commit, wakes
the workers at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import Environment

from app.config import Settings
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


# One template environment per settings object, kept with it (its id is not reused then).
_environments: dict[int, tuple[Settings, Environment]] = {}


def _environment(settings: Settings) -> Environment:
    if id(settings) not in _environments:
        _environments[id(settings)] = (settings, make_environment(settings))
    return _environments[id(settings)][1]


def compose(
    settings: Settings, kind: str, recipient: str, language: str, subject: str, **context: Any
) -> Mail:
    """Render `emails/<kind>.html` and `.txt`; `subject` is a msgid, formatted with context.
    A `path` becomes the mail's `url`, on the portal's address."""
    env = _environment(settings)
    if "path" in context:
        context["url"] = link(settings, context.pop("path"))
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


async def enqueue(mail: Mail, settings: Settings, sender: str = "") -> None:
    """Into the outbox, from `sender` (the settings' account sender when none is given)."""
    # The database's clock sets created_at and next_attempt_at, the same clock the workers
    # compare with.
    await OutboxMail.raw(
        "INSERT INTO outbox_mail (kind, sender, recipient, subject, html, text)"
        " VALUES ({}, {}, {}, {}, {}, {})",
        mail.kind,
        sender or settings.mail.sender,
        mail.recipient,
        mail.subject,
        mail.html,
        mail.text,
    )
    await OutboxMail.raw(f"NOTIFY {CHANNEL}")


async def send(
    settings: Settings,
    kind: str,
    recipient: str,
    language: str,
    subject: str,
    *,
    sender: str = "",
    **context: Any,
) -> None:
    """Compose and enqueue, inside the caller's transaction."""
    mail = compose(settings, kind, recipient, language, subject, **context)
    await enqueue(mail, settings, sender)


def link(settings: Settings, path: str) -> str:
    return settings.portal.base_url.rstrip("/") + path
