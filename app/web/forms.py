"""A small base for HTML forms: the input as typed, an error message per field, and what the
input means once it is right.

Each form's `clean()` checks its fields and returns the service's input type (`Cleaned`);
`validate()` gives that value when no field has an error, else None. A form keeps every value
the user entered, so that a form with errors comes back filled in;
passwords are the exception and are never sent back to the browser. Values arrive as plain
text (see `plain_text`), except secrets, which are compared exactly as typed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar

from email_validator import EmailNotValidError, validate_email
from piccolo.columns import Varchar

from app.web.i18n import _

# Characters nobody means to type: control characters (NUL cannot even be stored in
# PostgreSQL text) and the bidirectional overrides that make text read otherwise than it is.
_INVISIBLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_LINE_BREAKS = re.compile(r"\r\n?")


def plain_text(value: str, multiline: bool = False) -> str:
    """Text as people type it: composed (NFC, so "é" is one character however it was typed),
    without invisible control characters; line breaks only where the field has lines."""
    value = _INVISIBLE.sub("", _LINE_BREAKS.sub("\n", unicodedata.normalize("NFC", value)))
    return value.replace("\t", " ") if multiline else value.replace("\n", " ").replace("\t", " ")


Cleaned = TypeVar("Cleaned")


class Form(Generic[Cleaned]):
    fields: ClassVar[tuple[str, ...]] = ()
    # Fields whose value is never rendered back (passwords).
    secret_fields: ClassVar[tuple[str, ...]] = ()
    # Secrets that are shown again but, like passwords, are compared exactly as typed.
    verbatim_fields: ClassVar[tuple[str, ...]] = ()
    # Text areas: line breaks are kept.
    multiline_fields: ClassVar[tuple[str, ...]] = ()
    # The most characters a field takes, from its column (see `most`), for clean() and the
    # template's maxlength alike.
    limits: ClassVar[dict[str, int]] = {}
    # The order the fields stand in on the page, where it is not `fields` (the error summary
    # lists the errors in it, so that its first link is the first field to fix).
    page_order: ClassVar[tuple[str, ...]] = ()

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        data = data or {}
        self.values: dict[str, str] = {}
        exact = {*self.secret_fields, *self.verbatim_fields}
        for name in self.fields:
            value = data.get(name, "")
            if not isinstance(value, str):
                value = ""
            elif name not in exact:
                value = plain_text(value, multiline=name in self.multiline_fields)
            self.values[name] = value
        self.errors: dict[str, str] = {}

    def value(self, name: str) -> str:
        """What the template shows in the field."""
        return "" if name in self.secret_fields else self.values.get(name, "")

    def add_error(self, name: str, message: str) -> None:
        self.errors[name] = f"{self.errors[name]} {message}" if name in self.errors else message

    def errors_in_order(self) -> list[tuple[str, str]]:
        order = [*self.page_order, *self.fields]
        place = {name: order.index(name) if name in order else len(order) for name in self.errors}
        return sorted(self.errors.items(), key=lambda item: place[item[0]])

    @property
    def valid(self) -> bool:
        return not self.errors

    def validate(self) -> Cleaned | None:
        cleaned = self.clean()
        return cleaned if self.valid else None

    def clean(self) -> Cleaned:
        """Subclasses check their fields here, call add_error, and return what was entered."""
        raise NotImplementedError

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


def most(column: Varchar) -> int:
    """The most characters a column holds: a form's limit is its column's, written once."""
    length = column.length
    if length is None:
        raise ValueError(f"{column} has no length")
    return length


def normalise_email(value: str) -> str | None:
    """The address in the form accounts are stored and looked up in, or None if invalid."""
    if len(value) > 320:
        return None
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError:
        return None
    return result.normalized.lower()
