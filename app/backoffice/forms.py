"""Back-office forms: staff sign-in (a vendor username, not an e-mail) and rejection."""

from __future__ import annotations

from app.backoffice.service import MAX_REASON
from app.web.forms import Form
from app.web.i18n import _


class StaffSignInForm(Form):
    fields = ("username", "password", "next")
    secret_fields = ("password",)

    def clean(self) -> None:
        self.required("username", _("Enter your username."))
        if not self.values["password"]:
            self.add_error("password", _("Enter your password."))


class RejectForm(Form):
    fields = ("reason",)

    def clean(self) -> None:
        reason = self.required("reason", _("Say why the application is not approved."))
        if len(reason) > MAX_REASON:
            self.add_error("reason", _("Use at most %(limit)s characters.", limit=MAX_REASON))
