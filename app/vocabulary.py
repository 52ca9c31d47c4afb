"""Words more than one domain must agree on, below all of them: an application's statuses, as
the manual names them and the application table's CHECK allows. The applications domain owns
them (`app.applications.tables` re-exports them); the identity server reads them to know
whose client may get tokens."""

from __future__ import annotations

from enum import StrEnum

NEW = "nieuw"
APPROVED = "goedgekeurd"
REJECTED = "geweigerd"
ARCHIVED = "gearchiveerd"


class Status(StrEnum):
    """The application's status."""

    new = NEW
    approved = APPROVED
    rejected = REJECTED
    archived = ARCHIVED
