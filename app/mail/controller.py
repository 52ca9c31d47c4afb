"""The development mailbox at /dev/mailbox: every mail in the outbox, newest first.

Mounted only with the development mail backend, which production refuses to start with.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from app.mail.tables import OutboxMail
from app.web.render import page
from app.web.security import MAIL_PREVIEW_CSP


class MailboxController(Controller):
    path = "/dev/mailbox"

    @get("/", name="mailbox")
    async def mailbox(self, request: Request[Any, Any, Any]) -> Response[Any]:
        mails = (
            await OutboxMail.select(
                OutboxMail.id,
                OutboxMail.created_at,
                OutboxMail.recipient,
                OutboxMail.subject,
                OutboxMail.sent_at,
            )
            .order_by(OutboxMail.id, ascending=False)
            .limit(200)
        )
        return page(
            request, "dev/mailbox.html", {"mails": mails}, headers={"Cache-Control": "no-store"}
        )

    @get("/{mail_id:int}", name="mailbox_mail")
    async def mail(self, request: Request[Any, Any, Any], mail_id: FromPath[int]) -> Response[Any]:
        mail = await OutboxMail.select().where(OutboxMail.id == mail_id).first()
        if mail is None:
            raise NotFoundException()
        return page(request, "dev/mail.html", {"mail": mail}, headers={"Cache-Control": "no-store"})

    @get("/{mail_id:int}/html", name="mailbox_mail_html")
    async def mail_html(self, mail_id: FromPath[int]) -> Response[str]:
        mail = await OutboxMail.select(OutboxMail.html).where(OutboxMail.id == mail_id).first()
        if mail is None:
            raise NotFoundException()
        return Response(
            mail["html"],
            media_type="text/html",
            headers={"Content-Security-Policy": MAIL_PREVIEW_CSP, "Cache-Control": "no-store"},
        )
