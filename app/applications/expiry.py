"""Secret expiry, announced: a secret still in use is never allowed to lapse unnoticed.

A client secret the portal generated expires after `identity.secret_lifetime_months`. 30, 14,
7 and 1 day before a secret that live software used in the last 30 days expires, the partner
profile's address and the application's contact get a mail with a link to the application's
page, and the audit log notes it. Each warning goes once, also with several workers: the row
update that records it is the claim. A secret that became due for two warnings at once (made
with a short lifetime, or a worker that was down) gets only the nearest.
"""

from __future__ import annotations

import datetime as dt
import math
from uuid import UUID

import msgspec

from app.accounts.language import language_of
from app.config import Settings
from app.identity.tables import ClientSecret
from app.mail import service as mail
from app.piccolo_conf import DB
from app.staff.tables import AuditEvent
from app.web.i18n import N_

WARN_DAYS = (30, 14, 7, 1)
IN_USE_DAYS = 30
SUBJECT = N_(
    "%(brand)s Partnerportaal — A client secret of %(application)s expires in %(days)s days"
)
SUBJECT_ONE_DAY = N_(
    "%(brand)s Partnerportaal — A client secret of %(application)s expires tomorrow"
)


def warning_due(expires_at: dt.datetime, now: dt.datetime) -> int | None:
    """The warning (days before expiry) a secret is due for now, or None."""
    days_left = math.ceil((expires_at - now).total_seconds() / 86_400)
    due = [days for days in WARN_DAYS if days_left <= days]
    return min(due) if due and days_left > 0 else None


class Expiring(msgspec.Struct, frozen=True):
    id: int
    expires_at: dt.datetime
    warned_days: int | None
    hint: str
    label: str
    application: UUID
    application_name: str
    contact_email: str
    partner: UUID
    partner_email: str


async def warn_expiring_secrets(settings: Settings, now: dt.datetime | None = None) -> int:
    """Send the warnings that are due; returns how many secrets were warned about."""
    now = now or dt.datetime.now(dt.UTC)
    rows = await ClientSecret.raw(
        """
        SELECT s.id, s.expires_at, s.warned_days, s.hint, s.label, a.id AS application,
            a.name AS application_name, a.contact_email, a.partner, p.email AS partner_email
        FROM client_secret s
        JOIN client c ON c.id = s.client
        JOIN application a ON a.id = c.application
        JOIN partner p ON p.id = a.partner
        WHERE s.revoked_at IS NULL AND s.expires_at > {} AND s.expires_at <= {}
          AND s.last_used_at > {}
        """,
        now,
        now + dt.timedelta(days=max(WARN_DAYS)),
        now - dt.timedelta(days=IN_USE_DAYS),
    )
    warned = 0
    for secret in msgspec.convert(rows, list[Expiring]):
        due = warning_due(secret.expires_at, now)
        if due is None or (secret.warned_days is not None and secret.warned_days <= due):
            continue
        if await _warn(secret, due, settings):
            warned += 1
    return warned


async def _warn(secret: Expiring, due: int, settings: Settings) -> bool:
    async with DB.transaction():
        claimed = await ClientSecret.raw(
            "UPDATE client_secret SET warned_days = {} WHERE id = {}"
            " AND (warned_days IS NULL OR warned_days > {}) RETURNING id",
            due,
            secret.id,
            due,
        )
        if not claimed:
            return False  # another worker sent it
        name = f"…{secret.hint} {secret.label}" if secret.hint else secret.label
        for recipient in dict.fromkeys(filter(None, (secret.partner_email, secret.contact_email))):
            await mail.send(
                settings,
                "secret_expiring",
                recipient,
                await language_of(recipient),
                SUBJECT_ONE_DAY if due == 1 else SUBJECT,
                application=secret.application_name,
                days=due,
                secret=name.strip(),
                expires_at=secret.expires_at,
                path=f"/applicaties/{secret.application}#secrets",
            )
        await AuditEvent.insert(
            AuditEvent(
                actor="portal",
                action="secret-expiry-warned",
                partner=secret.partner,
                application=secret.application,
                detail={"secret": secret.id, "days": due},
            )
        )
    return True
