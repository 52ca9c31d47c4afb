"""Partner applications. For now only what the public directory needs: name and status."""

from piccolo.columns import UUID, ForeignKey, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.partners.tables import Partner

NEW = "nieuw"
APPROVED = "goedgekeurd"
REJECTED = "geweigerd"
ARCHIVED = "gearchiveerd"


class Application(Table, tablename="application"):
    id = UUID(primary_key=True)
    partner = ForeignKey(references=Partner)
    name = Varchar(length=200)
    status = Varchar(length=20, default=NEW)
    created_at = Timestamptz(default=TimestamptzNow())
