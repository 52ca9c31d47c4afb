"""The outbox: every mail, written in the transaction of the change that causes it."""

from piccolo.columns import UUID, BigSerial, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class OutboxMail(Table, tablename="outbox_mail"):
    id = BigSerial(primary_key=True)
    created_at = Timestamptz(default=TimestamptzNow())
    # What kind of mail (activation, password_reset, …): for the mailbox page and the logs.
    kind = Varchar(length=40)
    sender = Text()
    recipient = Text()
    subject = Text()
    html = Text()
    text = Text()
    # Sent with every attempt, so the provider delivers a retried mail only once.
    idempotency_key = UUID(unique=True)
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz(default=TimestamptzNow())
    sent_at = Timestamptz(null=True, default=None)
    failed_at = Timestamptz(null=True, default=None)
    last_error = Text(default="")
