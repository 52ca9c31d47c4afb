"""Partner profiles, their categories, invitation codes for colleagues, and change history."""

from piccolo.columns import (
    JSONB,
    UUID,
    BigSerial,
    Boolean,
    Bytea,
    Char,
    ForeignKey,
    Integer,
    Serial,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.accounts.tables import Account


class Category(Table, tablename="category"):
    """What kind of solution a partner offers; the list is kept in the database."""

    id = Serial(primary_key=True)
    key = Varchar(length=40, unique=True)
    name_nl = Varchar(length=100)
    name_en = Varchar(length=100)
    position = Integer(default=0)


class Partner(Table, tablename="partner"):
    """An organisation's profile. Fields marked * in the manual are the public ones."""

    id = UUID(primary_key=True)
    slug = Varchar(length=220, unique=True)
    name = Varchar(length=200)  # *
    enterprise_number = Char(length=10, null=True, default=None)
    description = Varchar(length=2000)  # *
    email = Varchar(length=320)
    contact_person = Varchar(length=200)
    street = Varchar(length=200)
    house_number = Varchar(length=20)
    postcode = Varchar(length=20)
    municipality = Varchar(length=100)
    country = Varchar(length=100)
    public = Boolean(default=True)
    active = Boolean(default=True)
    website = Varchar(length=500)  # *
    extra_info = Varchar(length=2000, default="")  # *
    logo = Bytea()  # *
    logo_type = Varchar(length=40)
    logo_etag = Varchar(length=64)
    created_by = ForeignKey(references=Account, null=True)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    # Derived by the database (active, public, an approved application); never set it.
    listed = Boolean(default=False)


class PartnerCategory(Table, tablename="partner_category"):
    # The key is (partner, category); Piccolo wants one primary-key column: the first.
    partner = ForeignKey(references=Partner, null=False, primary_key=True)
    category = ForeignKey(references=Category, null=False)


class InvitationCode(Table, tablename="invitation_code"):
    """A code a linked user shares so a colleague's account can join the profile."""

    id = Serial(primary_key=True)
    partner = ForeignKey(references=Partner, null=False)
    code_hash = Varchar(length=64, unique=True)
    hint = Varchar(length=8)
    created_by = ForeignKey(references=Account, null=True)
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    revoked_at = Timestamptz(null=True, default=None)


class PartnerChange(Table, tablename="partner_change"):
    """Who changed which fields of a profile, and when (old and new values)."""

    id = BigSerial(primary_key=True)
    partner = ForeignKey(references=Partner, null=False)
    account = ForeignKey(references=Account, null=True)
    account_email = Varchar(length=320)
    changed_at = Timestamptz(default=TimestamptzNow())
    changes = JSONB()
