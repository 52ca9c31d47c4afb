"""Optional second factor for staff: a TOTP secret (RFC 6238), and sessions that wait for
the code before they open the back-office."""

from app.db import sql_migration

ID = "2026-11-28T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "TOTP second factor for staff"

SQL = """
ALTER TABLE staff
    -- Set once enrolment is confirmed with a first code; from then on a code is required.
    ADD COLUMN totp_secret varchar(64),
    ADD COLUMN totp_enrolled_at timestamptz,
    -- The last time step a code was accepted for: a code works once.
    ADD COLUMN totp_last_step bigint NOT NULL DEFAULT 0;

ALTER TABLE staff_session
    -- False between the password and the code, for staff who enrolled.
    ADD COLUMN verified boolean NOT NULL DEFAULT true;
"""


forwards = sql_migration(ID, DESCRIPTION, SQL)
