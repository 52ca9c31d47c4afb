"""Server-side sessions of the partner pages."""

from piccolo.columns import JSONB, UUID, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class WebSession(Table, tablename="web_session"):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored."""

    id_hash = Varchar(length=64, primary_key=True)
    account_id = UUID(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    last_seen_at = Timestamptz(default=TimestamptzNow())
    # The absolute end of the session, whatever its activity.
    expires_at = Timestamptz()
    data = JSONB(default={})
