"""Client secrets a person can tell apart, and a new secret shown once after a redirect.

Each secret gets the last four characters of its value (`hint`, empty for imported and linked
secrets, whose value the portal never saw), an optional name the partner gives (`label`), and
the days before expiry of the last warning mailed (`warned_days`). A new secret waits in
`secret_reveal`, sealed under the secret key and tied to the session that made it, for the one
page view that shows it; that view deletes it.
"""

from app.db import sql_migration

ID = "2026-12-01T02:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "secret labels, hints and expiry warnings; a new secret shown once"

SQL = """
ALTER TABLE client_secret
    ADD COLUMN hint varchar(4) NOT NULL DEFAULT '',
    ADD COLUMN label varchar(60) NOT NULL DEFAULT '',
    ADD COLUMN warned_days integer;

CREATE TABLE secret_reveal (
    session_hash varchar(64) NOT NULL,
    application uuid NOT NULL REFERENCES application (id) ON DELETE CASCADE,
    client_secret integer NOT NULL REFERENCES client_secret (id) ON DELETE CASCADE,
    sealed text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_hash, application)
);
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
