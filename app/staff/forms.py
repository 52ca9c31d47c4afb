"""Staff sign-in (a vendor username, not an e-mail) and the authenticator's code."""

from __future__ import annotations

from typing import ClassVar

from app.staff.service import Credentials
from app.web.forms import Form
from app.web.i18n import _


class StaffSignInForm(Form[Credentials]):
    fields = ("username", "password", "next")
    secret_fields = ("password",)

    def clean(self) -> Credentials:
        username = self.required("username", _("Enter your username."))
        if not self.values["password"]:
            self.add_error("password", _("Enter your password."))
        return Credentials(username, self.values["password"])


class CodeForm(Form[str]):
    """The six-digit code of the authenticator app, after the password."""

    fields: ClassVar[tuple[str, ...]] = ("code", "next")

    def clean(self) -> str:
        code = self.required("code", _("Enter the code your authenticator app shows."))
        digits = code.replace(" ", "")
        if code and not (len(digits) == 6 and digits.isdigit()):
            self.add_error("code", _("The code has 6 digits."))
        return code


class EnrolForm(CodeForm):
    fields: ClassVar[tuple[str, ...]] = ("code",)
