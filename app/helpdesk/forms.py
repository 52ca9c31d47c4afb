"""Weigeren: the reason, which the partner is sent and shown."""

from __future__ import annotations

from app.helpdesk.service import MAX_REASON
from app.web.forms import Form
from app.web.i18n import _


class RejectForm(Form[str]):
    fields = ("reason",)
    multiline_fields = ("reason",)
    limits = {"reason": MAX_REASON}  # noqa: RUF012 - read only

    def clean(self) -> str:
        reason = self.required("reason", _("Say why the application is not approved."))
        if len(reason) > MAX_REASON:
            self.add_error("reason", _("Use at most %(limit)s characters.", limit=MAX_REASON))
        return reason
