"""A small base for HTML forms: the input as typed, and an error message per field.

A form keeps every value the user entered, so that a form with errors comes back filled in;
passwords are the exception and are never sent back to the browser.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from email_validator import EmailNotValidError, validate_email

from app.web.i18n import _


class Form:
    fields: ClassVar[tuple[str, ...]] = ()
    # Fields whose value is never rendered back (passwords).
    secret_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        data = data or {}
        self.values: dict[str, str] = {}
        for name in self.fields:
            value = data.get(name, "")
            self.values[name] = value if isinstance(value, str) else ""
        self.errors: dict[str, str] = {}

    def value(self, name: str) -> str:
        """What the template shows in the field."""
        return "" if name in self.secret_fields else self.values.get(name, "")

    def add_error(self, name: str, message: str) -> None:
        self.errors[name] = f"{self.errors[name]} {message}" if name in self.errors else message

    @property
    def valid(self) -> bool:
        return not self.errors

    def validate(self) -> bool:
        self.clean()
        return self.valid

    def clean(self) -> None:
        """Subclasses check their fields here and call add_error."""

    def required(self, name: str, message: str | None = None) -> str:
        value = self.values.get(name, "").strip()
        if not value:
            self.add_error(name, message or _("This field is required."))
        return value

    def email(self, name: str) -> str:
        value = self.values.get(name, "").strip()
        if not value:
            self.add_error(name, _("Enter your e-mail address."))
            return ""
        normalised = normalise_email(value)
        if normalised is None:
            self.add_error(name, _("Enter a valid e-mail address, such as name@example.be."))
            return ""
        return normalised


def normalise_email(value: str) -> str | None:
    """The address in the form accounts are stored and looked up in, or None if invalid."""
    if len(value) > 320:
        return None
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError:
        return None
    return result.normalized.lower()
