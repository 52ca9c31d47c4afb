"""The partner profile form, the invitation code form, and the manual's field rules."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from litestar.datastructures import UploadFile

from app.partners.logos import Logo, LogoError, process_logo
from app.partners.service import PROFILE_FIELDS, Profile, ProfileData
from app.partners.tables import Partner
from app.web import offload
from app.web.forms import Form, most
from app.web.i18n import N_, _

# The longest each text field may be: the column's own length (which the schema test holds to
# the migrations), so that column, form and template say the same. The enterprise number has a
# format of its own, and "public" is a tick.
LIMITS = {
    name: most(getattr(Partner, name))
    for name in PROFILE_FIELDS
    if name not in ("enterprise_number", "public")
}


def normalise_enterprise_number(value: str) -> str | None:
    """The 10 digits of a Belgian enterprise number, or None when it is not one.

    Dots, spaces and a leading "BE" are allowed; the last two digits are 97 minus the first
    eight modulo 97 (the Belgian check).
    """
    digits = re.sub(r"[\s.]", "", value.strip().upper()).removeprefix("BE")
    if not re.fullmatch(r"[01][0-9]{9}", digits):
        return None
    if 97 - int(digits[:8]) % 97 != int(digits[8:]):
        return None
    return digits


def valid_website(value: str) -> bool:
    parts = urlsplit(value)
    return (
        parts.scheme in {"http", "https"}
        and bool(parts.hostname)
        and "." in (parts.hostname or "")
        and not re.search(r"\s", value)
    )


# Each address field, and what its error says when it is empty (naming the field: the error
# summary lists them together).
ADDRESS = {
    "street": N_("Enter the street."),
    "house_number": N_("Enter the house number."),
    "postcode": N_("Enter the postcode."),
    "municipality": N_("Enter the municipality."),
    "country": N_("Enter the country."),
}


class ProfileForm(Form[ProfileData]):
    fields = (*PROFILE_FIELDS, "logo_data")
    multiline_fields = ("description", "extra_info")
    limits = LIMITS
    page_order = (
        "name",
        "enterprise_number",
        "description",
        "categories",
        "website",
        "logo",
        "extra_info",
        "public",
        "contact_person",
        *ADDRESS,
    )

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        logo_required: bool = True,
        categories: list[int] | None = None,
    ) -> None:
        super().__init__(data)
        if data is None:
            self.values["country"] = _("Belgium")  # most partners are Belgian; it can be changed
        self.logo_required = logo_required
        self.upload: UploadFile | None = None
        self.categories: list[int] = categories or []
        if data is not None and hasattr(data, "getall"):
            upload = data.get("logo")
            self.upload = upload if isinstance(upload, UploadFile) else None
            self.categories = [
                int(value)
                for value in data.getall("categories", [])
                if isinstance(value, str) and value.isdigit()
            ]
        self.logo: Logo | None = None

    @classmethod
    def from_profile(cls, profile: Profile, categories: list[int]) -> ProfileForm:
        values = {name: getattr(profile, name, None) or "" for name in cls.fields}
        values["public"] = "yes" if profile.public else ""
        return cls(values, logo_required=False, categories=categories)

    async def read_logo(self) -> None:
        """Take the uploaded file, or else the logo kept from an earlier try of this form."""
        upload = self.upload
        try:
            if upload is not None and upload.filename:
                content = await upload.read(MAX_UPLOAD + 1)
                self.logo = await offload.IMAGES.run(
                    process_logo, content, upload.filename, upload.content_type
                )
            elif self.values["logo_data"]:
                try:
                    kept = base64.b64decode(self.values["logo_data"], validate=True)
                except (binascii.Error, ValueError):
                    kept = b""
                self.logo = await offload.IMAGES.run(process_logo, kept, "logo.png", "image/png")
            elif self.logo_required:
                self.add_error("logo", _("Choose an image for the logo."))
        except LogoError as error:
            self.add_error("logo", str(error))
            self.logo = None
        self.values["logo_data"] = base64.b64encode(self.logo.data).decode() if self.logo else ""

    def clean(self) -> ProfileData:
        name = self.required("name", _("Enter the name of your organisation."))
        description = self.required(
            "description", _("Describe your organisation and what you do with the data.")
        )
        contact = self.required("contact_person", _("Enter a contact person."))
        address = {key: self.required(key, _(message)) for key, message in ADDRESS.items()}
        for key, limit in LIMITS.items():
            if len(self.values[key].strip()) > limit:
                self.errors.pop(key, None)
                self.add_error(key, _("Use at most %(limit)s characters.", limit=limit))
        enterprise_number: str | None = None
        if self.values["enterprise_number"].strip():
            enterprise_number = normalise_enterprise_number(self.values["enterprise_number"])
            if enterprise_number is None:
                self.add_error(
                    "enterprise_number",
                    _(
                        "This is not a valid Belgian enterprise number (10 digits, such as"
                        " 0123.456.749)."
                    ),
                )
        website = self.values["website"].strip()
        if not website:
            self.add_error("website", _("Enter the address of your website."))
        elif not valid_website(website):
            self.add_error(
                "website",
                _(
                    "Enter a full web address that starts with http:// or"
                    " https://, such as https://www.example.be."
                ),
            )
        if not self.categories:
            self.add_error("categories", _("Choose at least one category."))
        return ProfileData(
            name=name,
            enterprise_number=enterprise_number,
            description=description,
            contact_person=contact,
            public=bool(self.values["public"]),
            categories=sorted(set(self.categories)),
            website=website,
            extra_info=self.values["extra_info"].strip(),
            logo=self.logo,
            **address,
        )


MAX_UPLOAD = 1_000_000


class InvitationForm(Form[str]):
    fields = ("code",)

    def clean(self) -> str:
        return self.required("code", _("Paste the invitation code you received."))
