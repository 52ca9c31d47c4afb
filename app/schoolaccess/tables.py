"""Partners' requests to school administrators for access (manual §3.4)."""

from typing import Any

from piccolo.columns import BigSerial, ForeignKey, LazyTableReference, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.staff.tables import Staff


class AccessRequest(Table, tablename="access_request"):
    """A partner's request to a school administrator, by e-mail, valid a month."""

    id = BigSerial(primary_key=True)
    application: ForeignKey[Any] = ForeignKey(
        references=LazyTableReference("Application", module_path="app.applications.tables"),
        null=False,
    )
    email = Varchar(length=320)
    token_hash = Varchar(length=64, unique=True)
    requested_by: ForeignKey[Any] = ForeignKey(
        references=LazyTableReference("Account", module_path="app.accounts.tables"),
        null=True,
        default=None,
    )
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    used_by = ForeignKey(references=Staff, null=True, default=None)
