"""The back-office's people and what they may do: schools, staff, rights, sessions, and the
audit trail of what they did."""

from piccolo.columns import (
    JSONB,
    UUID,
    BigInt,
    BigSerial,
    Boolean,
    ForeignKey,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

HELPDESK = "helpdesk"
SCHOOL_ADMIN = "school-admin"
ROLES = (HELPDESK, SCHOOL_ADMIN)


class School(Table, tablename="school"):
    institution_number = Varchar(length=20, primary_key=True)
    name = Varchar(length=200)


class Staff(Table, tablename="staff"):
    """A vendor user of the back-office: the helpdesk or a school administrator."""

    id = Serial(primary_key=True)
    username = Varchar(length=100, unique=True)
    password_hash = Varchar(length=200)
    role = Varchar(length=20)
    active = Boolean(default=True)
    created_at = Timestamptz(default=TimestamptzNow())
    totp_secret = Text(null=True, default=None)  # sealed (app.crypto.Sealer)
    totp_enrolled_at = Timestamptz(null=True, default=None)
    totp_last_step = BigInt(default=0)


class StaffRight(Table, tablename="staff_right"):
    """A school administrator may grant this API for this school."""

    # The key is (staff, institution_number, api); Piccolo wants one primary-key column.
    staff = ForeignKey(references=Staff, null=False, primary_key=True)
    institution_number = Varchar(length=20)
    api = Varchar(length=40)


class StaffSession(Table, tablename="staff_session"):
    id_hash = Varchar(length=64, primary_key=True)
    staff = ForeignKey(references=Staff, null=False)
    created_at = Timestamptz(default=TimestamptzNow())
    last_seen_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    verified = Boolean(default=True)


class AuditEvent(Table, tablename="audit_event"):
    id = BigSerial(primary_key=True)
    at = Timestamptz(default=TimestamptzNow())
    actor = Varchar(length=320)
    action = Varchar(length=40)
    partner = UUID(null=True, default=None)
    application = UUID(null=True, default=None)
    institution_number = Varchar(length=20, null=True, default=None)
    detail = JSONB(default={})
