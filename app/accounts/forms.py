"""The forms of the account pages, with the manual's rules and Dutch messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.accounts.passwords import password_problems
from app.web.forms import Form
from app.web.i18n import _


class RegistrationForm(Form):
    fields = ("email", "password", "password_repeat", "terms")
    secret_fields = ("password", "password_repeat")

    def clean(self) -> None:
        self.email_address = self.email("email")
        self.password = self.values["password"]
        if not self.password:
            self.add_error("password", _("Choose a password."))
        else:
            for problem in password_problems(self.password, self.email_address):
                self.add_error("password", problem)
        if not self.values["password_repeat"]:
            self.add_error("password_repeat", _("Repeat your password."))
        elif self.values["password_repeat"] != self.password:
            self.add_error("password_repeat", _("The passwords do not match."))
        if not self.values["terms"]:
            self.add_error("terms", _("You must agree to the terms and the privacy policy."))


class SignInForm(Form):
    fields = ("email", "password", "next")
    secret_fields = ("password",)

    def clean(self) -> None:
        self.email_address = self.email("email")
        self.password = self.values["password"]
        if not self.password:
            self.add_error("password", _("Enter your password."))


class EmailForm(Form):
    """Wachtwoord vergeten, and asking for a new activation link."""

    fields = ("email",)

    def clean(self) -> None:
        self.email_address = self.email("email")


class NewPasswordForm(Form):
    fields = ("password", "password_repeat")
    secret_fields = ("password", "password_repeat")

    def __init__(self, data: Mapping[str, Any] | None = None, email: str = "") -> None:
        super().__init__(data)
        self.account_email = email

    def clean(self) -> None:
        self.password = self.values["password"]
        if not self.password:
            self.add_error("password", _("Choose a password."))
        else:
            for problem in password_problems(self.password, self.account_email):
                self.add_error("password", problem)
        if self.values["password_repeat"] != self.password:
            self.add_error("password_repeat", _("The passwords do not match."))
