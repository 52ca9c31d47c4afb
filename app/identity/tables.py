"""Clients of the identity server, their secrets, the scopes granted to them, signing keys."""

from piccolo.columns import (
    JSONB,
    UUID,
    BigSerial,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Client(Table, tablename="client"):
    """Partner software's technical key (manual §2.2: "wie?")."""

    id = Serial(primary_key=True)
    client_id = Varchar(length=200, unique=True)
    enabled = Boolean(default=True)
    # At most one application; NULL for a client brought along from the old server.
    application = UUID(null=True, default=None)
    description = Varchar(length=200, default="")
    created_at = Timestamptz(default=TimestamptzNow())


class ClientSecret(Table, tablename="client_secret"):
    """Only the base64 SHA-256 of a secret is kept (IdentityServer's format)."""

    id = Serial(primary_key=True)
    client = ForeignKey(references=Client, null=False)
    value_hash = Varchar(length=64)
    description = Varchar(length=200, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)
    last_used_at = Timestamptz(null=True, default=None)
    # The last four characters, to tell secrets apart ('' for imported and linked ones).
    hint = Varchar(length=4, default="")
    # A name the partner may give ("productie", "test-server").
    label = Varchar(length=60, default="")
    # Days before expiry of the last warning mailed (30, 14, 7, 1), so each goes once.
    warned_days = Integer(null=True, default=None)


class SecretReveal(Table, tablename="secret_reveal"):
    """A new secret, sealed, waiting for the one page view that shows it to the session that
    made it (post/redirect/get: never in a URL, never shown twice)."""

    # The key is (session_hash, application); Piccolo wants one primary-key column.
    session_hash = Varchar(length=64, primary_key=True)
    application = UUID()
    client_secret = ForeignKey(references=ClientSecret, null=False)
    sealed = Text()
    created_at = Timestamptz(default=TimestamptzNow())


class ScopeGrant(Table, tablename="scope_grant"):
    """Access to one API for one school (manual §2.2: "wat?")."""

    id = BigSerial(primary_key=True)
    client = ForeignKey(references=Client, null=False)
    api = Varchar(length=40)
    institution_number = Varchar(length=20)
    granted_by = Varchar(length=320, default="")
    granted_at = Timestamptz(default=TimestamptzNow())


class SigningKey(Table, tablename="signing_key"):
    kid = Varchar(length=64, primary_key=True)
    algorithm = Varchar(length=10, default="ES256")
    private_pem = Text()
    public_jwk = JSONB()
    created_at = Timestamptz(default=TimestamptzNow())
    retired_at = Timestamptz(null=True, default=None)
    unpublish_at = Timestamptz(null=True, default=None)


class TokenDay(Table, tablename="token_day"):
    """Tokens issued per client, day and scope string (app.identity.diagnostics)."""

    # The key is (client, day, scopes); Piccolo wants one primary-key column: the first.
    client = ForeignKey(references=Client, null=False, primary_key=True)
    day = Date()
    scopes = Text()
    tokens = Integer()


class TokenFailure(Table, tablename="token_failure"):
    """A refused token request of a known client, with its cause; never a presented secret."""

    id = BigSerial(primary_key=True)
    client = ForeignKey(references=Client, null=False)
    at = Timestamptz()
    cause = Varchar(length=40)
    address = Varchar(length=64, default="")
    detail = JSONB(default={})
