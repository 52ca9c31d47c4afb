"""The application form (manual §3.3) and the form to link an existing client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.applications.access import MOST_PER_REQUEST, parse_addresses, too_long
from app.applications.service import ApplicationData, ClientCredentials, SecretChoice
from app.applications.tables import Application
from app.identity.tables import ClientSecret
from app.web.forms import Form, most
from app.web.i18n import _

# How long earlier secrets stay valid after a new one: "keep" (until revoked, the default,
# so that live software never stops by surprise) or a number of days.
OVERLAPS: dict[str, int | None] = {"keep": None, "0": 0, "1": 1, "7": 7, "30": 30}
LIMITS = {
    name: most(getattr(Application, name)) for name in ("name", "description", "contact_person")
}
LABEL_LENGTH = most(ClientSecret.label)


class ApplicationForm(Form[ApplicationData]):
    fields = ("name", "description", "contact_person", "contact_email", "confirm_removal")
    multiline_fields = ("description",)
    limits = LIMITS

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        api_keys: list[str],
        apis: list[str] | None = None,
    ) -> None:
        super().__init__(data)
        self.api_keys = api_keys
        self.apis: list[str] = apis or []
        if data is not None and hasattr(data, "getall"):
            self.apis = [value for value in data.getall("apis", []) if value in api_keys]

    def clean(self) -> ApplicationData:
        name = self.required("name", _("Enter the name of the application."))
        description = self.required("description", _("Describe what the application does."))
        contact = self.required("contact_person", _("Enter a (technical) contact person."))
        email = self.email("contact_email")
        for field, limit in LIMITS.items():
            if len(self.values[field].strip()) > limit:
                self.errors.pop(field, None)
                self.add_error(field, _("Use at most %(limit)s characters.", limit=limit))
        if not self.apis:
            self.add_error("apis", _("Choose at least one API."))
        apis = [key for key in self.api_keys if key in self.apis]
        return ApplicationData(name, description, contact, email, apis)


class LinkClientForm(Form[ClientCredentials]):
    fields = ("client_id", "client_secret")
    # Shown again in step 2, and compared as the old server stored it.
    verbatim_fields = ("client_secret",)

    def clean(self) -> ClientCredentials:
        client_id = self.required("client_id", _("Enter the client ID."))
        return ClientCredentials(
            client_id, self.required("client_secret", _("Enter the client secret."))
        )


class SecretForm(Form[SecretChoice]):
    """Genereer secret: an optional name, and what happens to the earlier secrets."""

    fields = ("label", "overlap", "confirm")
    limits = {"label": LABEL_LENGTH}  # noqa: RUF012 - read only

    def clean(self) -> SecretChoice:
        label = self.values["label"].strip()
        if len(label) > LABEL_LENGTH:
            self.add_error("label", _("Use at most %(limit)s characters.", limit=LABEL_LENGTH))
        choice = self.values["overlap"] or "keep"
        if choice not in OVERLAPS:
            self.add_error("overlap", _("Choose how long the earlier secrets stay valid."))
        return SecretChoice(label, OVERLAPS.get(choice), self.values["confirm"] == "yes")


class AccessRequestForm(Form[list[str]]):
    """Toegang aanvragen: administrators' addresses separated by ';' (manual §3.4)."""

    fields = ("addresses",)
    multiline_fields = ("addresses",)

    def clean(self) -> list[str]:
        text = self.required("addresses", _("Enter at least one e-mail address."))
        addresses, invalid = ([], []) if too_long(text) else parse_addresses(text)
        if too_long(text):
            self.add_error(
                "addresses",
                _("Send to at most %(most)d addresses at once.", most=MOST_PER_REQUEST),
            )
        elif invalid:
            self.add_error(
                "addresses",
                _("Not a valid e-mail address: %(addresses)s", addresses=", ".join(invalid)),
            )
        elif text and not addresses:
            self.add_error("addresses", _("Enter at least one e-mail address."))
        elif len(addresses) > MOST_PER_REQUEST:
            self.add_error(
                "addresses",
                _("Send to at most %(most)d addresses at once.", most=MOST_PER_REQUEST),
            )
        return addresses
