"""Partner accounts and the single-use tokens e-mailed to them."""

from piccolo.columns import UUID, ForeignKey, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Account(Table, tablename="account"):
    """A partner user, signing in with e-mail address and password."""

    id = UUID(primary_key=True)
    # Stored normalised (lower case); unique.
    email = Varchar(length=320, unique=True)
    password_hash = Text()
    # "nl" or "en": the language of the e-mails this account receives.
    language = Varchar(length=5, default="nl")
    activated_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    password_changed_at = Timestamptz(default=TimestamptzNow())
    # The partner profile this account is linked to (at most one); a UUID rather than a
    # ForeignKey here because the partner table is defined after this one.
    partner = UUID(null=True, default=None)
    partner_linked_at = Timestamptz(null=True, default=None)


class AccountToken(Table, tablename="account_token"):
    """An e-mailed link (activation or password reset); only its SHA-256 is stored."""

    account = ForeignKey(references=Account, null=False)
    purpose = Varchar(length=20)
    token_hash = Varchar(length=64, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
