"""Access requests (manual §3.4): the links partners mail to school administrators, and an
index for what an administrator's schools have granted."""

from app.db import sql_migration

ID = "2026-11-28T06:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "access requests to school administrators"

SQL = """
CREATE TABLE access_request (
    id bigserial PRIMARY KEY,
    application uuid NOT NULL REFERENCES application (id) ON DELETE CASCADE,
    email varchar(320) NOT NULL,
    -- Only the SHA-256 of the link's token; the link stays valid for a month.
    token_hash varchar(64) NOT NULL UNIQUE,
    requested_by uuid REFERENCES account (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    used_by integer REFERENCES staff (id) ON DELETE SET NULL
);
CREATE INDEX access_request_application ON access_request (application, created_at);

-- What reaches a school: an administrator's overview reads grants by institution number.
CREATE INDEX scope_grant_school ON scope_grant (institution_number, client);
"""


forwards = sql_migration(ID, DESCRIPTION, SQL)
