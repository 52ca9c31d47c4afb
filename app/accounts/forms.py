"""The forms of the account pages, with the manual's rules and Dutch messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.accounts.passwords import password_problems
from app.accounts.service import Credentials
from app.web.forms import Form
from app.web.i18n import _


class RegistrationForm(Form[Credentials]):
    fields = ("email", "password", "password_repeat", "terms")
    secret_fields = ("password", "password_repeat")

    def clean(self) -> Credentials:
        email, password = self.email("email"), self.values["password"]
        if not password:
            self.add_error("password", _("Choose a password."))
        else:
            for problem in password_problems(password, email):
                self.add_error("password", problem)
        if not self.values["password_repeat"]:
            self.add_error("password_repeat", _("Repeat your password."))
        elif self.values["password_repeat"] != password:
            self.add_error("password_repeat", _("The passwords do not match."))
        if not self.values["terms"]:
            self.add_error("terms", _("You must agree to the terms and the privacy policy."))
        return Credentials(email, password)


class SignInForm(Form[Credentials]):
    fields = ("email", "password", "next")
    secret_fields = ("password",)

    def clean(self) -> Credentials:
        email, password = self.email("email"), self.values["password"]
        if not password:
            self.add_error("password", _("Enter your password."))
        return Credentials(email, password)


class EmailForm(Form[str]):
    """Wachtwoord vergeten, and asking for a new activation link: the address."""

    fields = ("email",)

    def clean(self) -> str:
        return self.email("email")


class NewPasswordForm(Form[str]):
    """The new password."""

    fields = ("password", "password_repeat")
    secret_fields = ("password", "password_repeat")

    def __init__(self, data: Mapping[str, Any] | None = None, email: str = "") -> None:
        super().__init__(data)
        self.account_email = email

    def clean(self) -> str:
        password = self.values["password"]
        if not password:
            self.add_error("password", _("Choose a password."))
        else:
            for problem in password_problems(password, self.account_email):
                self.add_error("password", problem)
        if self.values["password_repeat"] != password:
            self.add_error("password_repeat", _("The passwords do not match."))
        return password
