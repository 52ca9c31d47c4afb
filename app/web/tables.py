"""Server-side sessions and the counters behind rate limits."""

from piccolo.columns import JSONB, UUID, Integer, Text, Timestamptz, Varchar
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


class Throttle(Table, tablename="throttle"):
    """Failed attempts per key (an account, a client address) within a window."""

    key = Text(primary_key=True)
    failures = Integer(default=0)
    window_started_at = Timestamptz(default=TimestamptzNow())
    blocked_until = Timestamptz(null=True, default=None)
