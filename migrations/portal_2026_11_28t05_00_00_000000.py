"""The back-office: schools, staff (helpdesk and school administrators) with their rights per
school and API, staff sessions, who handled an application, and the audit log."""

from app.db import sql_migration

ID = "2026-11-28T05:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "schools, staff, staff rights and sessions, application handling, audit log"

SQL = """
CREATE TABLE school (
    institution_number varchar(20) PRIMARY KEY,
    name varchar(200) NOT NULL
);

CREATE TABLE staff (
    id serial PRIMARY KEY,
    -- The vendor's username, kept in lower case: staff sign in with it, not with an e-mail.
    username varchar(100) NOT NULL UNIQUE CHECK (username = lower(username)),
    password_hash varchar(200) NOT NULL,
    role varchar(20) NOT NULL CHECK (role IN ('helpdesk', 'school-admin')),
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A school administrator's rights: per school, per API.
CREATE TABLE staff_right (
    staff integer NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    institution_number varchar(20) NOT NULL REFERENCES school (institution_number),
    api varchar(40) NOT NULL,
    PRIMARY KEY (staff, institution_number, api)
);
CREATE INDEX staff_right_school ON staff_right (institution_number);

CREATE TABLE staff_session (
    id_hash varchar(64) PRIMARY KEY,
    staff integer NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX staff_session_staff ON staff_session (staff);

ALTER TABLE application
    ADD COLUMN submitted_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN handled_by integer REFERENCES staff (id) ON DELETE SET NULL,
    ADD COLUMN handled_at timestamptz;
UPDATE application SET submitted_at = created_at;
-- The helpdesk's queue: status Nieuw, oldest first.
CREATE INDEX application_queue ON application (submitted_at) WHERE status = 'nieuw';

CREATE TABLE audit_event (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor varchar(320) NOT NULL,
    action varchar(40) NOT NULL,
    partner uuid,
    application uuid,
    institution_number varchar(20),
    detail jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_event_application ON audit_event (application, at);
CREATE INDEX audit_event_school ON audit_event (institution_number, at);
"""


forwards = sql_migration(ID, DESCRIPTION, SQL)
