"""Partner applications (manual §3.3) and the APIs each asks for."""

from typing import Any

from piccolo.columns import UUID, ForeignKey, LazyTableReference, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.partners.tables import Partner
from app.vocabulary import APPROVED, ARCHIVED, NEW, REJECTED, Status

__all__ = ["APPROVED", "ARCHIVED", "NEW", "REJECTED", "Application", "ApplicationApi", "Status"]


class Application(Table, tablename="application"):
    id = UUID(primary_key=True)
    partner = ForeignKey(references=Partner, null=False)
    name = Varchar(length=200)
    status = Varchar(length=20, default=NEW, choices=Status)
    description = Varchar(length=2000, default="")
    contact_person = Varchar(length=200, default="")
    contact_email = Varchar(length=320, default="")
    rejection_reason = Varchar(length=2000, default="")
    created_by: ForeignKey[Any] = ForeignKey(
        references=LazyTableReference("Account", module_path="app.accounts.tables"),
        null=True,
        default=None,
    )
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    submitted_at = Timestamptz(default=TimestamptzNow())
    # The staff member who approved or rejected it, and when.
    handled_by: ForeignKey[Any] = ForeignKey(
        references=LazyTableReference("Staff", module_path="app.staff.tables"),
        null=True,
        default=None,
    )
    handled_at = Timestamptz(null=True, default=None)


class ApplicationApi(Table, tablename="application_api"):
    """Which APIs an application asks for; school administrators can grant only these."""

    # The key is (application, api); Piccolo wants one primary-key column: the first.
    application = ForeignKey(references=Application, null=False, primary_key=True)
    api = Varchar(length=40)
