"""Weigeren: the reason, which the partner is sent and shown; a standard one to pick, or one's
own words."""

from __future__ import annotations

from app.helpdesk.service import MAX_REASON
from app.web.forms import Form
from app.web.i18n import N_, _

# The reasons the helpdesk gives most, in the partner's words; a typed reason takes precedence.
STANDARD_REASONS = {
    "vaag": N_(
        "The description is too vague: say which data the application needs, and what it does"
        " with them."
    ),
    "contact": N_("The contact person or e-mail address is missing or not right."),
    "apis": N_("The APIs asked for do not match what the application does."),
}


class RejectForm(Form[str]):
    fields = ("reason", "standard")
    multiline_fields = ("reason",)
    limits = {"reason": MAX_REASON}  # noqa: RUF012 - read only

    def clean(self) -> str:
        chosen = STANDARD_REASONS.get(self.values["standard"])
        if not self.values["reason"].strip() and chosen:
            return _(chosen)
        reason = self.required("reason", _("Say why the application is not approved."))
        if len(reason) > MAX_REASON:
            self.add_error("reason", _("Use at most %(limit)s characters.", limit=MAX_REASON))
        return reason
