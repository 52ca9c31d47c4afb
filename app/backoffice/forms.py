"""Back-office forms: staff sign-in (a vendor username, not an e-mail) and rejection."""

from __future__ import annotations

from typing import ClassVar

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
    multiline_fields = ("reason",)

    def clean(self) -> None:
        reason = self.required("reason", _("Say why the application is not approved."))
        if len(reason) > MAX_REASON:
            self.add_error("reason", _("Use at most %(limit)s characters.", limit=MAX_REASON))


class CodeForm(Form):
    """The six-digit code of the authenticator app, after the password."""

    fields: ClassVar[tuple[str, ...]] = ("code", "next")

    def clean(self) -> None:
        code = self.required("code", _("Enter the code your authenticator app shows."))
        if code and not (len(code.replace(" ", "")) == 6 and code.replace(" ", "").isdigit()):
            self.add_error("code", _("The code has 6 digits."))


class EnrolForm(CodeForm):
    fields: ClassVar[tuple[str, ...]] = ("code",)
